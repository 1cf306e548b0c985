"""One audit, end to end: taxonomy + dataset + model -> results.json, predictions.parquet, report.html.

Every check that can fail on user input runs before the first output is written (in
:mod:`clipaudit.pipeline`), and the outputs are written into a staging folder and moved into
place together, so a failed audit leaves nothing half-written in `--out`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from clipaudit import progress
from clipaudit.pipeline.encode import encode_images, score_taxonomies
from clipaudit.pipeline.inputs import load_inputs
from clipaudit.pipeline.manifest import run_manifest
from clipaudit.pipeline.options import AuditOptions
from clipaudit.pipeline.results import build_results, write_outputs
from clipaudit.stats import StatsSettings, group_table
from clipaudit.taxonomy import Taxonomy, load_taxonomy

__all__ = ["AuditOptions", "AuditRun", "run_audit"]


@dataclass
class AuditRun:
    """What an audit produced, before it is written."""

    results: dict
    predictions: pd.DataFrame
    timings: dict[str, float] = field(default_factory=dict)

    def group_table(self) -> pd.DataFrame:
        """One row per (probe, slice, metric, group): rate, interval, difference from the reference, test."""
        return group_table(self.results)

    def scorecard(self) -> pd.DataFrame:
        """One row per probe x slice on the probe's headline metric: the worst-off group, the gap with its
        interval, significant or not, findings and small groups (the report's scorecard)."""
        from clipaudit.report import build_report_view
        from clipaudit.report.summary_view import SCORECARD_COLUMNS, scorecard_records

        card = build_report_view(self.results).scorecard
        return pd.DataFrame.from_records(scorecard_records(card) if card else [], columns=SCORECARD_COLUMNS)

    def findings(self) -> pd.DataFrame:
        """The findings, one row each, in the statistics' order (results.json's ``findings``)."""
        return pd.DataFrame.from_records(self.results["findings"])

    def _repr_html_(self) -> str:
        """In a notebook: the report's first screen (verdict, scorecard, key findings)."""
        from clipaudit.report import render_summary_html

        return render_summary_html(self.results)

    def write(self, out_dir: str | Path) -> list[Path]:
        """results.json, predictions.parquet, report.html, summary.md and model-index.yaml, all or nothing."""
        return write_outputs(self.results, self.predictions, Path(out_dir))


def run_audit(
    *,
    taxonomy: str | Path | Taxonomy,
    data: str,
    model: str,
    options: AuditOptions = AuditOptions(),
    stats_settings: StatsSettings | None = None,
) -> AuditRun:
    """Load everything, check it fits together, encode (or read the cache), score, compute statistics."""
    started = time.perf_counter()
    stats_settings = stats_settings or StatsSettings(seed=options.seed)
    if not isinstance(taxonomy, Taxonomy):
        taxonomy = load_taxonomy(taxonomy)
    with progress.shown(options.progress):
        inputs = load_inputs(taxonomies=[taxonomy], data=data, model=model, options=options)
        images = encode_images(inputs, options)
        scored = score_taxonomies(inputs, images, [taxonomy])
        timings = {**inputs.timings, "embed_images_s": images.seconds, "embed_texts_s": scored.embed_texts_s,
                   "score_s": scored.score_s}
        manifest = run_manifest(inputs, images, data=data, options=options)
        predictions = scored.predictions[0]
        results = build_results(predictions, taxonomy, manifest=manifest, settings=stats_settings, timings=timings,
                                started=started)
    return AuditRun(results=results, predictions=predictions, timings=timings)
