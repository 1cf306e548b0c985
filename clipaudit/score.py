"""Zero-shot classification from prompts: class embeddings, logits, top-1 predictions.

A class with several prompts gets the mean of their L2-normalised text embeddings, normalised
again (Radford et al. 2021, sec. 3.1.4). Logits are the model's own: logit_scale x cosine
similarity (+ logit_bias for SigLIP-style models), so with one prompt per class they equal
transformers' `logits_per_image`.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from clipaudit.models.base import ModelInfo
from clipaudit.taxonomy import Probe, Taxonomy
from clipaudit.taxonomy.groupings import with_attribute_groups


def taxonomy_prompts(taxonomy: Taxonomy) -> list[str]:
    """Every prompt the taxonomy needs, each once, in a stable order."""
    prompts: dict[str, None] = {}
    for probe in taxonomy.probes:
        for taxonomy_class in probe.classes:
            prompts.update(dict.fromkeys(taxonomy.prompts_for(probe, taxonomy_class)))
    return list(prompts)


def class_embeddings(taxonomy: Taxonomy, probe: Probe, text_embeddings: Mapping[str, np.ndarray]) -> np.ndarray:
    """One unit vector per class, in the probe's class order."""
    vectors = []
    for taxonomy_class in probe.classes:
        prompt_vectors = np.stack([text_embeddings[p] for p in taxonomy.prompts_for(probe, taxonomy_class)])
        mean = prompt_vectors.mean(axis=0)
        vectors.append(mean / np.linalg.norm(mean))
    return np.stack(vectors).astype(np.float32)


def zero_shot_logits(image_embeddings: np.ndarray, class_vectors: np.ndarray, info: ModelInfo) -> np.ndarray:
    """logit_scale * cos(image, class) + logit_bias, shape (images, classes), float32."""
    cosine = image_embeddings.astype(np.float32) @ class_vectors.T.astype(np.float32)
    return (np.float32(info.logit_scale) * cosine + np.float32(info.logit_bias)).astype(np.float32)


def predictions_frame(
    taxonomy: Taxonomy,
    attributes: pd.DataFrame,
    image_embeddings: np.ndarray,
    text_embeddings: Mapping[str, np.ndarray],
    info: ModelInfo,
) -> pd.DataFrame:
    """The predictions table of DESIGN.md: one row per (probe, image).

    `attributes` holds `image_id` and the dataset's attribute columns for exactly the images in
    `image_embeddings`, in the same order.
    """
    # The taxonomy's coarser columns (race_binary from race) travel as attributes, so every later
    # stage (stats, sweep, compare, `clipaudit stats`) groups by them like any dataset column.
    attributes = with_attribute_groups(attributes.reset_index(drop=True), taxonomy.attribute_groups)
    frames = []
    for probe in taxonomy.probes:
        logits = zero_shot_logits(image_embeddings, class_embeddings(taxonomy, probe, text_embeddings), info)
        class_ids = np.asarray(probe.class_ids(), dtype=object)
        frame = attributes.copy()
        frame.insert(0, "probe", probe.id)
        frame["target"] = attributes[probe.target].astype(object) if probe.target else None
        frame["prediction"] = class_ids[logits.argmax(axis=1)] if len(logits) else []
        frame["scores"] = list(logits)
        frames.append(frame)
    columns = ["probe", "image_id", *[c for c in attributes.columns if c != "image_id"], "target", "prediction", "scores"]
    return pd.concat(frames, ignore_index=True)[columns]
