"""Image and prompt embeddings, computed once and cached on disk.

Image embeddings are computed once per (model weights, preprocessing, dtype, image ids, image
bytes), in shards (:mod:`clipaudit.embed.shards`) that several processes can share through claims
(:mod:`clipaudit.embed.claims`): the cache folder is keyed by everything but the bytes, and each
shard serves only the image bytes it was computed from (:mod:`clipaudit.embed.current`), so the
dataset is fingerprinted from the encoder's own reads, never by a separate pass. Text embeddings
are computed once per (model weights, tokenizer, dtype, prompt), with each prompt's token count.
Cache keys hash every input plus :data:`CACHE_FORMAT`, so a changed input never reads a stale entry.
"""
from __future__ import annotations

import hashlib
import io
import json
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clipaudit.data.base import describe_bad_images
from clipaudit.embed.claims import holder, try_claim
from clipaudit.embed.current import CurrentDigests
from clipaudit.embed.encoder import encode_rows, normalised
from clipaudit.embed.parts import SHARD_IMAGES, Part
from clipaudit.embed.shards import DIGEST_BYTES, Shard, ShardContent, plan_shards, read_shard, write_shard
from clipaudit.errors import ClipauditError, DataError
from clipaudit.files import atomic_write_bytes, cache_key
from clipaudit.models.base import ModelInfo, ZeroShotModel

# Bump when the layout of the cache changes.
CACHE_FORMAT = 4  # 2: keys name the loader; 3: image shards with checksums, token counts with prompts;
#                  4: image folders keyed by image ids, shards carrying each image's digest
POLL_S = 0.25            # how often a process waiting for another's shard looks again
OTHERS_GRACE_S = 120.0   # how long rank 0 leaves an unclaimed shard to the rank it belongs to
SAY_WAITING_EVERY_S = 30.0


@dataclass(frozen=True)
class ImageEmbeddings:
    """L2-normalised embeddings of the images that could be read, in dataset order."""

    rows: np.ndarray            # dataset row index of each embedding
    embeddings: np.ndarray      # float32, shape (len(rows), dim), unit norm
    bad_images: tuple[tuple[str, str], ...]  # (image_id, reason) of images that could not be read
    seconds: float
    images_from_cache: int = 0  # images whose shard this process read from the cache
    images_encoded: int = 0     # images this process encoded

    @property
    def from_cache(self) -> bool:
        """Every image came from the cache (nothing was encoded by this process)."""
        return self.images_encoded == 0


def embed_images(
    model: ZeroShotModel,
    dataset,
    *,
    cache_dir: Path,
    batch_size: int = 64,
    num_workers: int = 0,
    skip_bad_images: bool = False,
    progress: bool = True,
    part: Part = Part(),
    complete: bool = True,
    shard_images: int = SHARD_IMAGES,
    others_grace_s: float = OTHERS_GRACE_S,
) -> ImageEmbeddings | None:
    """Encode the images of `dataset` that are not cached yet and return them all; raise DataError
    for unreadable images unless `skip_bad_images`.

    This process encodes the missing shards of its ``part`` first. With ``complete`` it then
    encodes (or waits for the process that claimed them) every other missing shard, leaving a
    shard of another part to its own process for ``others_grace_s``, and returns every image;
    without, it returns None once its part is cached (array jobs, ranks other than 0).
    """
    started = time.perf_counter()
    folder = image_cache_folder(cache_dir, model.info, dataset.image_ids_key)
    shards = plan_shards(len(dataset), adopted_shard_size(folder, shard_images))
    current = CurrentDigests(dataset)
    contents = {shard.number: content for shard in shards
                if (content := current.serving(shard, read_shard(folder, shard))) is not None}
    missing = [shard for shard in shards if shard.number not in contents]
    own = [shard for shard in missing if part.holds(shard.number)]
    if (own or (complete and missing)) and dataset.unreadable_found and not skip_bad_images:
        # Known without encoding (a missing file, a problem memoised by an earlier run): say so now.
        # The others are found as the encoder reads them.
        raise _bad_images_error(dataset, sorted(dataset.unreadable_found))
    filler = _ShardFiller(model, dataset, folder, current, batch_size=batch_size, num_workers=num_workers,
                          progress=progress)
    contents.update(filler.fill(own, grace_s=0.0))
    if not complete:
        return None
    contents.update(filler.fill([shard for shard in missing if shard.number not in contents], grace_s=others_grace_s))
    rows, embeddings, bad_images = _assembled(dataset, [contents[shard.number] for shard in shards])
    dataset.fingerprint_from([bytes(digest) for shard in shards for digest in contents[shard.number].digests])
    if bad_images and not skip_bad_images:
        raise _bad_images_error(dataset, [f"{image_id} ({reason})" for image_id, reason in bad_images])
    return ImageEmbeddings(rows, embeddings, tuple(bad_images), time.perf_counter() - started,
                           images_from_cache=len(dataset) - filler.encoded, images_encoded=filler.encoded)


