"""Load a dataset and a model and check every taxonomy against both, before any encoding."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from clipaudit.errors import TaxonomyError
from clipaudit.pipeline.options import AuditOptions
from clipaudit.progress import step
from clipaudit.taxonomy import (
    Taxonomy,
    check_against_dataset,
    check_against_model,
    unmatched_target_values,
)


@dataclass
class AuditInputs:
    """A dataset and a model, loaded and checked against the taxonomies they will answer."""

    dataset: object
    model: object
    cache_dir: Path
    timings: dict[str, float]
    warnings: list[str] = field(default_factory=list)  # what the taxonomy asks that the data cannot fully answer
    alerts: list[str] = field(default_factory=list)  # what a reader must see before any number (manifest.alerts)
    batching: object = None  # clipaudit.embed.batching.Batching: the batch size and workers encoding uses

    @property
    def model_manifest(self) -> dict:
        manifest = asdict(self.model.info)
        manifest["id"] = manifest.pop("name")
        return manifest


def load_inputs(*, taxonomies: list[Taxonomy], data: str, model: str, options: AuditOptions) -> AuditInputs:
    """Load the dataset, then the model, checking each taxonomy against both before any encoding."""
    from clipaudit.files import check_cache_dir, default_cache_dir
    from clipaudit.data import load_dataset
    from clipaudit.embed import open_model
    from clipaudit.embed.batching import choose_batching
    from clipaudit.pipeline.options import available_cpus

    started = time.perf_counter()
    cache_dir = Path(options.cache_dir) if options.cache_dir else default_cache_dir()
    check_cache_dir(cache_dir, option="--cache-dir" if options.cache_dir else "cache folder")
    with step(f"reading the dataset {data}"):
        dataset = load_dataset(data, cache_dir=cache_dir)
    values = {attribute: dataset.attribute_values(attribute) for attribute in dataset.attributes}
    warnings = list(dict.fromkeys(
        warning for taxonomy in taxonomies
        for warning in _check_taxonomy_fits_dataset(taxonomy, dataset, values, allow_unmatched=options.allow_unmatched)
    ))
    alerts = unmatched_alerts(taxonomies, values) if options.allow_unmatched else []
    timings = {"load_data_s": time.perf_counter() - started}
    _seed_everything(options.seed)
    mark = time.perf_counter()
    zero_shot_model = open_model(
        model,
        device=options.device,
        dtype=options.dtype,
        cache_dir=cache_dir,
        trust_remote_code=options.trust_remote_code,
        compile=options.compile,
        load=lambda: _load_model_now(model, options, cache_dir),
    )
    for taxonomy in taxonomies:
        _check_taxonomy_fits_model(taxonomy, zero_shot_model)
    timings["load_model_s"] = time.perf_counter() - mark
    batching = choose_batching(zero_shot_model, batch_size=options.batch_size, num_workers=options.num_workers,
                               cpus=available_cpus())
    return AuditInputs(dataset=dataset, model=zero_shot_model, cache_dir=cache_dir, timings=timings, warnings=warnings,
                       alerts=alerts, batching=batching)


def unmatched_alerts(taxonomies: list[Taxonomy], values: dict[str, set[str]]) -> list[str]:
    """What --allow-unmatched let through, in words a report and the terminal show first."""
    alerts = []
    for taxonomy in taxonomies:
        for probe in taxonomy.probes:
            unmatched = unmatched_target_values(probe, values.get(probe.target or "", set()))
            if unmatched is not None:
                alerts.append(unmatched.alert())
    return list(dict.fromkeys(alerts))


def _check_taxonomy_fits_dataset(taxonomy: Taxonomy, dataset, values: dict[str, set[str]], *,
                                 allow_unmatched: bool) -> list[str]:
    """Errors stop the audit; warnings are returned for the manifest and the report's caveats.

    A target value with no class is an error unless ``allow_unmatched`` (those images would
    count as misclassified, so a label spelling would read as a disparity); where the dataset
    explains that the attribute does not map onto the taxonomy's vocabulary (UTKFace's 5 race
    groups against FairFace's 7), the error says so.
    """
    problems = check_against_dataset(taxonomy, values, allow_unmatched=allow_unmatched)
    errors = [p for p in problems if getattr(p, "severity", "error") == "error"]
    if errors:
        note = _dataset_note(dataset, errors[0])
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        raise TaxonomyError(f"{errors[0]}{note}{more}")
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

    random.seed(seed)
    np.random.seed(seed % 2**32)


def _load_model_now(spec: str, options: AuditOptions, cache_dir: Path):
    """Load the model (only when something must be encoded): torch seeded, and under torchrun each
    process of a node on its own GPU."""
    import os

    import torch

    from clipaudit.models import load_model
    from clipaudit.models.devices import resolve_device

    torch.manual_seed(options.seed)
    local_rank = os.environ.get("LOCAL_RANK", "")
    if local_rank.isdigit() and resolve_device(options.device) == "cuda":
        torch.cuda.set_device(int(local_rank) % torch.cuda.device_count())
    with step(f"loading the model {spec} (downloads show their own progress)"):
        return load_model(spec, device=options.device, dtype=options.dtype, cache_dir=cache_dir,
                          trust_remote_code=options.trust_remote_code, compile=options.compile)
