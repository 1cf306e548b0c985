"""results.json: statistics over a predictions table, the manifest, and the protocol in full.

Torch-free: `clipaudit stats` rebuilds results from a predictions file with this module alone.
"""
from __future__ import annotations

import json
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

import clipaudit
from clipaudit.confusion import confusion_matrix
from clipaudit.outputs import write_output_files
from clipaudit.taxonomy import Taxonomy

SCHEMA_VERSION = "1.0"


def build_results(predictions: pd.DataFrame, taxonomy: Taxonomy, *, manifest: dict, settings, timings: dict, started: float) -> dict:
    """Statistics over a predictions table, wrapped with the manifest into a results document."""
    from clipaudit.schemas import validate_results
    from clipaudit.stats import compute_statistics

    mark = time.perf_counter()
    statistics = compute_statistics(predictions, taxonomy.probes, settings=settings)
    timings["statistics_s"] = time.perf_counter() - mark
    timings["total_s"] = time.perf_counter() - started
    described = taxonomy.to_dict()
    protocol = {probe["id"]: probe for probe in described["probes"]}
    probes = []
    for entry in statistics["probes"]:
        probe = {**entry, "class_details": protocol[entry["id"]]["classes"], "templates": protocol[entry["id"]]["templates"]}
        confusion = confusion_matrix(predictions, taxonomy.probe(entry["id"]))
        if confusion is not None:
            probe["confusion"] = confusion
        probes.append(probe)
    results = {
        "schema_version": SCHEMA_VERSION,
        "manifest": {
            "clipaudit_version": clipaudit.__version__,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            **manifest,
            "taxonomy": {key: value for key, value in described.items() if key != "probes"},
            "timings": {name: round(seconds, 3) for name, seconds in timings.items()},
            "statistics": statistics["statistics"],
        },
        "probes": probes,
        "findings": statistics["findings"],
    }
    validate_results(results)
    return results


def write_outputs(results: dict, predictions: pd.DataFrame | None, out_dir: Path, *, comparison: dict | None = None) -> list[Path]:
    """Write results.json, predictions.parquet (when given), report.html, summary.md and
    model-index.yaml, all or nothing; the last three are rendered from ``results`` alone
    (the report also from ``comparison``, when the audit was checked against a baseline)."""
    from clipaudit.predictions import predictions_to_parquet_bytes
    from clipaudit.report import render_model_index, render_report, render_summary_markdown

    files = {"results.json": json.dumps(results, indent=2, ensure_ascii=False).encode("utf-8")}
    if predictions is not None:
        files["predictions.parquet"] = predictions_to_parquet_bytes(predictions)
    files["report.html"] = render_report(results, comparison=comparison).encode("utf-8")
    files["summary.md"] = render_summary_markdown(results).encode("utf-8")
    files["model-index.yaml"] = render_model_index(results).encode("utf-8")
    return write_output_files(Path(out_dir), files)
