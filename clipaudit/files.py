"""Where clipaudit keeps what it computes once (embeddings, the demo data), and how it writes
files so that a reader never sees half of one: one file atomically, or a set of outputs all or nothing."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from clipaudit.errors import ClipauditError


def default_cache_dir() -> Path:
    """`$CLIPAUDIT_CACHE_DIR`, else `$XDG_CACHE_HOME/clipaudit`, else `~/.cache/clipaudit`."""
    explicit = os.environ.get("CLIPAUDIT_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "clipaudit"


def cache_key(**parts: object) -> str:
    """A stable hash over every named input (JSON-serialisable values)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise



def check_output_dir(out_dir: Path) -> None:
    """Fail before any work when `--out` cannot become a folder we can write into."""
    check_writable_folder(out_dir, option="--out")


def check_cache_dir(cache_dir: Path, *, option: str = "--cache-dir") -> None:
    """Fail before any loading when the cache folder is a file or cannot be written."""
    check_writable_folder(cache_dir, option=option)


def check_writable_folder(folder: Path, *, option: str) -> None:
    """Raise ClipauditError unless ``folder`` is, or can become, a folder we can write into.

    Creates nothing: it tries a scratch folder in the nearest existing ancestor.
    """
    folder = Path(folder)
    if not str(folder).strip():
        raise ClipauditError(f"{option}: expected a folder name, got an empty one")
    try:
        _check_writable_folder(folder, option=option)
    except (OSError, ValueError) as error:  # a name too long, a NUL byte, a loop of links
        reason = getattr(error, "strerror", None) or error
        raise ClipauditError(f"{option} {folder}: not a usable folder name ({reason})") from None


def _check_writable_folder(folder: Path, *, option: str) -> None:
    if folder.exists() and not folder.is_dir():
        raise ClipauditError(f"{option} {folder}: exists and is not a folder")
    ancestor = folder if folder.exists() else folder.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ClipauditError(f"{option} {folder}: {ancestor} is not a folder")
    try:
        shutil.rmtree(tempfile.mkdtemp(prefix=".clipaudit-write-check-", dir=ancestor))
    except OSError as error:
        raise ClipauditError(f"{option} {folder}: cannot write there ({error.strerror or error})") from None


