"""The two sides of a comparison: audit output folders (results.json + predictions.parquet), and the settings."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from clipaudit.documents import read_document
from clipaudit.errors import ClipauditError, CompareError
from clipaudit.predictions import REQUIRED_COLUMNS, read_predictions
from clipaudit.stats.intervals import validate_confidence
from clipaudit.taxonomy import Probe, protocol_class


@dataclass(frozen=True)
class CompareSettings:
    """Significance level, interval confidence and the small-group bound; validated at the door."""

    alpha: float = 0.05
    confidence: float = 0.95
    min_n: int = 30

    def __post_init__(self) -> None:
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, (int, float)) or not 0 < self.alpha < 1:
            raise CompareError(f"--alpha: expected a number strictly between 0 and 1 (e.g. 0.05), got {self.alpha!r}")
        validate_confidence(self.confidence)
        if isinstance(self.min_n, bool) or not isinstance(self.min_n, int) or self.min_n < 1:
            raise CompareError(f"--min-n: expected a positive integer, got {self.min_n!r}")


@dataclass
class AuditOutput:
    """One side of a comparison: an audit's results document and its predictions."""

    label: str
    results: dict[str, Any]
    predictions: pd.DataFrame
    probes: dict[str, Probe] = field(init=False)

    def __post_init__(self) -> None:
        self.probes = {entry["id"]: _probe_of(entry) for entry in self.results["probes"]}

    @property
    def fingerprint(self) -> str | None:
        return (self.results.get("manifest", {}).get("dataset") or {}).get("fingerprint")

    @property
    def attributes(self) -> list[str]:
        return [column for column in self.predictions.columns if column not in REQUIRED_COLUMNS]

    def summary(self) -> dict[str, Any]:
        manifest = self.results.get("manifest", {})
        dataset = manifest.get("dataset") or {}
        taxonomy = manifest.get("taxonomy") or {}
        return {"path": self.label, "created_at": manifest.get("created_at"),
                "model": (manifest.get("model") or {}).get("id"),
                "dataset": {"spec": dataset.get("spec"), "fingerprint": dataset.get("fingerprint"),
                            "n_used": dataset.get("n_used")},
                "taxonomy": {"name": taxonomy.get("name"), "sha256": taxonomy.get("sha256")}}


def _probe_of(entry: dict[str, Any]) -> Probe:
    """The probe as the audit ran it, from its results.json entry (class order = score order)."""
    classes = tuple(protocol_class(detail) for detail in entry["class_details"])
    return Probe(id=entry["id"], kind=entry["kind"], target=entry["target"], classes=classes,
                 slices=tuple(tuple(item["attributes"]) for item in entry["slices"]))


def load_audit_output(path: str | Path, *, role: str) -> AuditOutput:
    """Read an audit output folder; :class:`CompareError` says what is missing."""
    folder = Path(path)
    if not folder.is_dir():
        raise CompareError(f"{role} {folder}: no such folder; expected an audit output folder "
                           "(with results.json and predictions.parquet from clipaudit audit)")
    missing = [name for name in ("results.json", "predictions.parquet") if not (folder / name).is_file()]
    if missing:
        raise CompareError(f"{role} {folder}: no {' and no '.join(missing)}; compare needs an audit output folder "
                           "with results.json and predictions.parquet (clipaudit stats writes no predictions)")
    try:
        results = read_document(folder / "results.json", "results")
    except ClipauditError as error:
        raise CompareError(f"{role} {error}") from None
    try:
        predictions = read_predictions(folder / "predictions.parquet")
    except ClipauditError as error:
        raise CompareError(f"{role} {error}") from None
    audit = AuditOutput(label=str(folder), results=results, predictions=predictions)
    _check_predictions_cover_probes(audit, role)
    return audit


def audit_output_from_run(results: dict[str, Any], predictions: pd.DataFrame, *, label: str) -> AuditOutput:
    """The candidate side of `clipaudit audit --baseline`, before anything is written."""
    return AuditOutput(label=label, results=results, predictions=predictions)


def _check_predictions_cover_probes(audit: AuditOutput, role: str) -> None:
    present = set(audit.predictions["probe"].unique())
    for probe_id in audit.probes:
        if probe_id not in present:
            raise CompareError(f"{role} {audit.label}: results.json lists probe {probe_id!r} but predictions.parquet "
                               f"has no rows for it; were the two files written by different audits?")
