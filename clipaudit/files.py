"""Where clipaudit keeps what it computes once (embeddings, the demo data), and how it writes
files so that a reader never sees half of one: one file atomically, or a set of outputs all or nothing."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
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
