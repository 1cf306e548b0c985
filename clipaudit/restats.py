"""`clipaudit stats`: results again from a predictions file alone (no model, no images, no torch).

An auditor re-analyses with another alpha, min-n or confidence level. When the predictions come
from a clipaudit audit, the audit's results.json beside them supplies the model and dataset part
of the manifest; otherwise the manifest says the predictions file is the source.
"""
from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pandas as pd

from clipaudit.documents import check_schema_version, load_json
from clipaudit.errors import DataError, DocumentError
from clipaudit.predictions import read_predictions
from clipaudit.pipeline.results import build_results
from clipaudit.taxonomy import Taxonomy, unmatched_target_values
from clipaudit.taxonomy.groupings import with_attribute_groups

CARRIED_OVER = ("model", "dataset", "device", "dtype", "seed", "batch_size")


def recompute_statistics(predictions_path: Path, *, taxonomy: Taxonomy, settings, allow_unmatched: bool = False) -> dict:
    started = time.perf_counter()
    predictions_path = Path(predictions_path)
    predictions = with_attribute_groups(read_predictions(predictions_path), taxonomy.attribute_groups)
    check_predictions_match_taxonomy(predictions, taxonomy, source=predictions_path)
    alerts = check_targets_match_classes(predictions, taxonomy, source=predictions_path, allow_unmatched=allow_unmatched)
    earlier = _read_results_beside(predictions_path)
    if earlier is not None:
        check_prompts_match_audit(earlier, taxonomy, source=predictions_path)
    manifest = _manifest_from_audit(earlier) or _manifest_from_file(predictions_path, predictions)
    manifest["seed"] = settings.seed
    manifest["recomputed_from"] = str(predictions_path)
    manifest["alerts"] = alerts
    return build_results(predictions, taxonomy, manifest=manifest, settings=settings, timings={}, started=started)


def check_predictions_match_taxonomy(predictions: pd.DataFrame, taxonomy: Taxonomy, *, source: Path) -> None:
    """Every probe present, every prediction a class of its probe, one score per class."""
    present = set(predictions["probe"].unique())
    for probe in taxonomy.probes:
        if probe.id not in present:
            raise DataError(
                f"{source}: probe {probe.id!r} of taxonomy {taxonomy.name!r} has no predictions "
                f"(probes in the file: {', '.join(sorted(map(str, present))) or 'none'})"
            )
        rows = predictions[predictions["probe"] == probe.id]
        unknown = sorted(set(rows["prediction"].dropna()) - set(probe.class_ids()))
        if unknown:
            raise DataError(
                f"{source}: probe {probe.id!r} predicts {unknown[0]!r}, which is not one of its classes "
                f"({', '.join(probe.class_ids())}); was it made with another taxonomy?"
            )
        lengths = set(rows["scores"].map(len))
        if lengths != {len(probe.classes)}:
            raise DataError(
                f"{source}: probe {probe.id!r} has {len(probe.classes)} classes but its scores hold "
                f"{', '.join(map(str, sorted(lengths)))} values per row"
            )


def check_targets_match_classes(predictions: pd.DataFrame, taxonomy: Taxonomy, *, source: Path,
                                allow_unmatched: bool) -> list[str]:
    """Target values that no class id names stop the statistics, as they stop an audit; with
    ``allow_unmatched`` they are returned as alerts the report and the terminal show first."""
    alerts = []
    for probe in taxonomy.probes:
        if probe.target is None:
            continue
        targets = predictions.loc[predictions["probe"] == probe.id, "target"].dropna()
        unmatched = unmatched_target_values(probe, set(map(str, targets)))
        if unmatched is None:
            continue
        if not allow_unmatched:
            raise DataError(f"{source}: {unmatched.refusal()}")
        alerts.append(unmatched.alert())
    return alerts


def check_prompts_match_audit(earlier: dict, taxonomy: Taxonomy, *, source: Path) -> None:
    """When the audit's results.json lies beside the predictions, the prompts must be the ones it used.

    Otherwise the report would show prompts the model never saw next to numbers it produced.
    """
    used = {probe.get("id"): probe.get("class_details") or [] for probe in earlier.get("probes") or []}
    for probe in taxonomy.to_dict()["probes"]:
        for was, now in zip(used.get(probe["id"], []), probe["classes"]):
            if was.get("id") == now["id"] and was.get("prompts") not in (None, now["prompts"]):
                raise DataError(
                    f"{source}: the audit scored class '{now['id']}' of probe '{probe['id']}' with prompts "
                    f"{was['prompts']}, but the taxonomy given now has {now['prompts']}; pass the taxonomy the audit used"
                )


def _read_results_beside(predictions_path: Path) -> dict | None:
    results_path = predictions_path.with_name("results.json")
    if not results_path.is_file():
        return None
    try:
        document = load_json(results_path, "results")
    except DocumentError:
        return None  # not an audit's results: the predictions file stands alone
    return check_schema_version(document, "results", source=results_path)


def _manifest_from_audit(earlier: dict | None) -> dict | None:
    manifest = (earlier or {}).get("manifest")
    if not isinstance(manifest, dict):
        return None
    return {key: manifest[key] for key in CARRIED_OVER if key in manifest}


def _manifest_from_file(predictions_path: Path, predictions: pd.DataFrame) -> dict:
    digest = hashlib.sha256(predictions_path.read_bytes()).hexdigest()
    attributes = [c for c in predictions.columns if c not in ("probe", "image_id", "target", "prediction", "scores")]
    return {
        "model": {"id": "unknown (statistics recomputed from a predictions file)"},
        "dataset": {
            "spec": f"predictions:{predictions_path}",
            "fingerprint": digest,
            "n_images": int(predictions["image_id"].nunique()),
            "n_used": int(predictions["image_id"].nunique()),
            "n_skipped": 0,
            "skipped_images": [],
            "attributes": attributes,
        },
        "device": "none",
        "dtype": "none",
    }
