"""sweep.json, sweep.parquet and sweep.html: the protocol of every variant, the changes, class moves, findings."""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from clipaudit.progress import step
from clipaudit import format
from clipaudit.documents import check_own, stamped, to_json_bytes
from clipaudit.files import without_local_paths, write_output_files
from clipaudit.stats import StatsSettings
from clipaudit.stats.findings import severity_key
from clipaudit.stats.multiple import CORRECTION_LABELS
from clipaudit.sweep.variants import BASE, SweepVariant
from clipaudit.vocabulary import higher_is_worse, metric_words

MOST_SENSITIVE_LISTED = 15


@dataclass
class SweepRun:
    document: dict                 # sweep.json
    table: pd.DataFrame            # sweep.parquet: one row per variant x probe x slice x metric x group
    timings: dict[str, float] = field(default_factory=dict)


def sweep_document(variants: list[SweepVariant], table: pd.DataFrame, class_changes: list[dict], *, manifest: dict, settings) -> dict:
    """sweep.json: manifest, the protocol of every variant, changes, class moves and findings."""
    # Every digit kept (pandas' to_json would round to 10 significant digits).
    records = [{key: _plain(value) for key, value in row.items()} for row in table.to_dict(orient="records")]
    tests = int(table["p_value"].notna().sum()) if len(table) else 0
    return stamped("sweep", {
        "manifest": {
            **manifest,
            "statistics": {
                **settings.to_dict(),
                "family": (
                    f"every paired change from the base (variant x probe x slice x metric x group with n >= "
                    f"{settings.min_n}) in this sweep: {tests} exact McNemar tests"
                ),
                "tests": tests,
            },
        },
        "variants": [
            {
                "taxonomy": variant.taxonomy_name,
                "id": variant.id,
                "description": variant.description,
                "sha256": variant.taxonomy.sha256,
                "probes": variant.taxonomy.to_dict()["probes"],
            }
            for variant in variants
        ],
        "changes": records,
        "most_sensitive": most_sensitive_groups(table),
        "class_changes": class_changes,
        "findings": sweep_findings(table, settings),
    })


def most_sensitive_groups(table: pd.DataFrame, limit: int = MOST_SENSITIVE_LISTED) -> list[dict]:
    """Groups whose rate moves most across variants (largest absolute change from the base)."""
    changed = table[(table["variant"] != BASE) & ~table["small"]] if len(table) else table
    if not len(changed):
        return []
    changed = changed.assign(abs_difference=changed["difference"].abs())
    top = changed.sort_values(["abs_difference", "p_value"], ascending=[False, True]).head(limit)
    return [
        {key: _plain(row[key]) for key in (
            "taxonomy", "variant", "probe", "slice", "metric", "group", "n", "base_value", "value",
            "difference", "difference_ci_low", "difference_ci_high", "p_adjusted", "significant",
        )}
        for _, row in top.iterrows()
    ]


def sweep_findings(table: pd.DataFrame, settings: StatsSettings) -> list[dict]:
    """Every significant change, as one plain sentence with its numbers, in the findings order of
    every output (:func:`clipaudit.stats.findings.severity_key`: changes for the worse first)."""
    if not len(table):
        return []
    significant = [row for _, row in table[table["significant"]].iterrows()]
    significant.sort(key=lambda row: (
        *severity_key(worse=(row["difference"] > 0) == higher_is_worse(row["metric"]),
                      difference=row["difference"], p_adjusted=row["p_adjusted"]),
        row["taxonomy"], row["variant"], row["probe"], row["slice"], row["metric"], row["group"]))
    findings = []
    for row in significant:
        direction = "rose" if row["difference"] > 0 else "fell"
        text = (
            f"With variant '{row['variant']}', the {metric_words(row['metric'])} of images labelled {row['group']} "
            f"({row['probe']}, by {row['slice']}) {direction} from {format.percent(row['base_value'])} to "
            f"{format.percent(row['value'])}: {format.points_number(row['difference'])} points "
            f"({format.ci_label(settings.confidence)} "
            f"{format.points_range(row['difference_ci_low'], row['difference_ci_high'])}; exact McNemar, "
            f"{CORRECTION_LABELS[settings.correction]} {format.p_phrase(row['p_adjusted'])})."
        )
        findings.append({
            "taxonomy": row["taxonomy"], "variant": row["variant"], "probe": row["probe"], "slice": row["slice"],
            "metric": row["metric"], "group": row["group"], "base_value": float(row["base_value"]),
            "value": float(row["value"]), "difference": float(row["difference"]),
            "p_value": float(row["p_value"]), "p_adjusted": float(row["p_adjusted"]), "text": text,
        })
    return findings


def write_sweep_outputs(run: SweepRun, out_dir: Path) -> list[Path]:
    """sweep.json, sweep.parquet and sweep.html, all or nothing."""
    from clipaudit.report.sweep_view import render_sweep_report

    check_own(run.document, "sweep")
    # Paths relative to the output folder (the outputs are shared, the machine is not).
    document = {**run.document, "manifest": without_local_paths(run.document["manifest"], base=Path(out_dir))}
    with step("writing the sweep report"):
        parquet = io.BytesIO()
        run.table.to_parquet(parquet, index=False)
        files = {
            "sweep.json": to_json_bytes(document),
            "sweep.parquet": parquet.getvalue(),
            "sweep.html": render_sweep_report(document).encode("utf-8"),
        }
    return write_output_files(Path(out_dir), files)


def _plain(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return None if np.isnan(value) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    return value
