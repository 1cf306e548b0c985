"""The image cache in shards: consecutive dataset rows, a few thousand per file, each written
atomically as it completes and carrying a checksum of its arrays.

A run (or a rank, or an array job) encodes a *part* of the shards: part i of N is every shard
whose number is i modulo N. A shard file that cannot be read, fails its checksum or does not hold
exactly its rows is named on stderr and encoded again. Each shard records the sha256 of every
image's bytes it was computed from, so it serves only the images it was made of
(:mod:`clipaudit.embed.current`).
"""
from __future__ import annotations

import hashlib
import io
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clipaudit.embed.parts import SHARD_IMAGES, Part, parse_part
from clipaudit.errors import ClipauditError
from clipaudit.files import atomic_write_bytes

__all__ = ["SHARD_IMAGES", "Part", "Shard", "ShardContent", "parse_part", "plan_shards", "read_shard", "write_shard"]  # Part: re-exported
SHARD_ARRAYS = ("rows", "embeddings", "bad_rows", "bad_reasons", "digests", "checksum")
DIGEST_BYTES = 32


@dataclass(frozen=True)
class Shard:
    """Dataset rows ``start`` to ``stop`` (exclusive), shard ``number`` of the dataset."""

    number: int
    start: int
    stop: int

    @property
    def name(self) -> str:
        return f"rows-{self.start:09d}-{self.stop:09d}.npz"

    @property
    def size(self) -> int:
        return self.stop - self.start


def plan_shards(n_images: int, shard_images: int = SHARD_IMAGES) -> list[Shard]:
    return [Shard(number, start, min(start + shard_images, n_images))
            for number, start in enumerate(range(0, n_images, shard_images))]


@dataclass(frozen=True)
class ShardContent:
    rows: np.ndarray          # int64 dataset rows that were read
    embeddings: np.ndarray    # float32 (len(rows), dim), unit norm
    bad_rows: np.ndarray      # int64 rows that could not be read
    bad_reasons: np.ndarray   # str, why
    digests: np.ndarray       # uint8 (shard size, 32): sha256 of each row's image bytes as encoded, in row order


def write_shard(folder: Path, shard: Shard, content: ShardContent) -> None:
    """Write one shard atomically (a reader sees the old file or the whole new one, never half)."""
    arrays = {"rows": np.asarray(content.rows, np.int64), "embeddings": np.asarray(content.embeddings, np.float32),
              "bad_rows": np.asarray(content.bad_rows, np.int64), "bad_reasons": np.asarray(content.bad_reasons, str),
              "digests": np.asarray(content.digests, np.uint8).reshape(-1, DIGEST_BYTES)}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays, checksum=np.asarray(_checksum(arrays)))
    try:
        atomic_write_bytes(folder / shard.name, buffer.getvalue())
    except OSError as error:
        raise ClipauditError(f"cannot write the embedding cache in {folder}: {error.strerror or error}") from None


def read_shard(folder: Path, shard: Shard, *, quiet: bool = False) -> ShardContent | None:
    """The shard's content; None when it is absent or damaged (damage is named on stderr unless ``quiet``)."""
    path = folder / shard.name
    try:
        with np.load(path, allow_pickle=False) as archive:
            stored = {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        return None
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as error:
        return _damaged(path, " ".join(str(error).split())[:120] or type(error).__name__, quiet)
    problem = _problem(stored, shard)
    if problem:
        return _damaged(path, problem, quiet)
    return ShardContent(stored["rows"], stored["embeddings"], stored["bad_rows"], stored["bad_reasons"],
                        stored["digests"])


def _problem(stored: dict[str, np.ndarray], shard: Shard) -> str | None:
    missing = [name for name in SHARD_ARRAYS if name not in stored]
    if missing:
        return f"no {missing[0]} array"
    if str(stored["checksum"]) != _checksum({name: stored[name] for name in SHARD_ARRAYS[:-1]}):
        return "checksum mismatch"
    rows, embeddings, bad_rows = stored["rows"], stored["embeddings"], stored["bad_rows"]
    if embeddings.ndim != 2 or len(rows) != len(embeddings) or len(bad_rows) != len(stored["bad_reasons"]):
        return "arrays of different lengths"
    if stored["digests"].shape != (shard.size, DIGEST_BYTES):
        return "no digest for each of its rows"
    if sorted(np.concatenate([rows, bad_rows]).tolist()) != list(range(shard.start, shard.stop)):
        return f"it does not hold rows {shard.start} to {shard.stop - 1}"
    return None


def _damaged(path: Path, reason: str, quiet: bool) -> None:
    if not quiet:
        print(f"clipaudit: cache shard {path.name} in {path.parent} is damaged ({reason}); encoding it again",
              file=sys.stderr)
    return None


def _checksum(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256(b"clipaudit-shard-v2\n")
    for name in SHARD_ARRAYS[:-1]:
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}\n".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()
