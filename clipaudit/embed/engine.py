"""Batched encoding of images and prompts, with an on-disk cache.

Image embeddings are computed once per (model weights, preprocessing, dtype, dataset bytes) and
text embeddings once per (model weights, tokenizer, dtype, prompt): scoring any taxonomy or
variant afterwards is a matrix product. Cache entries are keyed by a hash of every input plus
:data:`CACHE_FORMAT`, so a changed input never reads a stale entry.
"""
from __future__ import annotations

import hashlib
import io
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clipaudit.files import atomic_write_bytes, cache_key
from clipaudit.data.base import describe_bad_images
from clipaudit.errors import DataError
from clipaudit.embed.encoder import encode_rows, normalised
from clipaudit.models.base import ModelInfo, ZeroShotModel

# Bump when the layout of a cache file changes.
CACHE_FORMAT = 2  # 2: keys name the loader (transformers, open_clip, converted)


@dataclass(frozen=True)
class ImageEmbeddings:
    """L2-normalised embeddings of the images that could be read, in dataset order."""

    rows: np.ndarray            # dataset row index of each embedding
    embeddings: np.ndarray      # float32, shape (len(rows), dim), unit norm
    bad_images: tuple[tuple[str, str], ...]  # (image_id, reason) of images that could not be read
    from_cache: bool
    seconds: float


def embed_images(
    model: ZeroShotModel,
    dataset,
    *,
    cache_dir: Path,
    batch_size: int = 64,
    num_workers: int = 0,
    skip_bad_images: bool = False,
    progress: bool = True,
) -> ImageEmbeddings:
    """Encode every image of `dataset` (or read them from the cache); raise DataError for
    unreadable images unless `skip_bad_images`."""
    started = time.perf_counter()
    path = image_cache_path(cache_dir, model.info, dataset.fingerprint)
    cached = _read_image_cache(path)
    if cached is None and dataset.unreadable_found and not skip_bad_images:
        # Found by the fingerprint pass: say so now, not after encoding every other image.
        raise _bad_images_error(dataset, sorted(dataset.unreadable_found))
    if cached is None:
        rows, embeddings, bad_images = encode_rows(
            model, dataset, range(len(dataset)), batch_size=batch_size, num_workers=num_workers, progress=progress
        )
        _write_image_cache(path, rows, embeddings, bad_images)
        from_cache = False
    else:
        rows, embeddings, bad_images = cached
        from_cache = True
    if bad_images and not skip_bad_images:
        raise _bad_images_error(dataset, [f"{image_id} ({reason})" for image_id, reason in bad_images])
    return ImageEmbeddings(rows, embeddings, tuple(bad_images), from_cache, time.perf_counter() - started)


def _bad_images_error(dataset, bad: list[str]) -> DataError:
    return DataError(f"{dataset.spec}: {describe_bad_images(bad)}; fix them or pass --skip-bad-images")


def embed_texts(model: ZeroShotModel, prompts: list[str], *, cache_dir: Path, batch_size: int = 256) -> dict[str, np.ndarray]:
    """L2-normalised embedding of each distinct prompt, from the cache where it has them."""
    path = text_cache_path(cache_dir, model.info)
    stored = _read_npz(path)
    wanted = list(dict.fromkeys(prompts))
    missing = [prompt for prompt in wanted if _prompt_key(prompt) not in stored]
    for start in range(0, len(missing), batch_size):
        batch = missing[start : start + batch_size]
        vectors = normalised(model.encode_texts(batch).numpy())
        stored.update({_prompt_key(prompt): vector for prompt, vector in zip(batch, vectors)})
    if missing:
        buffer = io.BytesIO()
        np.savez(buffer, **stored)
        atomic_write_bytes(path, buffer.getvalue())
    return {prompt: stored[_prompt_key(prompt)] for prompt in wanted}


def image_cache_path(cache_dir: Path, info: ModelInfo, dataset_fingerprint: str) -> Path:
    key = cache_key(**_model_key(info), preprocessing=info.preprocessing_sha256, dataset=dataset_fingerprint)
    return Path(cache_dir) / "embeddings" / "images" / f"{key}.npz"


def text_cache_path(cache_dir: Path, info: ModelInfo) -> Path:
    key = cache_key(**_model_key(info), tokenizer=info.tokenizer_sha256, max_text_tokens=info.max_text_tokens)
    return Path(cache_dir) / "embeddings" / "texts" / f"{key}.npz"


def _model_key(info: ModelInfo) -> dict[str, object]:
    """What every cache key holds of the model: the weights as loaded, by whom, in which precision."""
    return {"format": CACHE_FORMAT, "weights": info.weights_sha256, "architecture": info.architecture,
            "loader": info.loader, "dtype": info.dtype}


def _prompt_key(prompt: str) -> str:
    return "p" + hashlib.sha256(prompt.encode("utf-8")).hexdigest()


def _read_npz(path: Path, *, required: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """A cache entry's arrays; {} when there is none. A damaged entry (truncated, not an archive,
    arrays missing) is reported in one line, deleted and treated as absent, so it is recomputed."""
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as archive:
            stored = {name: archive[name] for name in archive.files}
        missing = [name for name in required if name not in stored]
        if missing:
            raise ValueError(f"no {missing[0]} array")
        return stored
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as error:
        reason = " ".join(str(error).split())[:120] or type(error).__name__
        print(f"clipaudit: cache entry {path.name} is damaged ({reason}); discarded, recomputing", file=sys.stderr)
        path.unlink(missing_ok=True)
        return {}


IMAGE_CACHE_ARRAYS = ("rows", "embeddings", "bad_ids", "bad_reasons")


def _read_image_cache(path: Path):
    stored = _read_npz(path, required=IMAGE_CACHE_ARRAYS)
    if not stored:
        return None
    if len(stored["rows"]) != len(stored["embeddings"]) or stored["embeddings"].ndim != 2:
        print(f"clipaudit: cache entry {path.name} is damaged (rows and embeddings disagree); discarded, "
              "recomputing", file=sys.stderr)
        path.unlink(missing_ok=True)
        return None
    bad_images = list(zip(stored["bad_ids"].tolist(), stored["bad_reasons"].tolist()))
    return stored["rows"], stored["embeddings"], bad_images


def _write_image_cache(path: Path, rows: np.ndarray, embeddings: np.ndarray, bad_images) -> None:
    buffer = io.BytesIO()
    np.savez(
        buffer,
        rows=rows,
        embeddings=embeddings,
        bad_ids=np.asarray([image_id for image_id, _ in bad_images], dtype=str),
        bad_reasons=np.asarray([reason for _, reason in bad_images], dtype=str),
    )
    atomic_write_bytes(path, buffer.getvalue())
