"""results.json: statistics over a predictions table, the manifest, and the protocol in full.

Torch-free: `clipaudit stats` rebuilds results from a predictions file with this module alone.
"""
from __future__ import annotations

import platform
import time
from pathlib import Path

import pandas as pd

from clipaudit.documents import check_own, stamped, to_json_bytes
from clipaudit.files import without_local_paths, write_output_files
from clipaudit.pipeline.manifest import rounded_timings
from clipaudit.progress import step
from clipaudit.stats import StatsSettings, compute_statistics
from clipaudit.stats.confusion import confusion_matrix
from clipaudit.stats.published_tables import datacomp_tables
from clipaudit.taxonomy import Taxonomy
from clipaudit.taxonomy.groupings import with_attribute_groups


def build_results(predictions: pd.DataFrame, taxonomy: Taxonomy, *, manifest: dict, settings: StatsSettings,
                  timings: dict, started: float) -> dict:
    """Statistics over a predictions table, wrapped with the manifest into a results document."""
    mark = time.perf_counter()
    with step(f"statistics over {len(predictions):,} predictions"):
        statistics = compute_statistics(predictions, taxonomy.probes, settings=settings)
    timings["statistics_s"] = time.perf_counter() - mark
    timings["total_s"] = time.perf_counter() - started
    alerts = [*manifest.get("alerts", []), *filter(None, [no_test_alert(statistics, settings.min_n)])]
    described = taxonomy.to_dict()
    protocol = {probe["id"]: probe for probe in described["probes"]}
    probes = []
    for entry in statistics["probes"]:
        probe = {**entry, "class_details": protocol[entry["id"]]["classes"], "templates": protocol[entry["id"]]["templates"]}
        confusion = confusion_matrix(predictions, taxonomy.probe(entry["id"]))
        if confusion is not None:
            probe["confusion"] = confusion
        probes.append(probe)
    results = stamped("results", {
        "manifest": {
            "python": platform.python_version(),
            **manifest,
            "alerts": alerts,
            "taxonomy": {key: value for key, value in described.items() if key != "probes"},
            "timings": rounded_timings(timings),
            "statistics": statistics["statistics"],
        },
        "probes": probes,
        "findings": statistics["findings"],
        **_published_tables(predictions, taxonomy, settings),
    })
    return check_own(results, "results")


def no_test_alert(statistics: dict, min_n: int) -> str | None:
    """When no test could run because every slice has fewer than two groups of --min-n images, say so,
    and which --min-n would let the largest groups be tested (a test needs two groups)."""
    if statistics["statistics"]["tests"]:
        return None
    second_largest = []
    for probe in statistics["probes"]:
        for slice_entry in probe["slices"]:
            for metric in slice_entry["metrics"]:
                sizes = sorted((group["n"] for group in metric["groups"]), reverse=True)
                if sum(size >= min_n for size in sizes) >= 2:
                    return None  # groups were large enough; the tests did not run for another reason (its note)
                second_largest.append(sizes[1] if len(sizes) > 1 else 0)
    largest = max(second_largest, default=0)
    if largest == 0:
        return "no test could run: no slice has two groups with images to compare"
    return (f"no test could run: no slice has two groups of at least --min-n {min_n} images; "
            f"--min-n {largest} would allow tests (groups that small have wide intervals)")


def _published_tables(predictions: pd.DataFrame, taxonomy: Taxonomy, settings: StatsSettings) -> dict:
    """``published_tables`` when the taxonomy asks for them (DataComp's, under its metric keys)."""
    if taxonomy.published_tables is None or taxonomy.published_tables.layout != "datacomp":
        return {}
    grouped = with_attribute_groups(predictions, taxonomy.attribute_groups)
    return {"published_tables": {"datacomp": datacomp_tables(grouped, taxonomy, settings=settings)}}


def write_outputs(results: dict, predictions: pd.DataFrame | None, out_dir: Path, *, comparison: dict | None = None) -> list[Path]:
    """Write results.json, predictions.parquet (when given), report.html, summary.md and
    model-index.yaml, all or nothing; the last three are rendered from ``results`` alone
    (the report also from ``comparison``, when the audit was checked against a baseline)."""
    from clipaudit.predictions import predictions_to_parquet_bytes
    from clipaudit.report import render_model_index, render_report, render_summary_markdown

    # Paths are recorded relative to the output folder (the outputs are shared, the machine is not).
    results = {**results, "manifest": without_local_paths(results["manifest"], base=Path(out_dir))}
    with step("writing the report"):
        files = {"results.json": to_json_bytes(results)}
        if predictions is not None:
            files["predictions.parquet"] = predictions_to_parquet_bytes(predictions)
        files["report.html"] = render_report(results, comparison=comparison).encode("utf-8")
        files["summary.md"] = render_summary_markdown(results).encode("utf-8")
        files["model-index.yaml"] = render_model_index(results).encode("utf-8")
    return write_output_files(Path(out_dir), files)