def write_output_files(out_dir: Path, files: dict[str, bytes]) -> list[Path]:
    """Stage every file next to `out_dir`, then move each into place with an atomic rename."""
    out_dir = Path(out_dir)
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.staging-", dir=out_dir.parent))
    except OSError as error:
        raise ClipauditError(f"--out {out_dir}: cannot write there ({error.strerror or error})") from None
    try:
        for name, data in files.items():
            (staging / name).write_bytes(data)
        out_dir.mkdir(exist_ok=True)
        written = []
        for name in files:
            os.replace(staging / name, out_dir / name)
            written.append(out_dir / name)
        return written
    except OSError as error:
        raise ClipauditError(f"--out {out_dir}: cannot write there ({error.strerror or error})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def remove_stale_outputs(out_dir: Path, names: tuple[str, ...]) -> None:
    """Delete outputs an earlier run left that this run does not write (e.g. an old compare)."""
    for name in names:
        (Path(out_dir) / name).unlink(missing_ok=True)


# A file whose modification time is this close to the moment it was hashed may still be
# changing within one tick of the file system's clock: its digest is not memoised.
RACY_WINDOW_S = 2.0
DIGEST_MEMO_FORMAT = 1


class DigestMemo:
    """Digests of the files under one folder, memoised in the cache by what ``stat`` says of each
    (size, modification and change times in nanoseconds, inode), so an unchanged file is not read
    again. Any change to a file (even one that keeps its size and resets its mtime: the change time
    moves) misses the memo, and a file modified within :data:`RACY_WINDOW_S` of being hashed is
    never memoised. Without a cache folder nothing is memoised.
    """

    def __init__(self, cache_dir: Path | None, folder: Path):
        import threading

        self.path = None
        if cache_dir is not None:
            name = cache_key(format=DIGEST_MEMO_FORMAT, folder=str(Path(folder).resolve()))
            self.path = Path(cache_dir) / "digests" / f"{name}.json"
        self._entries: dict[str, list] | None = None
        self._changed = False
        self._lock = threading.RLock()

    def __getstate__(self) -> dict:  # pickled into DataLoader workers: they never memoise
        return {"path": None, "_entries": {}, "_changed": False}

    def __setstate__(self, state: dict) -> None:
        import threading

        self.__dict__.update(state)
        self._lock = threading.RLock()

    def lookup(self, name: str, status: os.stat_result) -> object | None:
        """What was remembered for ``name`` when it had exactly this ``status``; None otherwise."""
        entry = self._load().get(name)
        if not isinstance(entry, list) or len(entry) != 2 or entry[0] != _stat_signature(status):
            return None
        return entry[1]

    def remember(self, name: str, status: os.stat_result, value: object) -> None:
        """Remember ``value`` (JSON) for ``name`` as it is now, unless it changed too recently to trust."""
        if self.path is None or time.time() - status.st_mtime < RACY_WINDOW_S:
            return
        with self._lock:
            self._load()[name] = [_stat_signature(status), value]
            self._changed = True

    def save(self) -> None:
        """Write the memo (atomically) if anything was added; a cache that cannot be written is skipped."""
        if self.path is None or not self._changed:
            return
        with self._lock:
            data = json.dumps({"format": DIGEST_MEMO_FORMAT, "files": self._entries}).encode()
            self._changed = False
        try:
            atomic_write_bytes(self.path, data)
        except OSError:
            pass  # a memo only saves time; the digests themselves are right either way

    def _load(self) -> dict[str, list]:
        with self._lock:  # the fingerprint pass looks files up from several threads
            if self._entries is None:
                entries = {}
                try:
                    stored = json.loads(self.path.read_bytes()) if self.path is not None else {}
                    if isinstance(stored, dict) and stored.get("format") == DIGEST_MEMO_FORMAT:
                        entries = dict(stored.get("files") or {})
                except (OSError, ValueError):
                    pass  # absent or damaged: start afresh
                self._entries = entries
            return self._entries


def _stat_signature(status: os.stat_result) -> list[int]:
    return [status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino, status.st_dev]


def file_sha256(path: Path, memo: DigestMemo | None = None, *, name: str | None = None) -> str:
    """sha256 of a file's bytes, from ``memo`` when the file is unchanged since it was last hashed."""
    path = Path(path)
    name = name or path.name
    status = path.stat()
    known = memo.lookup(name, status) if memo is not None else None
    if isinstance(known, str):
        return known
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    if memo is not None:
        memo.remember(name, status, digest.hexdigest())
    return digest.hexdigest()


# --------------------------------------------------------------------------- paths in outputs
# Outputs are shared (committed, attached to pull requests, published): they record paths
# relative to the output folder, never where a machine keeps its files.

def relative_location(value: str, *, base: Path) -> str:
    """An absolute path, or a spec that ends in one (``csv:/data/x.csv``, ``open_clip:ViT-B-32:/m/ckpt.pt``),
    with that path made relative to ``base`` (with '/' separators); any other text unchanged."""
    prefix, separator, path = value.rpartition(":") if not os.path.isabs(value) else ("", "", value)
    if not os.path.isabs(path):
        return value
    relative = Path(os.path.relpath(path, os.path.abspath(base))).as_posix()
    return f"{prefix}{separator}{relative}"


def without_local_paths(node: Any, *, base: Path) -> Any:
    """A copy of a JSON-like document with every absolute path in it made relative to ``base``."""
    if isinstance(node, dict):
        return {key: without_local_paths(value, base=base) for key, value in node.items()}
    if isinstance(node, list):
        return [without_local_paths(item, base=base) for item in node]
    if isinstance(node, str):
        return relative_location(node, base=base)
    return node


def shown_location(value: str) -> str:
    """For display where no base is known: an absolute path (alone or at the end of a spec) is shown
    by its last part, so a page never publishes where a machine keeps its files."""
    prefix, separator, path = value.rpartition(":") if not os.path.isabs(value) else ("", "", value)
    if not os.path.isabs(path):
        return value
    return f"{prefix}{separator}\u2026/{Path(path).name}"
