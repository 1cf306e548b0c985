"""Each group's change from the baseline to the candidate, through the statistics engine.

Pairing. When both audits ran on the same dataset (the same ``manifest.dataset.fingerprint``),
each group's images are paired by ``image_id`` (an inner join per probe: if the two audits
skipped different images, the common images are paired and ``pairing.note`` says so), and the
change is paired (:func:`clipaudit.stats.changes.paired_changes`). Otherwise the two samples are
independent (:func:`clipaudit.stats.changes.independent_changes`). Groups and their order are the
audit's (:func:`clipaudit.stats.probe_slice_groups`).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from clipaudit.compare.inputs import AuditOutput, CompareSettings
from clipaudit.errors import CompareError
from clipaudit.stats import group_counts, metric_outcomes, probe_slice_groups
from clipaudit.stats.changes import GroupChange, independent_changes, paired_changes
from clipaudit.stats.significance import is_significant_worsening
from clipaudit.taxonomy import Probe
from clipaudit.vocabulary import higher_is_worse, slice_id


@dataclass(frozen=True)
class Pairing:
    paired: bool
    reason: str
    note: str | None = None
    common_images: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"paired": self.paired, "reason": self.reason, "note": self.note, "common_images": self.common_images}


@dataclass
class GroupComparison:
    """One group's change (candidate minus baseline) in one probe, metric and slice, and its verdict inputs."""

    probe: str
    metric: str
    slice: str
    attributes: tuple[str, ...]
    change: GroupChange
    small: bool
    higher_is_worse: bool
    p_adjusted: float | None = None

    @property
    def group(self) -> str:
        return self.change.group

    @property
    def n_baseline(self) -> int:
        return self.change.n_before

    @property
    def n_candidate(self) -> int:
        return self.change.n_after

    @property
    def baseline_value(self) -> float | None:
        return self.change.value_before

    @property
    def candidate_value(self) -> float | None:
        return self.change.value_after

    @property
    def delta(self) -> float | None:
        return self.change.difference

    @property
    def p_value(self) -> float | None:
        return self.change.p_value

    @property
    def worsening(self) -> float | None:
        """The change in the worse direction (negative for an improvement)."""
        if self.delta is None:
            return None
        return self.delta if self.higher_is_worse else -self.delta

    def significant_worsening(self, alpha: float) -> bool:
        return is_significant_worsening(self.p_adjusted, self.worsening, alpha=alpha)

    def to_dict(self, alpha: float) -> dict[str, Any]:
        change = self.change
        return {
            "group": self.group, "values": dict(zip(self.attributes, change.values)), "small": self.small,
            "baseline": {"n": change.n_before, "successes": change.successes_before, "value": self.baseline_value},
            "candidate": {"n": change.n_after, "successes": change.successes_after, "value": self.candidate_value},
            "n_pairs": change.n_pairs, "delta": self.delta, "ci_low": change.ci_low, "ci_high": change.ci_high,
            "worsening": self.worsening,
            "test": None if change.test is None else {"name": change.test, "statistic": change.statistic},
            "p_value": self.p_value, "p_adjusted": self.p_adjusted,
            "significant_worsening": self.significant_worsening(alpha),
        }


def decide_pairing(baseline: AuditOutput, candidate: AuditOutput, probe_ids: Sequence[str]) -> Pairing:
    if baseline.fingerprint is None or baseline.fingerprint != candidate.fingerprint:
        return Pairing(False, "the two audits ran on different datasets (dataset fingerprints differ); "
                              "groups are compared as independent samples")
    common: dict[str, int] = {}
    differing: list[str] = []
    for probe_id in probe_ids:
        base_ids = set(baseline.predictions.loc[baseline.predictions["probe"] == probe_id, "image_id"])
        cand_ids = set(candidate.predictions.loc[candidate.predictions["probe"] == probe_id, "image_id"])
        common[probe_id] = len(base_ids & cand_ids)
        if base_ids != cand_ids:
            differing.append(f"{probe_id}: {len(base_ids - cand_ids)} image(s) only in the baseline, "
                             f"{len(cand_ids - base_ids)} only in the candidate")
        if not common[probe_id]:
            raise CompareError(f"probe {probe_id!r}: the two audits share a dataset fingerprint but no image_id; "
                               "were the predictions files edited?")
    note = None
    if differing:
        note = ("the audits skipped different images, so only the images both scored are paired ("
                + "; ".join(differing) + ")")
    return Pairing(True, "same dataset fingerprint: each image is paired with itself (exact McNemar test, "
                         "Newcombe paired interval)", note, common)


