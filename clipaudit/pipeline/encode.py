"""Encode the images (or read the cache), then score any number of taxonomies on them."""
from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd

from clipaudit.errors import DataError
from clipaudit.pipeline.inputs import AuditInputs
from clipaudit.pipeline.options import AuditOptions
from clipaudit.progress import step
from clipaudit.taxonomy import Taxonomy


def encode_images(inputs: AuditInputs, options: AuditOptions):
    """Image embeddings from the cache or the model; at least one image must be readable."""
    from clipaudit.embed import embed_images

    images = embed_images(
        inputs.model,
        inputs.dataset,
        cache_dir=inputs.cache_dir,
        batch_size=inputs.batching.batch_size,
        num_workers=inputs.batching.num_workers,
        skip_bad_images=options.skip_bad_images,
        progress=options.progress,
    )
    if len(images.rows) == 0:
        raise DataError(f"{inputs.dataset.spec}: no image could be read, nothing to audit")
    return images



@dataclass
class Scored:
    """Predictions of each taxonomy (in the order given) on the encoded images, and the time it took."""

    predictions: list[pd.DataFrame]
    embed_texts_s: float
    score_s: float


def score_taxonomies(inputs: AuditInputs, images, taxonomies: list[Taxonomy]) -> Scored:
    """Text embeddings for every prompt of every taxonomy (each once), then one predictions table each."""
    from clipaudit.embed import embed_texts
    from clipaudit.score import predictions_frame, taxonomy_prompts

    prompts = list(dict.fromkeys(prompt for taxonomy in taxonomies for prompt in taxonomy_prompts(taxonomy)))
    mark = time.perf_counter()
    with step(f"encoding {len(prompts)} prompts"):
        text_embeddings = embed_texts(inputs.model, prompts, cache_dir=inputs.cache_dir)
    embed_texts_s = time.perf_counter() - mark
    mark = time.perf_counter()
    dataset = inputs.dataset
    attributes = dataset.frame.iloc[images.rows][["image_id", *dataset.attributes]]
    with step(f"scoring {len(taxonomies)} taxonom{'y' if len(taxonomies) == 1 else 'ies'}"):
        predictions = [predictions_frame(taxonomy, attributes, images.embeddings, text_embeddings, inputs.model.info)
                       for taxonomy in taxonomies]
    return Scored(predictions=predictions, embed_texts_s=embed_texts_s, score_s=time.perf_counter() - mark)
