"""Audits of several models on one taxonomy and one dataset -> one page (models.html).

Per probe x slice x metric: each model's rates with their intervals (from its results.json, so
the numbers are the audit's own), each model's gap with its interval, a ranking by gap with its
uncertainty (:func:`clipaudit.stats.ranking.rank_by_gap`, one bootstrap over the shared images),
and each model against the first, group by group, paired image by image (compare's pairing and
:mod:`clipaudit.stats.changes`), Holm-corrected over every such test on the page.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clipaudit.compare.groups import Comparer, decide_pairing
from clipaudit.compare.inputs import AuditOutput, CompareSettings, load_audit_output
from clipaudit.errors import CompareError, UsageError
from clipaudit.files import relative_location, write_output_files
from clipaudit.stats import metric_outcomes, probe_slice_groups
from clipaudit.stats.multiple import adjust_p_values
from clipaudit.stats.ranking import rank_by_gap
from clipaudit.stats.significance import is_significant
from clipaudit.vocabulary import direction_phrase

LINEUP_OUTPUT = "models.html"


def require_several(folders: Sequence[str | Path]) -> None:
    """A lineup compares two audits or more (one audit has its own report.html)."""
    if len(folders) < 2:
        raise UsageError("report: give at least two audit output folders to compare (AUDIT_DIR AUDIT_DIR ...)")


def run_lineup(folders: Sequence[str | Path], *, settings: CompareSettings = CompareSettings(),
               resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """The lineup document: models, then one table per probe x slice x metric."""
    require_several(folders)
    audits = [load_audit_output(folder, role=f"audit {index + 1}") for index, folder in enumerate(folders)]
    _require_same_protocol(audits)
    first = audits[0]
    pairings = [decide_pairing(first, other, list(first.probes)) for other in audits[1:]]
    comparers = [Comparer(first, other, pairing, settings) for other, pairing in zip(audits[1:], pairings)]
    tables = []
    for probe_entry in first.results["probes"]:
        for slice_entry in probe_entry["slices"]:
            for metric_entry in slice_entry["metrics"]:
                tables.append(_table(audits, comparers, probe_entry["id"], tuple(slice_entry["attributes"]),
                                     slice_entry["id"], metric_entry["metric"], settings=settings,
                                     resamples=resamples, seed=seed))
    _adjust(tables, settings)
    manifest = first.results["manifest"]
    return {
        "models": _labelled([_model(audit) for audit in audits]),
        "taxonomy": manifest["taxonomy"]["name"],
        "dataset": {"spec": manifest["dataset"].get("spec"), "fingerprint": manifest["dataset"].get("fingerprint"),
                    "n_images": manifest["dataset"].get("n_images")},
        "pairing": pairings[0].reason,
        "pairing_notes": [pairing.note for pairing in pairings if pairing.note],
        "settings": {"alpha": settings.alpha, "confidence": settings.confidence, "min_n": settings.min_n,
                     "resamples": resamples, "seed": seed,
                     "family_size": sum(1 for table in tables for group in table["groups"]
                                        for change in group["changes"] if change and change["p_value"] is not None)},
        "tables": tables,
    }


def write_lineup(lineup: dict[str, Any], out: Path) -> list[Path]:
    """models.html in ``out``, all or nothing."""
    return write_output_files(Path(out), {LINEUP_OUTPUT: lineup_page(lineup, out).encode("utf-8")})


def lineup_page(lineup: dict[str, Any], out: Path) -> str:
    """The HTML of models.html for the folder ``out``: the audit folders are named relative to it."""
    from clipaudit.report import render_lineup_html

    base = Path(out).resolve()
    models = [{**model, "path": relative_location(str(Path(model["path"]).resolve()), base=base)}
              for model in lineup["models"]]
    dataset = {**lineup["dataset"], "spec": relative_location(str(lineup["dataset"]["spec"]), base=base)}
    return render_lineup_html({**lineup, "models": models, "dataset": dataset})


def _require_same_protocol(audits: Sequence[AuditOutput]) -> None:
    first = audits[0].results["manifest"]
    for index, audit in enumerate(audits[1:], start=2):
        manifest = audit.results["manifest"]
        if manifest["taxonomy"]["sha256"] != first["taxonomy"]["sha256"]:
            raise CompareError(f"audit {index} {audit.label}: taxonomy {manifest['taxonomy']['name']!r} "
                               f"(sha256 {manifest['taxonomy']['sha256'][:12]}) differs from audit 1's "
                               f"{first['taxonomy']['name']!r} (sha256 {first['taxonomy']['sha256'][:12]}); "
                               "models are compared on one taxonomy")
        if manifest["dataset"].get("fingerprint") != first["dataset"].get("fingerprint"):
            raise CompareError(f"audit {index} {audit.label}: dataset {manifest['dataset'].get('spec')!r} differs from "
                               f"audit 1's {first['dataset'].get('spec')!r} (fingerprints differ); models are "
                               "compared on the same images")


def _model(audit: AuditOutput) -> dict[str, Any]:
    model = audit.results["manifest"]["model"]
    label = str(model.get("id") or model.get("spec"))
    if label.startswith((".", "/", "~")):  # a local folder (hub ids never start so): its name says enough
        label = Path(label).name
    return {"label": label, "path": audit.label, "created_at": audit.results["manifest"].get("created_at")}


def _labelled(models: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Two audits of one model get their position appended, so every column is told apart."""
    labels = [model["label"] for model in models]
    for index, model in enumerate(models):
        if labels.count(model["label"]) > 1:
            model["label"] = f"{model['label']} (audit {index + 1})"
    return models


