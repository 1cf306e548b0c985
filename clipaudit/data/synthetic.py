"""``synthetic[:N[:SEED]]`` — the demo's drawn faces, rendered once and cached on disk.

The images come from :mod:`clipaudit.data.faces` (cartoon stand-ins, not people). They
are written as a ``csv:`` dataset (``labels.csv`` plus ``images/00000.jpg`` ...) under
``<cache>/synthetic/<key>``, where the key covers the renderer version, N and the seed,
so a drawing change never serves stale images. The folder appears in one rename, so an
interrupted render leaves nothing that looks complete.
"""
from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from pathlib import Path

from clipaudit.files import default_cache_dir
from clipaudit.data.base import FolderImageDataset
from clipaudit.data.csvfile import read_label_table
from clipaudit.errors import DataError
from clipaudit.progress import step

# 630 = 5 x (7 races x 2 genders x 9 ages): every race x gender cell gets 45 images.
DEFAULT_COUNT = 630
DEFAULT_SEED = 0
MAX_COUNT = 200_000
ATTRIBUTES: tuple[str, ...] = ("race", "gender", "age")


def parse_synthetic_target(target: str | None, *, spec: str) -> tuple[int, int]:
    """(N, seed) from the part after 'synthetic:' ('' or None -> the defaults)."""
    parts = [] if not target else target.split(":")
    if len(parts) > 2:
        raise DataError(f"{spec}: expected synthetic, synthetic:N or synthetic:N:SEED")
    count = _parse_int(parts[0], what="N", spec=spec) if parts else DEFAULT_COUNT
    seed = _parse_int(parts[1], what="SEED", spec=spec) if len(parts) == 2 else DEFAULT_SEED
    if not 1 <= count <= MAX_COUNT:
        raise DataError(f"{spec}: N must be between 1 and {MAX_COUNT}, got {count}")
    if seed < 0:
        raise DataError(f"{spec}: SEED must be >= 0, got {seed}")
    return count, seed


# A staging folder older than this belongs to a render that was killed, not to one in progress.
ABANDONED_AFTER_S = 3600


def load_synthetic_dataset(count: int, seed: int, *, spec: str, cache_dir: Path | None = None) -> FolderImageDataset:
    """Render (or reuse) ``count`` faces for ``seed``; attributes race, gender, age."""
    folder = ensure_rendered(count, seed, cache_dir=Path(cache_dir) if cache_dir else default_cache_dir())
    frame = read_label_table(folder / "labels.csv", required=ATTRIBUTES)
    return FolderImageDataset(frame[["image_id", *ATTRIBUTES]], spec=spec, root=folder)


def ensure_rendered(count: int, seed: int, *, cache_dir: Path) -> Path:
    """The cache folder holding this rendering, rendering it first if absent."""
    from clipaudit.data.faces import render_dataset

    parent = cache_dir / "synthetic"
    final = parent / rendering_key(count, seed)
    if (final / "labels.csv").is_file():
        return final
    _remove_abandoned_renderings(parent, final.name)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=parent))
    except OSError as error:
        raise DataError(f"cannot write the synthetic dataset under {parent}: {error.strerror or error}") from None
    try:
        with step(f"drawing {count} synthetic faces (once; cached)"):
            render_dataset(staging, count, seed)
        _publish(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def _remove_abandoned_renderings(parent: Path, name: str) -> None:
    """Staging folders of this rendering that a killed run left behind (over an hour old)."""
    for staging in parent.glob(f".{name}.*"):
        try:
            if time.time() - staging.stat().st_mtime > ABANDONED_AFTER_S:
                shutil.rmtree(staging, ignore_errors=True)
        except OSError:
            continue  # another process removed or is using it


def rendering_key(count: int, seed: int) -> str:
    """Folder name for one rendering: changes with the renderer version, N and seed."""
    from clipaudit.data.faces import RENDERER_VERSION

    identity = f"faces-v{RENDERER_VERSION}|n={count}|seed={seed}"
    return hashlib.sha256(identity.encode("utf-8")).hexdigest()[:16]


def _publish(staging: Path, final: Path) -> None:
    """Rename into place; if another process got there first, keep theirs (same content)."""
    try:
        staging.rename(final)
    except OSError:
        if not (final / "labels.csv").is_file():
            raise


def _parse_int(text: str, *, what: str, spec: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise DataError(f"{spec}: {what} must be a whole number, got {text!r}") from None