def adopted_shard_size(folder: Path, wanted: int) -> int:
    """The shard size of this cache entry: the first process to write it records its own, and every
    later one (an audit after array jobs run with another --shard-images) uses that, so that no
    shard is encoded again merely because it was cut differently."""
    layout = folder / "layout.json"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(layout, "x", encoding="utf-8") as stream:
            json.dump({"shard_images": wanted}, stream)
        return wanted
    except FileExistsError:
        pass
    except OSError as error:
        raise ClipauditError(f"cannot write the embedding cache in {folder}: {error.strerror or error}") from None
    for _ in range(20):  # its writer may be between creating the file and filling it
        try:
            recorded = json.loads(layout.read_text(encoding="utf-8")).get("shard_images")
        except (OSError, ValueError, AttributeError):
            recorded = None
        if isinstance(recorded, int) and recorded > 0:
            return recorded
        time.sleep(0.05)
    return wanted


class _ShardFiller:
    """Encodes missing shards under a claim each, or waits for the process holding the claim."""

    def __init__(self, model, dataset, folder: Path, current: CurrentDigests, *, batch_size: int, num_workers: int,
                 progress: bool):
        self.model, self.dataset, self.folder, self.current = model, dataset, folder, current
        self.batch_size, self.num_workers, self.progress = batch_size, num_workers, progress
        self.encoded = 0

    def fill(self, shards: list[Shard], *, grace_s: float) -> dict[int, ShardContent]:
        done: dict[int, ShardContent] = {}
        pending = list(shards)
        waiting_since = time.monotonic()
        said_at = waiting_since
        while pending:
            for shard in list(pending):
                content = self._take(shard, may_claim=time.monotonic() - waiting_since >= grace_s)
                if content is not None:
                    done[shard.number] = content
                    pending.remove(shard)
            if pending:
                if time.monotonic() - said_at >= SAY_WAITING_EVERY_S:
                    said_at = time.monotonic()
                    print(f"clipaudit: waiting for {len(pending)} shard(s) that other processes encode "
                          f"(first: {pending[0].name}, held by {holder(self._claim_path(pending[0]))})", file=sys.stderr)
                time.sleep(POLL_S)
        return done

    def _take(self, shard: Shard, *, may_claim: bool) -> ShardContent | None:
        """The shard's content if it is on disk now (of the images as they are), or once this process
        has encoded it under a claim."""
        content = self.current.serving(shard, read_shard(self.folder, shard, quiet=True))
        if content is not None or not may_claim:
            return content
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            claim = try_claim(self._claim_path(shard))
        except OSError as error:
            raise ClipauditError(f"cannot write the embedding cache in {self.folder}: {error.strerror or error}") from None
        if claim is None:
            return None
        try:
            # Finished by another just before we claimed?
            content = self.current.serving(shard, read_shard(self.folder, shard, quiet=True))
            if content is None:
                content, digests = self._encode(shard)
                write_shard(self.folder, shard, content)
                self.current.record(digests)  # memoised as each shard completes, for a resumed run
                self.encoded += shard.size
            return content
        finally:
            claim.release()

    def _encode(self, shard: Shard):
        """The shard's content, and the digest of each of its images as the encoder read them."""
        rows, embeddings, bad_images, digests = encode_rows(
            self.model, self.dataset, range(shard.start, shard.stop), batch_size=self.batch_size,
            num_workers=self.num_workers, progress=self.progress)
        row_of = {self.dataset.image_id(row): row for row in range(shard.start, shard.stop)}
        content = ShardContent(np.asarray(rows, np.int64), np.asarray(embeddings, np.float32),
                               np.asarray([row_of[image_id] for image_id, _ in bad_images], np.int64),
                               np.asarray([reason for _, reason in bad_images], str),
                               np.frombuffer(b"".join(entry.digest for entry in digests), np.uint8).reshape(-1, DIGEST_BYTES))
        return content, digests

    def _claim_path(self, shard: Shard) -> Path:
        return self.folder / f"{shard.name}.claim"


