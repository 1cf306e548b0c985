"""Encode the images (or read the cache), then score any number of taxonomies on them."""
from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass

import pandas as pd

from clipaudit.embed.parts import Part
from clipaudit.errors import DataError
from clipaudit.pipeline.inputs import AuditInputs
from clipaudit.pipeline.options import AuditOptions
from clipaudit.progress import step
from clipaudit.taxonomy import Taxonomy


def launcher_part() -> Part:
    """This process's part of the shards: its rank among WORLD_SIZE under torchrun (or any launcher
    that sets RANK and WORLD_SIZE), else the whole."""
    rank, world = os.environ.get("RANK", ""), os.environ.get("WORLD_SIZE", "")
    if rank.isdigit() and world.isdigit() and int(world) > 1 and int(rank) < int(world):
        return Part(int(rank), int(world))
    return Part()


def encode_images(inputs: AuditInputs, options: AuditOptions):
    """Every image embedding, from the cache or the model (this process encodes its launcher part,
    then the rest or waits for the processes encoding it); at least one image must be readable."""
    images = _embed(inputs, options, part=launcher_part(), complete=True)
    if len(images.rows) == 0:
        raise DataError(f"{inputs.dataset.spec}: no image could be read, nothing to audit")
    return images


def encode_part(inputs: AuditInputs, options: AuditOptions, part: Part) -> None:
    """Fill the cache with ``part`` of the shards (an array job, a rank other than 0) and return."""
    _embed(inputs, options, part=part, complete=False)


def _embed(inputs: AuditInputs, options: AuditOptions, *, part: Part, complete: bool):
    from clipaudit.embed import embed_images

    loading_before = inputs.model.load_seconds
    images = embed_images(
        inputs.model,
        inputs.dataset,
        cache_dir=inputs.cache_dir,
        batch_size=inputs.batching.batch_size,
        num_workers=inputs.batching.num_workers,
        skip_bad_images=options.skip_bad_images,
        progress=options.progress,
        part=part,
        complete=complete,
        shard_images=options.shard_images,
    )
    loading = _moved_to_model_loading(inputs, loading_before)
    return dataclasses.replace(images, seconds=images.seconds - loading) if images is not None else None


def _moved_to_model_loading(inputs: AuditInputs, loading_before: float) -> float:
    """Seconds the lazy model spent loading since ``loading_before``: counted as loading, not encoding."""
    loading = inputs.model.load_seconds - loading_before
    inputs.timings["load_model_s"] = inputs.timings.get("load_model_s", 0.0) + loading
    return loading



@dataclass
class Scored:
    """Predictions of each taxonomy (in the order given) on the encoded images, and the time it took."""

    predictions: list[pd.DataFrame]
    embed_texts_s: float
    score_s: float


def embed_prompts(inputs: AuditInputs, taxonomies: list[Taxonomy]) -> dict:
    """Text embeddings for every prompt of every taxonomy (each once), from the cache where it has them."""
    from clipaudit.embed import embed_texts
    from clipaudit.score import taxonomy_prompts

    prompts = list(dict.fromkeys(prompt for taxonomy in taxonomies for prompt in taxonomy_prompts(taxonomy)))
    with step(f"encoding {len(prompts)} prompts"):
        return embed_texts(inputs.model, prompts, cache_dir=inputs.cache_dir)


def score_taxonomies(inputs: AuditInputs, images, taxonomies: list[Taxonomy]) -> Scored:
    """Text embeddings for every prompt of every taxonomy (each once), then one predictions table each."""
    from clipaudit.score import predictions_frame

    mark, loading_before = time.perf_counter(), inputs.model.load_seconds
    text_embeddings = embed_prompts(inputs, taxonomies)
    embed_texts_s = time.perf_counter() - mark - _moved_to_model_loading(inputs, loading_before)
    mark = time.perf_counter()
    dataset = inputs.dataset
    attributes = dataset.frame.iloc[images.rows][["image_id", *dataset.attributes]]
    with step(f"scoring {len(taxonomies)} taxonom{'y' if len(taxonomies) == 1 else 'ies'}"):
        predictions = [predictions_frame(taxonomy, attributes, images.embeddings, text_embeddings, inputs.model.info)
                       for taxonomy in taxonomies]
    return Scored(predictions=predictions, embed_texts_s=embed_texts_s, score_s=time.perf_counter() - mark)
