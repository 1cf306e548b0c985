"""One audit, end to end: taxonomy + dataset + model -> results.json, predictions.parquet, report.html.

Every check that can fail on user input runs before the first output is written, and the
outputs are written into a staging folder and moved into place together, so a failed audit
leaves nothing half-written in `--out`.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from clipaudit.errors import ClipauditError, DataError, TaxonomyError
from clipaudit.results import build_results
from clipaudit.taxonomy import Taxonomy, check_against_dataset, check_against_model, load_taxonomy

SKIPPED_IMAGES_LISTED = 100


@dataclass(frozen=True)
class AuditOptions:
    """How to run the model; validated at the door."""

    device: str = "auto"
    dtype: str = "auto"
    batch_size: int = 64
    num_workers: int = 0
    seed: int = 0
    cache_dir: Path | None = None
    skip_bad_images: bool = False
    trust_remote_code: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ClipauditError(f"--batch-size: expected a positive integer, got {self.batch_size}")
        if self.num_workers < 0:
            raise ClipauditError(f"--num-workers: expected 0 or more, got {self.num_workers}")


@dataclass
class AuditRun:
    """What an audit produced, before it is written."""

    results: dict
    predictions: pd.DataFrame
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class AuditInputs:
    """A dataset and a model, loaded and checked against the taxonomies they will answer."""

    dataset: object
    model: object
    cache_dir: Path
    timings: dict[str, float]
    warnings: list[str] = field(default_factory=list)  # what the taxonomy asks that the data cannot fully answer

    @property
    def model_manifest(self) -> dict:
        manifest = asdict(self.model.info)
        manifest["id"] = manifest.pop("name")
        return manifest


def load_inputs(*, taxonomies: list[Taxonomy], data: str, model: str, options: AuditOptions) -> AuditInputs:
    """Load the dataset, then the model, checking each taxonomy against both before any encoding."""
    from clipaudit.cache import default_cache_dir
    from clipaudit.data import load_dataset
    from clipaudit.models import load_model

    started = time.perf_counter()
    cache_dir = Path(options.cache_dir) if options.cache_dir else default_cache_dir()
    dataset = load_dataset(data, cache_dir=cache_dir)
    values = {attribute: dataset.attribute_values(attribute) for attribute in dataset.attributes}
    warnings = list(dict.fromkeys(
        warning for taxonomy in taxonomies for warning in _check_taxonomy_fits_dataset(taxonomy, dataset, values)
    ))
    timings = {"load_data_s": time.perf_counter() - started}
    _seed_everything(options.seed)
    mark = time.perf_counter()
    zero_shot_model = load_model(
        model,
        device=options.device,
        dtype=options.dtype,
        cache_dir=cache_dir,
        trust_remote_code=options.trust_remote_code,
    )
    for taxonomy in taxonomies:
        _check_taxonomy_fits_model(taxonomy, zero_shot_model)
    timings["load_model_s"] = time.perf_counter() - mark
    return AuditInputs(dataset=dataset, model=zero_shot_model, cache_dir=cache_dir, timings=timings, warnings=warnings)


def encode_images(inputs: AuditInputs, options: AuditOptions):
    """Image embeddings from the cache or the model; at least one image must be readable."""
    from clipaudit.embed import embed_images

    images = embed_images(
        inputs.model,
        inputs.dataset,
        cache_dir=inputs.cache_dir,
        batch_size=options.batch_size,
        num_workers=options.num_workers,
        skip_bad_images=options.skip_bad_images,
        progress=options.progress,
    )
    if len(images.rows) == 0:
        raise DataError(f"{inputs.dataset.spec}: no image could be read, nothing to audit")
    return images


def run_audit(
    *,
    taxonomy: str | Path | Taxonomy,
    data: str,
    model: str,
    options: AuditOptions = AuditOptions(),
    stats_settings=None,
) -> AuditRun:
    """Load everything, check it fits together, encode (or read the cache), score, compute statistics."""
    from clipaudit.embed import embed_texts
    from clipaudit.score import predictions_frame, taxonomy_prompts
    from clipaudit.stats import StatsSettings

    started = time.perf_counter()
    stats_settings = stats_settings or StatsSettings(seed=options.seed)
    if not isinstance(taxonomy, Taxonomy):
        taxonomy = load_taxonomy(taxonomy)
    inputs = load_inputs(taxonomies=[taxonomy], data=data, model=model, options=options)
    timings = dict(inputs.timings)
    images = encode_images(inputs, options)
    timings["embed_images_s"] = images.seconds

    mark = time.perf_counter()
    text_embeddings = embed_texts(inputs.model, taxonomy_prompts(taxonomy), cache_dir=inputs.cache_dir)
    timings["embed_texts_s"] = time.perf_counter() - mark

    mark = time.perf_counter()
    dataset = inputs.dataset
    attributes = dataset.frame.iloc[images.rows][["image_id", *dataset.attributes]]
    predictions = predictions_frame(taxonomy, attributes, images.embeddings, text_embeddings, inputs.model.info)
    timings["score_s"] = time.perf_counter() - mark

    manifest = {
        "model": inputs.model_manifest,
        "dataset": {
            "spec": data,
            "fingerprint": dataset.fingerprint,
            "n_images": len(dataset),
            "n_used": int(len(images.rows)),
            "n_skipped": len(images.bad_images),
            "skipped_images": [
                {"image_id": image_id, "reason": reason}
                for image_id, reason in images.bad_images[:SKIPPED_IMAGES_LISTED]
            ],
            "attributes": list(dataset.attributes),
        },
        "device": inputs.model.info.device,
        "dtype": inputs.model.info.dtype,
        "seed": options.seed,
        "batch_size": options.batch_size,
        "image_embeddings_from_cache": images.from_cache,
        "cache_dir": str(inputs.cache_dir),
        "warnings": inputs.warnings,
    }
    results = build_results(predictions, taxonomy, manifest=manifest, settings=stats_settings, timings=timings, started=started)
    return AuditRun(results=results, predictions=predictions, timings=timings)


def _check_taxonomy_fits_dataset(taxonomy: Taxonomy, dataset, values: dict[str, set[str]]) -> list[str]:
    """Errors stop the audit; warnings are returned for the manifest and the report's caveats.

    A target value with no class is only a warning in general (those images count as
    misclassified), but an error where the dataset explains that the attribute does not map
    onto the vocabulary the taxonomy uses (UTKFace's 5 race groups against FairFace's 7).
    """
    problems = check_against_dataset(taxonomy, values)
    errors = [p for p in problems if getattr(p, "severity", "error") == "error"]
    if errors:
        note = _dataset_note(dataset, errors[0])
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        raise TaxonomyError(f"{errors[0]}{note}{more}")
    notes = getattr(dataset, "notes", {}) or {}
    for probe in taxonomy.probes:
        if probe.target in notes and probe.target in values:
            unmapped = sorted(values[probe.target] - set(probe.class_ids()))
            if unmapped:
                raise TaxonomyError(
                    f"probe '{probe.id}': dataset {dataset.spec!r} has {probe.target} values "
                    f"{', '.join(map(repr, unmapped))} that no class of the probe names; {notes[probe.target]}"
                )
    return [str(problem) for problem in problems]


def _dataset_note(dataset, problem) -> str:
    """Datasets explain attributes that do not map onto FairFace's vocabulary (UTKFace's race)."""
    notes = getattr(dataset, "notes", {}) or {}
    for attribute, note in notes.items():
        if attribute in str(problem):
            return f"; {note}"
    return ""


def _check_taxonomy_fits_model(taxonomy: Taxonomy, model) -> None:
    problems = check_against_model(taxonomy, model.count_tokens, model.info.max_text_tokens)
    if problems:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise TaxonomyError(f"{problems[0]}{more}")


def _seed_everything(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