def _entry(audit: AuditOutput, probe_id: str, slice_id: str, metric: str) -> dict[str, Any]:
    probe = next(p for p in audit.results["probes"] if p["id"] == probe_id)
    slice_entry = next(s for s in probe["slices"] if s["id"] == slice_id)
    return next(m for m in slice_entry["metrics"] if m["metric"] == metric)


def _table(audits: Sequence[AuditOutput], comparers: Sequence[Comparer], probe_id: str, attributes: tuple[str, ...],
           slice_id: str, metric: str, *, settings: CompareSettings, resamples: int, seed: int) -> dict[str, Any]:
    entries = [_entry(audit, probe_id, slice_id, metric) for audit in audits]
    overall = [next(p for p in audit.results["probes"] if p["id"] == probe_id)["overall"][metric] for audit in audits]
    changes = [{group.group: group for group in comparer.groups(probe_id, metric, attributes)} for comparer in comparers]
    ranks = _ranks(audits, probe_id, attributes, metric, settings=settings, resamples=resamples, seed=seed)
    groups = []
    for group in entries[0]["groups"]:
        label = group["group"]
        rates = [next((g for g in entry["groups"] if g["group"] == label), None) for entry in entries]
        groups.append({
            "group": label, "small": bool(group["small"]),
            "rates": [None if rate is None else {key: rate[key] for key in ("n", "value", "ci_low", "ci_high")}
                      for rate in rates],
            "changes": [None] + [_change(by_group.get(label)) for by_group in changes],
        })
    return {
        "probe": probe_id, "slice": slice_id, "metric": metric, "direction": direction_phrase(metric),
        "groups": groups,
        "gaps": [{"gap": entry["disparity"]["gap"], "ci_low": entry["disparity"].get("gap_ci_low"),
                  "ci_high": entry["disparity"].get("gap_ci_high"), "max_group": entry["disparity"]["max_group"],
                  "min_group": entry["disparity"]["min_group"], "rank": rank.rank,
                  "probability_first": rank.probability_first, "rank_low": rank.rank_low, "rank_high": rank.rank_high,
                  "overall": overall_rate["value"]}
                 for entry, rank, overall_rate in zip(entries, ranks, overall)],
    }


def _change(comparison) -> dict[str, Any] | None:
    if comparison is None or comparison.change.difference is None:
        return None
    change = comparison.change
    return {"difference": change.difference, "ci_low": change.ci_low, "ci_high": change.ci_high,
            "test": change.test, "p_value": change.p_value, "n_pairs": change.n_pairs}


def _ranks(audits: Sequence[AuditOutput], probe_id: str, attributes: tuple[str, ...], metric: str, *,
           settings: CompareSettings, resamples: int, seed: int):
    """Every model's outcomes on the images all of them scored, in one image order."""
    frames = []
    for audit in audits:
        predictions = audit.predictions
        rows = np.flatnonzero((predictions["probe"] == probe_id).to_numpy())
        counted, success = metric_outcomes(predictions, rows, audit.probes[probe_id])[metric]
        frame = predictions.iloc[rows][["image_id", *attributes]].reset_index(drop=True)
        frames.append(frame.assign(counted=counted, success=success).drop_duplicates("image_id").set_index("image_id"))
    common = frames[0].index
    for frame in frames[1:]:
        common = common.intersection(frame.index)
    common = pd.Index(sorted(common))
    base = frames[0].loc[common].reset_index()
    groups = probe_slice_groups(base, np.arange(len(base)), [attributes])[0]
    return rank_by_gap(groups.codes, len(groups.labels),
                       [frame.loc[common, "counted"].to_numpy(bool) for frame in frames],
                       [frame.loc[common, "success"].to_numpy(bool) for frame in frames],
                       min_n=settings.min_n, resamples=resamples, confidence=settings.confidence, seed=seed)


def _adjust(tables: list[dict[str, Any]], settings: CompareSettings) -> None:
    """Holm over every model-against-the-first test on the page; significant as the statistics define it."""
    tested = [change for table in tables for group in table["groups"] for change in group["changes"]
              if change is not None and change["p_value"] is not None]
    adjusted = adjust_p_values([change["p_value"] for change in tested], method="holm") if tested else []
    for change, p_adjusted in zip(tested, adjusted):
        change["p_adjusted"] = float(p_adjusted)
        change["significant"] = is_significant(float(p_adjusted), abs(change["difference"]), alpha=settings.alpha,
                                                min_effect=0.0)
    for table in tables:
        for group in table["groups"]:
            for change in group["changes"]:
                if change is not None and "p_adjusted" not in change:
                    change["p_adjusted"], change["significant"] = None, False