def _outcomes(audit: AuditOutput, probe: Probe, metric: str) -> pd.DataFrame:
    """The probe's rows with a boolean ``counted`` and ``success`` column for ``metric``."""
    predictions = audit.predictions
    rows = np.flatnonzero((predictions["probe"] == probe.id).to_numpy())
    counted, success = metric_outcomes(predictions, rows, probe)[metric]
    frame = predictions.iloc[rows].drop(columns=["scores"]).reset_index(drop=True)
    frame["counted"] = counted
    frame["success"] = success
    return frame


class Comparer:
    """Computes each (probe, metric, slice) comparison once, whichever rules ask for it."""

    def __init__(self, baseline: AuditOutput, candidate: AuditOutput, pairing: Pairing,
                 settings: CompareSettings) -> None:
        self.baseline, self.candidate, self.pairing, self.settings = baseline, candidate, pairing, settings
        self._outcomes: dict[tuple[str, str], tuple[pd.DataFrame, pd.DataFrame]] = {}
        self._groups: dict[tuple[str, str, tuple[str, ...]], list[GroupComparison]] = {}

    def groups(self, probe_id: str, metric: str, attributes: tuple[str, ...]) -> list[GroupComparison]:
        key = (probe_id, metric, attributes)
        if key not in self._groups:
            base, cand = self._sides(probe_id, metric)
            changes = (self._paired(base, attributes) if self.pairing.paired
                       else self._independent(base, cand, attributes))
            self._groups[key] = [self._comparison(probe_id, metric, attributes, change) for change in changes]
        return self._groups[key]

    def all_groups(self) -> list[GroupComparison]:
        return [group for groups in self._groups.values() for group in groups]

    def _sides(self, probe_id: str, metric: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        key = (probe_id, metric)
        if key not in self._outcomes:
            base = _outcomes(self.baseline, self.baseline.probes[probe_id], metric)
            cand = _outcomes(self.candidate, self.candidate.probes[probe_id], metric)
            if self.pairing.paired:
                # One row per image present in both; the images' attributes are the baseline's
                # (the same dataset, by fingerprint).
                cand = cand[["image_id", "counted", "success"]].drop_duplicates("image_id")
                base = base.drop_duplicates("image_id").merge(cand, on="image_id", suffixes=("", "_candidate"))
                cand = base
            self._outcomes[key] = (base, cand)
        return self._outcomes[key]

    def _paired(self, pairs: pd.DataFrame, attributes: tuple[str, ...]) -> list[GroupChange]:
        groups = probe_slice_groups(pairs, np.arange(len(pairs)), [attributes])[0]
        counted = pairs["counted"].to_numpy(bool) & pairs["counted_candidate"].to_numpy(bool)
        return paired_changes(groups, counted, pairs["success"].to_numpy(bool),
                              pairs["success_candidate"].to_numpy(bool), confidence=self.settings.confidence)

    def _independent(self, base: pd.DataFrame, cand: pd.DataFrame, attributes: tuple[str, ...]) -> list[GroupChange]:
        # One coding of both samples, so that a group is the same group on either side.
        both = pd.concat([base[list(attributes)], cand[list(attributes)]], ignore_index=True)
        groups = probe_slice_groups(both, np.arange(len(both)), [attributes])[0]
        base_groups = replace(groups, codes=groups.codes[: len(base)])
        cand_groups = replace(groups, codes=groups.codes[len(base):])
        before = group_counts(base_groups, base["counted"].to_numpy(bool), base["success"].to_numpy(bool))
        after = group_counts(cand_groups, cand["counted"].to_numpy(bool), cand["success"].to_numpy(bool))
        present = np.bincount(groups.codes[groups.codes >= 0], minlength=len(groups.labels)) > 0
        return independent_changes(before, after, present=present, confidence=self.settings.confidence)

    def _comparison(self, probe_id: str, metric: str, attributes: tuple[str, ...],
                    change: GroupChange) -> GroupComparison:
        # A group is small with fewer than min_n images (pairs; the smaller side) or none on one side.
        small = change.difference is None or change.n < self.settings.min_n
        return GroupComparison(probe=probe_id, metric=metric, slice=slice_id(attributes), attributes=attributes,
                               change=change, small=small, higher_is_worse=higher_is_worse(metric))
