"""Taxonomy sensitivity studies: one model, one dataset, many versions of the question.

A sweep scores the base taxonomy and each variant on the same images. Images are encoded once
(and usually come from the cache); each variant costs a few text embeddings and a matrix
product. Because every variant sees the same images, each change in a group's rate is a paired
comparison (:mod:`clipaudit.sweep.changes`), with one multiple-testing correction over the whole sweep.
"""
from __future__ import annotations

import time

import pandas as pd

from clipaudit import progress
from clipaudit.pipeline.encode import encode_images, score_taxonomies
from clipaudit.pipeline.inputs import load_inputs
from clipaudit.pipeline.manifest import rounded_timings, run_manifest
from clipaudit.pipeline.options import AuditOptions
from clipaudit.stats import StatsSettings
from clipaudit.sweep.changes import compare_variants
from clipaudit.sweep.document import SweepRun, sweep_document
from clipaudit.sweep.spec import SweepSpec
from clipaudit.sweep.variants import distinct_variants, sweep_variants
from clipaudit.taxonomy import Taxonomy


def run_sweep(
    *,
    taxonomies: list[Taxonomy],
    data: str,
    model: str,
    options: AuditOptions,
    settings: StatsSettings,
    spec: SweepSpec | None = None,
) -> SweepRun:
    """Encode the images once, score every variant, and compare each with its base."""
    started = time.perf_counter()
    variants, dropped = [], []
    for taxonomy in taxonomies:
        kept, notes = distinct_variants(sweep_variants(taxonomy, spec))
        variants += kept
        dropped += notes
    with progress.shown(options.progress):
        inputs = load_inputs(taxonomies=[v.taxonomy for v in variants], data=data, model=model, options=options)
        images = encode_images(inputs, options)
        scored = score_taxonomies(inputs, images, [variant.taxonomy for variant in variants])
    timings = {**inputs.timings, "embed_images_s": images.seconds, "embed_texts_s": scored.embed_texts_s,
               "score_s": scored.score_s}
    predictions = {variant.key: frame for variant, frame in zip(variants, scored.predictions)}

    mark = time.perf_counter()
    with progress.shown(options.progress), progress.step(f"paired tests over {len(variants)} taxonomy versions"):
        rows, class_changes = compare_variants(variants, predictions, settings=settings)
    table = pd.DataFrame(rows)
    timings["statistics_s"] = time.perf_counter() - mark
    timings["total_s"] = time.perf_counter() - started
    manifest = {**run_manifest(inputs, images, data=data, options=options), "timings": rounded_timings(timings)}
    manifest["notes"] = [*manifest["notes"], *dropped]
    document = sweep_document(variants, table, class_changes, manifest=manifest, settings=settings)
    return SweepRun(document=document, table=table, timings=timings)
