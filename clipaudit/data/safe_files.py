"""Reading files a dataset names without letting the dataset choose what gets read.

A label table or a Hub dataset is input, and so is every path in it: an entry may be a
symlink out of the dataset folder (to ``/etc/passwd`` or ``/dev/zero``), a named pipe that
blocks whoever opens it, or a file of many gigabytes. Everything here resolves the path,
keeps it inside the dataset folder, and reads only a regular file below a size limit.
"""
from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path

MIB = 1024 * 1024
# An encoded face photo is kilobytes; 64 MiB is far above any real one and still cheap to hold.
MAX_IMAGE_BYTES = 64 * MIB
# FairFace's train table is 3 MB for 87k rows; 256 MiB is millions of rows.
MAX_TABLE_BYTES = 256 * MIB

# Reasons an image is refused, as find_bad_images() and --skip-bad-images list them (and
# "larger than 64 MiB", from FileTooLarge).
OUTSIDE = "outside the dataset folder"
NOT_A_FILE = "not a regular file"

# Non-blocking, so that a named pipe swapped in after the check still cannot block the open.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)


class FileRefused(Exception):
    """A path that must not be read: a short ``reason`` for listings, and the ``detail``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason} ({detail})")
        self.reason = reason
        self.detail = detail


class FileTooLarge(FileRefused):
    def __init__(self, size: int | None, limit: int) -> None:
        measured = f"{size:,} bytes" if size is not None else "it grew while being read"
        super().__init__(f"larger than {size_in_words(limit)}", f"{measured}, over the {size_in_words(limit)} limit")


def size_in_words(size: int) -> str:
    """'64 MiB' for whole mebibytes, else the byte count with separators."""
    return f"{size // MIB} MiB" if size % MIB == 0 else f"{size:,} bytes"


def real_folder(folder: Path | str) -> str:
    """The folder with every symlink resolved; what 'inside the dataset folder' is measured against."""
    return os.path.realpath(folder)


def resolve_inside(path: Path | str, roots: str | tuple[str, ...]) -> str:
    """``path`` with symlinks resolved; FileRefused(OUTSIDE) unless that is inside a root (real folders)."""
    roots = (roots,) if isinstance(roots, str) else roots
    resolved = os.path.realpath(path)
    if not any(_is_within(resolved, root) for root in roots):
        raise FileRefused(OUTSIDE, f"it resolves to {resolved}, outside {' and '.join(roots)}")
    return resolved


def read_regular_file(path: Path | str, *, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; never opens anything else.

    Raises FileNotFoundError for a missing file, FileRefused for a folder, pipe, device or
    socket and for a file over ``limit``, and OSError for the rest (permissions, loops).
    """
    _require_regular(os.stat(path), limit=limit)
    descriptor = os.open(path, _OPEN_FLAGS)
    with os.fdopen(descriptor, "rb") as file:
        size = _require_regular(os.fstat(file.fileno()), limit=limit)  # what was opened, not what was checked
        data = file.read(size + 1)
        if len(data) > size:  # it grew after the check (or reports no size, as /proc does)
            data += file.read(limit + 1 - len(data))
    if len(data) > limit:
        raise FileTooLarge(None, limit)
    return data


def read_file_inside(path: Path | str, roots: str | tuple[str, ...], *, limit: int) -> bytes:
    """:func:`read_regular_file` of ``path`` after checking it resolves inside one of ``roots``."""
    return read_regular_file(resolve_inside(path, roots), limit=limit)


def first_shared_file(paths: Sequence[Path | str]) -> tuple[int, int, str] | None:
    """Positions of the first two paths naming the same file (after resolving), and that file.

    Folders are resolved once each, so a table of 100k images in a few folders costs one
    ``lstat`` per image, not one per path component.
    """
    resolver = _CachingResolver()
    first_seen: dict[str, int] = {}
    for position, path in enumerate(paths):
        resolved = resolver.resolve(path)
        if resolved in first_seen:
            return first_seen[resolved], position, resolved
        first_seen[resolved] = position
    return None


def first_unsafe_entry(folder: Path, *, limit_for: Callable[[str], int]) -> tuple[str, FileRefused] | None:
    """The first path under ``folder`` that a library reading the whole folder must not open.

    Every entry must resolve inside the folder, and every file be a regular file within
    ``limit_for(name)``. Checked before handing the folder to code we do not control.
    """
    root = real_folder(folder)
    for parent, folder_names, file_names in os.walk(root):
        for name in [*folder_names, *file_names]:
            path = os.path.join(parent, name)
            try:
                resolved = resolve_inside(path, root)
                if name in file_names:
                    _require_regular(os.stat(resolved), limit=limit_for(name))
            except FileRefused as refused:
                return path, refused
            except OSError:  # vanished or unreadable: the library's own message says which
                continue
    return None


class _CachingResolver:
    def __init__(self) -> None:
        self._folders: dict[str, str] = {}

    def resolve(self, path: Path | str) -> str:
        folder, name = os.path.split(os.fspath(path))
        real = self._folders.get(folder)
        if real is None:
            real = self._folders[folder] = os.path.realpath(folder)
        if name in ("", ".", ".."):
            return os.path.realpath(os.path.join(real, name))
        candidate = os.path.join(real, name)
        return os.path.realpath(candidate) if os.path.islink(candidate) else candidate


def _require_regular(status: os.stat_result, *, limit: int) -> int:
    """The file's size, once it is known to be a regular file within ``limit``."""
    if not stat.S_ISREG(status.st_mode):
        raise FileRefused(NOT_A_FILE, _kind_of(status.st_mode))
    if status.st_size > limit:
        raise FileTooLarge(status.st_size, limit)
    return status.st_size


def _kind_of(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "an unusual kind of file"


def _is_within(resolved: str, root: str) -> bool:
    try:
        return os.path.commonpath([resolved, root]) == root
    except ValueError:  # different drives on Windows
        return False