def _assembled(dataset, contents: list[ShardContent]):
    """Rows, embeddings and (image_id, reason) of the bad images over every shard, in dataset order."""
    rows = np.concatenate([content.rows for content in contents]) if contents else np.zeros(0, np.int64)
    dimension = next((content.embeddings.shape[1] for content in contents if len(content.embeddings)), 0)
    chunks = [content.embeddings for content in contents if len(content.embeddings)]
    embeddings = np.concatenate(chunks) if chunks else np.zeros((0, dimension), np.float32)
    bad_images = [(dataset.image_id(int(row)), str(reason)) for content in contents
                  for row, reason in zip(content.bad_rows, content.bad_reasons)]
    return rows, embeddings, bad_images


def _bad_images_error(dataset, bad: list[str]) -> DataError:
    return DataError(f"{dataset.spec}: {describe_bad_images(bad)}; fix them or pass --skip-bad-images")


def embed_texts(model: ZeroShotModel, prompts: list[str], *, cache_dir: Path, batch_size: int = 256) -> dict[str, np.ndarray]:
    """L2-normalised embedding of each distinct prompt, from the cache where it has them (the model
    is used only for the others; their token counts are cached with them)."""
    path = text_cache_path(cache_dir, model.info)
    stored = _read_npz(path)
    wanted = list(dict.fromkeys(prompts))
    missing = [prompt for prompt in wanted if _prompt_key(prompt) not in stored]
    for start in range(0, len(missing), batch_size):
        batch = missing[start : start + batch_size]
        vectors = normalised(model.encode_texts(batch).numpy())
        stored.update({_prompt_key(prompt): vector for prompt, vector in zip(batch, vectors)})
        stored.update({_token_count_key(prompt): np.asarray(model.count_tokens(prompt)) for prompt in batch})
    if missing:
        buffer = io.BytesIO()
        np.savez(buffer, **stored)
        try:
            atomic_write_bytes(path, buffer.getvalue())
        except OSError as error:
            raise ClipauditError(f"cannot write the embedding cache in {path.parent}: {error.strerror or error}") from None
    return {prompt: stored[_prompt_key(prompt)] for prompt in wanted}


def cached_token_counts(cache_dir: Path, info: ModelInfo) -> Callable[[str], int | None]:
    """A lookup of the token counts the text cache holds for ``info``'s model (None for an unknown prompt)."""
    stored = _read_npz(text_cache_path(cache_dir, info))

    def count(prompt: str) -> int | None:
        value = stored.get(_token_count_key(prompt))
        return None if value is None else int(value)
    return count


def image_cache_folder(cache_dir: Path, info: ModelInfo, image_ids_key: str) -> Path:
    """Where the shards of this model's embeddings of a dataset with these rows live (which image
    bytes each shard was computed from, it says itself)."""
    key = cache_key(**_model_key(info), preprocessing=info.preprocessing_sha256, image_ids=image_ids_key)
    return Path(cache_dir) / "embeddings" / "images" / key


def text_cache_path(cache_dir: Path, info: ModelInfo) -> Path:
    key = cache_key(**_model_key(info), tokenizer=info.tokenizer_sha256, max_text_tokens=info.max_text_tokens)
    return Path(cache_dir) / "embeddings" / "texts" / f"{key}.npz"


def _model_key(info: ModelInfo) -> dict[str, object]:
    """What every cache key holds of the model: the weights, by whom they are run (open_clip's
    version too, when it runs them), in which precision."""
    key: dict[str, object] = {"format": CACHE_FORMAT, "weights": info.weights_sha256,
                              "architecture": info.architecture, "loader": info.loader, "dtype": info.dtype}
    if info.open_clip_version is not None:  # absent otherwise, so other models keep their cache
        key["open_clip"] = info.open_clip_version
    return key


def _prompt_key(prompt: str) -> str:
    return "p" + hashlib.sha256(prompt.encode("utf-8")).hexdigest()


def _token_count_key(prompt: str) -> str:
    return "t" + hashlib.sha256(prompt.encode("utf-8")).hexdigest()


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """A cache entry's arrays; {} when there is none. A damaged entry (truncated, not an archive) is
    reported in one line and treated as absent, so it is recomputed and replaced."""
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as error:
        reason = " ".join(str(error).split())[:120] or type(error).__name__
        print(f"clipaudit: cache entry {path.name} is damaged ({reason}); discarded, recomputing", file=sys.stderr)
        return {}
