"""`clipaudit compare`: does a candidate audit make any group worse than a baseline audit?

Two audit outputs (each a folder with ``results.json`` and ``predictions.parquet``) are compared
group by group, for every rule of a thresholds file (:mod:`clipaudit.compare.thresholds`) or, without one,
for "no significant worsening of any group in any probe".

Pairing. When both audits ran on the same dataset (the same ``manifest.dataset.fingerprint``),
each group's images are paired by ``image_id`` (an inner join per probe: if the two audits
skipped different images, the common images are paired and ``pairing.note`` says so). The change
in a group's rate is then ``p_candidate - p_baseline`` with Newcombe's (1998b) paired interval and
the exact McNemar (1947) test (:func:`clipaudit.stats.paired.paired_difference_from_outcomes`).
Otherwise the two samples are independent: Newcombe's (1998) hybrid score interval and Fisher's
exact test when an expected count is below 5, else the pooled two-proportion z test.

Multiple testing. Holm (1979) across the distinct (probe, metric, slice, group) tests that the
rules use, so a group checked by two rules counts once.

Policies, stated once:

- Direction: harm rates get worse when they rise, accuracy when it drops. ``worsening`` is the
  change in the worse direction (negative for an improvement).
- A group is *small* when it has fewer than ``min_n`` images (pairs, when paired; the smaller
  side, when not) or none at all on one side. Small groups are reported and flagged but no rule
  can fail on them, absolute bounds included: a rate from a handful of images moves by whole
  tens of points when one image flips, and a CI gate on it would fail on noise. They stay out
  of the Holm family and of the gap. Lower ``--min-n`` to check them.
- ``max_rise`` / ``max_drop``: the worsening must not exceed the bound; with
  ``require_significance: true`` a violation also needs the adjusted p below alpha.
  ``max`` / ``min``: bounds on each group's candidate value. ``max_gap``: bound on the
  candidate's max - min across the non-small groups. ``no_significant_worsening``: fails when
  the rate got worse and the adjusted p is below alpha.
- Bounds are compared exactly (up to 1e-12 for floating-point noise), not after rounding.

Everything that can be wrong with the input is checked before anything is computed or
written, and raises :class:`CompareError` with one line naming the folder, rule or field.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clipaudit.documents import check_own, read_document, stamped, to_json_bytes
from clipaudit.errors import ClipauditError, CompareError
from clipaudit.predictions import REQUIRED_COLUMNS, read_predictions
from clipaudit.stats.disparities import newcombe_difference
from clipaudit.stats.engine import GROUP_SEPARATOR, SLICE_SEPARATOR, metric_outcomes, order_values
from clipaudit.stats.hypothesis_tests import pairwise_test
from clipaudit.stats.intervals import validate_confidence
from clipaudit.stats.multiple import adjust_p_values
from clipaudit.stats.paired import paired_difference_from_outcomes
from clipaudit.compare.thresholds import Rule, Thresholds, default_rules, higher_is_worse, rule_location

TOLERANCE = 1e-12
ROLES = ("baseline", "candidate")

# Reasons a check fails, as compare.json, compare.md and junit.xml name them.
MAX_RISE_EXCEEDED = "max_rise exceeded"
MAX_DROP_EXCEEDED = "max_drop exceeded"
MAX_EXCEEDED = "max exceeded"
MIN_NOT_MET = "below min"
MAX_GAP_EXCEEDED = "max_gap exceeded"
SIGNIFICANT_WORSENING = "significant worsening"
GAP_GROUP = "(gap across groups)"



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


# --- the two audits ---------------------------------------------------------------------


@dataclass(frozen=True)
class ClassView:
    id: str
    category: str | None


@dataclass(frozen=True)
class ProbeView:
    """A probe as results.json records it (what :func:`metric_outcomes` needs)."""

    id: str
    kind: str
    target: str | None
    classes: tuple[ClassView, ...]
    slices: tuple[tuple[str, ...], ...]

    def categories(self) -> list[str]:
        return sorted({cls.category for cls in self.classes if cls.category is not None})

    def metrics(self) -> list[str]:
        if self.kind == "attribute":
            return ["accuracy"]
        return ["harm_rate"] + [f"{category}_rate" for category in self.categories()]


@dataclass
class AuditOutput:
    """One side of a comparison: an audit's results document and its predictions."""

    label: str
    results: dict[str, Any]
    predictions: pd.DataFrame
    probes: dict[str, ProbeView] = field(init=False)

    def __post_init__(self) -> None:
        self.probes = {entry["id"]: _probe_view(entry, self.label) for entry in self.results.get("probes", [])}

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


def _probe_view(entry: dict[str, Any], label: str) -> ProbeView:
    details = entry.get("class_details") or [{"id": class_id, "category": None} for class_id in entry["classes"]]
    classes = tuple(ClassView(str(cls["id"]), cls.get("category")) for cls in details)
    slices = tuple(tuple(item["attributes"]) for item in entry.get("slices", []))
    return ProbeView(id=entry["id"], kind=entry["kind"], target=entry.get("target"), classes=classes, slices=slices)


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


# --- what is compared ---------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One rule on one slice."""

    rule: Rule
    attributes: tuple[str, ...]

    @property
    def slice_id(self) -> str:
        return SLICE_SEPARATOR.join(self.attributes)


def _role_label(audit: AuditOutput, role: str) -> str:
    return f"the {role} ({audit.label})"


def check_probes_match(baseline: AuditOutput, candidate: AuditOutput, probe_ids: Sequence[str]) -> None:
    """Each probe is in both audits, of the same kind and (attribute probes) the same target."""
    for probe_id in probe_ids:
        for role, audit, other_role, other in (("baseline", baseline, "candidate", candidate),
                                               ("candidate", candidate, "baseline", baseline)):
            if probe_id in audit.probes and probe_id not in other.probes:
                listed = ", ".join(other.probes) or "none"
                raise CompareError(f"probe {probe_id!r} is in {_role_label(audit, role)} but not in "
                                   f"{_role_label(other, other_role)} (its probes: {listed})")
        base, cand = baseline.probes[probe_id], candidate.probes[probe_id]
        if base.kind != cand.kind:
            raise CompareError(f"probe {probe_id!r} is {_a(base.kind)} probe in the baseline but {_a(cand.kind)} "
                               "probe in the candidate; their rates measure different things")
        if base.target != cand.target:
            raise CompareError(f"probe {probe_id!r} scores target column {base.target!r} in the baseline but "
                               f"{cand.target!r} in the candidate; accuracy would measure different things")


def _a(word: str) -> str:
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"


def check_metric(baseline: AuditOutput, candidate: AuditOutput, probe_id: str, metric: str, where: str) -> None:
    """The metric exists for the probe on both sides (a category rate needs the category on both)."""
    base, cand = baseline.probes[probe_id], candidate.probes[probe_id]
    known = sorted(set(base.metrics()) | set(cand.metrics()), key=lambda name: (name != "harm_rate", name))
    if metric not in known:
        raise CompareError(f"{where}: metric {metric!r} is not a metric of probe {probe_id!r} "
                           f"(its metrics: {', '.join(known)})")
    for role, probe, other_role in (("baseline", base, "candidate"), ("candidate", cand, "baseline")):
        if metric not in probe.metrics():
            category = metric.removesuffix("_rate")
            raise CompareError(f"{where}: probe {probe_id!r}: no class of the {role} has category {category!r} "
                               f"but the {other_role}'s do, so {metric} cannot be compared "
                               f"(the {role}'s categories: {', '.join(probe.categories()) or 'none'})")
    if metric == "harm_rate":
        for role, probe in (("baseline", base), ("candidate", cand)):
            if not probe.categories():
                raise CompareError(f"{where}: probe {probe_id!r}: no class of the {role} has a harm category, "
                                   "so its harm_rate is 0 by construction and cannot be compared")


def check_slice(baseline: AuditOutput, candidate: AuditOutput, attributes: Sequence[str], where: str) -> None:
    for role, audit in (("baseline", baseline), ("candidate", candidate)):
        for attribute in attributes:
            if attribute not in audit.attributes:
                raise CompareError(f"{where}: slice {SLICE_SEPARATOR.join(attributes)!r}: attribute {attribute!r} is "
                                   f"not in the predictions of {_role_label(audit, role)} "
                                   f"(its attributes: {', '.join(audit.attributes) or 'none'})")


def plan_checks(baseline: AuditOutput, candidate: AuditOutput, thresholds: Thresholds | None) -> tuple[
        Thresholds, list[Check], list[str]]:
    """The rules (defaults without a file), one check per rule and slice, and notes; raises on mismatch."""
    notes: list[str] = []
    if thresholds is None:
        check_probes_match(baseline, candidate, list(dict.fromkeys([*baseline.probes, *candidate.probes])))
        for probe_id in baseline.probes:
            for metric in sorted(set(baseline.probes[probe_id].metrics()) | set(candidate.probes[probe_id].metrics())):
                check_metric(baseline, candidate, probe_id, metric, "default rules (no significant worsening)")
        thresholds = default_rules({probe_id: probe.metrics() for probe_id, probe in baseline.probes.items()})
    else:
        unruled = sorted((set(baseline.probes) ^ set(candidate.probes)) - {rule.probe for rule in thresholds.rules})
        if unruled:
            notes.append(f"not compared (no rule names them, and only one audit has them): {', '.join(unruled)}")
    checks: list[Check] = []
    for rule in thresholds.rules:
        if rule.probe not in baseline.probes and rule.probe not in candidate.probes:
            known = sorted(set(baseline.probes) | set(candidate.probes))
            raise CompareError(f"{rule_location(rule, 'probe')}: probe {rule.probe!r} is in neither audit "
                               f"(probes: {', '.join(known)})")
        try:
            check_probes_match(baseline, candidate, [rule.probe])
        except CompareError as error:
            raise CompareError(f"{rule_location(rule, 'probe')}: {error}") from None
        check_metric(baseline, candidate, rule.probe, rule.metric, rule_location(rule, "metric"))
        slices = [rule.slice] if rule.slice is not None else _probe_slices(baseline, candidate, rule.probe)
        for attributes in slices:
            check_slice(baseline, candidate, attributes, rule_location(rule, "slice" if rule.slice else "probe"))
            checks.append(Check(rule=rule, attributes=tuple(attributes)))
    return thresholds, checks, notes


def _probe_slices(baseline: AuditOutput, candidate: AuditOutput, probe_id: str) -> list[tuple[str, ...]]:
    return list(dict.fromkeys([*baseline.probes[probe_id].slices, *candidate.probes[probe_id].slices]))


# --- pairing and per-group comparisons ------------------------------------------------------


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
    """The change in one group's rate, candidate minus baseline, with its interval and test."""

    probe: str
    metric: str
    slice: str
    group: str
    values: dict[str, str]
    n_baseline: int
    successes_baseline: int
    n_candidate: int
    successes_candidate: int
    n_pairs: int | None
    delta: float | None
    ci_low: float | None
    ci_high: float | None
    test: str | None
    statistic: float | None
    p_value: float | None
    small: bool
    higher_is_worse: bool
    p_adjusted: float | None = None

    @property
    def baseline_value(self) -> float | None:
        return self.successes_baseline / self.n_baseline if self.n_baseline else None

    @property
    def candidate_value(self) -> float | None:
        return self.successes_candidate / self.n_candidate if self.n_candidate else None

    @property
    def worsening(self) -> float | None:
        if self.delta is None:
            return None
        return self.delta if self.higher_is_worse else -self.delta

    def significant_worsening(self, alpha: float) -> bool:
        worsening = self.worsening
        return (self.p_adjusted is not None and self.p_adjusted < alpha
                and worsening is not None and worsening > TOLERANCE)

    def to_dict(self, alpha: float) -> dict[str, Any]:
        return {
            "group": self.group, "values": self.values, "small": self.small,
            "baseline": {"n": self.n_baseline, "successes": self.successes_baseline, "value": self.baseline_value},
            "candidate": {"n": self.n_candidate, "successes": self.successes_candidate, "value": self.candidate_value},
            "n_pairs": self.n_pairs, "delta": self.delta, "ci_low": self.ci_low, "ci_high": self.ci_high,
            "worsening": self.worsening,
            "test": None if self.test is None else {"name": self.test, "statistic": self.statistic},
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


def _outcomes(audit: AuditOutput, probe: ProbeView, metric: str) -> pd.DataFrame:
    """The probe's rows with a boolean ``counted`` and ``success`` column for ``metric``."""
    predictions = audit.predictions
    rows = np.flatnonzero((predictions["probe"] == probe.id).to_numpy())
    counted, success = metric_outcomes(predictions, rows, probe)[metric]
    frame = predictions.iloc[rows].drop(columns=["scores"]).reset_index(drop=True)
    frame["counted"] = counted
    frame["success"] = success
    return frame


def _ordered_groups(frames: Sequence[pd.DataFrame], attributes: Sequence[str]) -> list[tuple[str, ...]]:
    observed: set[tuple[str, ...]] = set()
    for frame in frames:
        complete = frame[list(attributes)].dropna()
        observed |= set(map(tuple, complete.astype(str).itertuples(index=False, name=None)))
    orders = {attribute: {value: index for index, value in enumerate(
        order_values(attribute, sorted({values[position] for values in observed})))}
        for position, attribute in enumerate(attributes)}
    return sorted(observed, key=lambda values: tuple(orders[a][v] for a, v in zip(attributes, values)))


def _group_mask(frame: pd.DataFrame, attributes: Sequence[str], values: tuple[str, ...]) -> np.ndarray:
    mask = np.ones(len(frame), dtype=bool)
    for attribute, value in zip(attributes, values):
        mask &= (frame[attribute].astype(object) == value).to_numpy()
    return mask


class Comparer:
    """Computes each (probe, metric, slice, group) comparison once, whichever rules ask for it."""

    def __init__(self, baseline: AuditOutput, candidate: AuditOutput, pairing: Pairing,
                 settings: CompareSettings) -> None:
        self.baseline, self.candidate, self.pairing, self.settings = baseline, candidate, pairing, settings
        self._outcomes: dict[tuple[str, str], tuple[pd.DataFrame, pd.DataFrame]] = {}
        self._groups: dict[tuple[str, str, tuple[str, ...]], list[GroupComparison]] = {}

    def groups(self, probe_id: str, metric: str, attributes: tuple[str, ...]) -> list[GroupComparison]:
        key = (probe_id, metric, attributes)
        if key not in self._groups:
            base, cand = self._sides(probe_id, metric)
            self._groups[key] = [self._compare_group(probe_id, metric, attributes, values, base, cand)
                                 for values in _ordered_groups([base, cand], attributes)]
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

    def _compare_group(self, probe_id: str, metric: str, attributes: tuple[str, ...], values: tuple[str, ...],
                       base: pd.DataFrame, cand: pd.DataFrame) -> GroupComparison:
        confidence, min_n = self.settings.confidence, self.settings.min_n
        common = dict(probe=probe_id, metric=metric, slice=SLICE_SEPARATOR.join(attributes),
                      group=GROUP_SEPARATOR.join(values), values=dict(zip(attributes, values)),
                      higher_is_worse=higher_is_worse(metric))
        if self.pairing.paired:
            mask = _group_mask(base, attributes, values)
            mask &= base["counted"].to_numpy() & base["counted_candidate"].to_numpy()
            base_success = base["success"].to_numpy()[mask]
            cand_success = base["success_candidate"].to_numpy()[mask]
            n = int(mask.sum())
            counts = dict(n_baseline=n, successes_baseline=int(base_success.sum()), n_candidate=n,
                          successes_candidate=int(cand_success.sum()), n_pairs=n)
            if n == 0:
                return GroupComparison(**common, **counts, delta=None, ci_low=None, ci_high=None, test=None,
                                       statistic=None, p_value=None, small=True)
            paired = paired_difference_from_outcomes(cand_success, base_success, confidence=confidence)
            return GroupComparison(**common, **counts, delta=paired.difference, ci_low=paired.ci_low,
                                   ci_high=paired.ci_high, test=paired.test.name, statistic=paired.test.statistic,
                                   p_value=paired.test.p_value, small=n < min_n)
        base_mask = _group_mask(base, attributes, values) & base["counted"].to_numpy()
        cand_mask = _group_mask(cand, attributes, values) & cand["counted"].to_numpy()
        n_base, n_cand = int(base_mask.sum()), int(cand_mask.sum())
        k_base = int(base["success"].to_numpy()[base_mask].sum())
        k_cand = int(cand["success"].to_numpy()[cand_mask].sum())
        counts = dict(n_baseline=n_base, successes_baseline=k_base, n_candidate=n_cand, successes_candidate=k_cand,
                      n_pairs=None)
        if n_base == 0 or n_cand == 0:
            return GroupComparison(**common, **counts, delta=None, ci_low=None, ci_high=None, test=None,
                                   statistic=None, p_value=None, small=True)
        difference = newcombe_difference(k_cand, n_cand, k_base, n_base, confidence=confidence)
        test = pairwise_test(k_cand, n_cand, k_base, n_base)
        return GroupComparison(**common, **counts, delta=float(difference.estimate),
                               ci_low=float(max(-1.0, difference.low)), ci_high=float(min(1.0, difference.high)),
                               test=None if test is None else test.name,
                               statistic=None if test is None else test.statistic,
                               # Two samples with one outcome only: nothing changed that a test could see.
                               p_value=1.0 if test is None else test.p_value,
                               small=min(n_base, n_cand) < min_n)


# --- rules -> results -------------------------------------------------------------------------


@dataclass
class GroupResult:
    check: Check
    group: GroupComparison
    status: str  # "pass", "fail" or "skipped"
    reasons: list[str]
    notes: list[str]


@dataclass
class GapResult:
    check: Check
    baseline_gap: float | None
    candidate_gap: float | None
    max_group: str | None
    min_group: str | None
    groups_compared: int
    status: str
    reasons: list[str]


def _exceeds(value: float, bound: float) -> bool:
    return value - bound > TOLERANCE


def evaluate_group(check: Check, group: GroupComparison, settings: CompareSettings) -> GroupResult:
    rule = check.rule
    if group.small:
        side = ("no images in the baseline" if group.n_baseline == 0 else
                "no images in the candidate" if group.n_candidate == 0 else f"n < min_n ({settings.min_n})")
        return GroupResult(check, group, "skipped", [], [f"not checked: {side}"])
    reasons: list[str] = []
    notes: list[str] = []
    significant = group.significant_worsening(settings.alpha)
    worsening = group.worsening
    bound = rule.max_worsening
    if bound is not None and worsening is not None and _exceeds(worsening, bound):
        reason = MAX_RISE_EXCEEDED if rule.max_rise is not None else MAX_DROP_EXCEEDED
        if rule.require_significance and not significant:
            notes.append(f"{reason}, but not significant (adjusted p >= {settings.alpha:g})")
        else:
            reasons.append(reason)
    value = group.candidate_value
    if rule.max is not None and value is not None and _exceeds(value, rule.max):
        reasons.append(MAX_EXCEEDED)
    if rule.min is not None and value is not None and _exceeds(rule.min, value):
        reasons.append(MIN_NOT_MET)
    if rule.no_significant_worsening and significant:
        reasons.append(SIGNIFICANT_WORSENING)
    return GroupResult(check, group, "fail" if reasons else "pass", reasons, notes)


def evaluate_gap(check: Check, groups: Sequence[GroupComparison]) -> GapResult | None:
    if check.rule.max_gap is None:
        return None
    checked = [group for group in groups if not group.small]
    if len(checked) < 2:
        return GapResult(check, None, None, None, None, len(checked), "skipped", [])
    by_candidate = sorted(checked, key=lambda group: group.candidate_value)
    baseline_values = [group.baseline_value for group in checked]
    candidate_gap = by_candidate[-1].candidate_value - by_candidate[0].candidate_value
    failed = _exceeds(candidate_gap, check.rule.max_gap)
    return GapResult(check, max(baseline_values) - min(baseline_values), candidate_gap,
                     by_candidate[-1].group, by_candidate[0].group, len(checked),
                     "fail" if failed else "pass", [MAX_GAP_EXCEEDED] if failed else [])


# --- the comparison ----------------------------------------------------------------------------


@dataclass
class Comparison:
    """Everything compare computed; :meth:`to_dict` is compare.json."""

    baseline: AuditOutput
    candidate: AuditOutput
    thresholds: Thresholds
    thresholds_path: str | None
    settings: CompareSettings
    pairing: Pairing
    checks: list[Check]
    group_results: list[GroupResult]
    gap_results: list[GapResult]
    family_size: int
    notes: list[str]

    @property
    def passed(self) -> bool:
        return not self.violations()

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def violations(self) -> list[GroupResult | GapResult]:
        failed: list[GroupResult | GapResult] = [result for result in self.group_results if result.status == "fail"]
        failed += [result for result in self.gap_results if result.status == "fail"]
        return failed

    def summary(self) -> dict[str, int]:
        results: list[GroupResult | GapResult] = [*self.group_results, *self.gap_results]
        return {"checks": len(results), "passed": sum(result.status == "pass" for result in results),
                "failed": sum(result.status == "fail" for result in results),
                "skipped": sum(result.status == "skipped" for result in results)}

    def violation_lines(self) -> list[str]:
        return [violation_text(result, self.settings) for result in self.violations()]

    def to_dict(self) -> dict[str, Any]:
        alpha = self.settings.alpha
        checks = []
        for check in self.checks:
            groups = [result for result in self.group_results if result.check is check]
            gap = next((result for result in self.gap_results if result.check is check), None)
            checks.append({
                "rule": check.rule.id, "where": check.rule.where, "probe": check.rule.probe,
                "metric": check.rule.metric, "slice": check.slice_id, "attributes": list(check.attributes),
                "higher_is_worse": higher_is_worse(check.rule.metric),
                "passed": all(result.status != "fail" for result in groups) and (gap is None or gap.status != "fail"),
                "groups": [{**result.group.to_dict(alpha), "status": result.status, "reasons": result.reasons,
                            "notes": result.notes} for result in groups],
                "gap": None if gap is None else {
                    "max_gap": check.rule.max_gap, "baseline": gap.baseline_gap, "candidate": gap.candidate_gap,
                    "max_group": gap.max_group, "min_group": gap.min_group, "groups_compared": gap.groups_compared,
                    "status": gap.status, "reasons": gap.reasons},
            })
        failures = self.violations()
        return stamped("compare", {
            "passed": self.passed,
            "exit_code": self.exit_code,
            "baseline": self.baseline.summary(),
            "candidate": self.candidate.summary(),
            "pairing": self.pairing.to_dict(),
            "settings": {
                "alpha": alpha, "confidence": self.settings.confidence, "min_n": self.settings.min_n,
                "correction": "holm", "family_size": self.family_size,
                "family": "the distinct (probe, metric, slice, group) tests of non-small groups the rules use",
                "thresholds": self.thresholds_path,
                "thresholds_description": self.thresholds.description,
                "paired_test": "exact McNemar (McNemar 1947); interval: Newcombe 1998b method 10",
                "unpaired_test": "Fisher exact when an expected count is < 5, else pooled two-proportion z; "
                                 "interval: Newcombe 1998 hybrid score",
            },
            "rules": [rule.to_dict() for rule in self.thresholds.rules],
            "checks": checks,
            "summary": self.summary(),
            "violations": [violation_record(result, self.settings) for result in failures],
            "notes": [*self.notes, *([self.pairing.note] if self.pairing.note else [])],
        })


def compare_audits(baseline: AuditOutput, candidate: AuditOutput, thresholds: Thresholds | None = None, *,
                   settings: CompareSettings = CompareSettings()) -> Comparison:
    """Check every rule for every group; raises :class:`CompareError` when the audits do not fit together."""
    thresholds_path = thresholds.path if thresholds is not None else None
    thresholds, checks, notes = plan_checks(baseline, candidate, thresholds)
    pairing = decide_pairing(baseline, candidate, list(dict.fromkeys(check.rule.probe for check in checks)))
    comparer = Comparer(baseline, candidate, pairing, settings)
    groups_per_check = {id(check): comparer.groups(check.rule.probe, check.rule.metric, check.attributes)
                        for check in checks}
    for check in checks:
        if not any(group.n_baseline and group.n_candidate for group in groups_per_check[id(check)]):
            raise CompareError(f"{rule_location(check.rule)}: slice {check.slice_id!r} of probe {check.rule.probe!r} "
                               "has no group with images in both audits; the two datasets cannot be compared "
                               "on it")
    family = [group for group in comparer.all_groups() if not group.small and group.p_value is not None]
    for group, adjusted in zip(family, adjust_p_values([group.p_value for group in family], method="holm")):
        group.p_adjusted = float(adjusted)
    group_results = [evaluate_group(check, group, settings)
                     for check in checks for group in groups_per_check[id(check)]]
    gap_results = [gap for check in checks if (gap := evaluate_gap(check, groups_per_check[id(check)])) is not None]
    return Comparison(baseline, candidate, thresholds, thresholds_path, settings, pairing, checks, group_results,
                      gap_results, len(family), notes)


# --- words -----------------------------------------------------------------------------------


def _percent(value: float | None) -> str:
    from clipaudit.report.view import format_percent

    return format_percent(value)


def _points(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "\u2014"
    return f"{value * 100:+.1f} pp"


def _p(value: float | None) -> str:
    from clipaudit.report.view import format_p_value

    return format_p_value(value)


def bound_text(reason: str, rule: Rule) -> str:
    if reason in (MAX_RISE_EXCEEDED, MAX_DROP_EXCEEDED):
        return f"{reason} ({_points(rule.max_worsening).lstrip('+')})"
    if reason == MAX_EXCEEDED:
        return f"{reason} ({_percent(rule.max)})"
    if reason == MIN_NOT_MET:
        return f"{reason} ({_percent(rule.min)})"
    if reason == MAX_GAP_EXCEEDED:
        return f"{reason} ({_points(rule.max_gap).lstrip('+')})"
    return reason


def violation_text(result: GroupResult | GapResult, settings: CompareSettings) -> str:
    """One line: rule, group, baseline -> candidate, interval, p, what was exceeded."""
    check = result.check
    where = "" if check.rule.where == "default" else f" ({check.rule.where})"
    head = f"{check.rule.id}{where} {check.rule.probe} {check.rule.metric} by {check.slice_id}"
    reasons = "; ".join(bound_text(reason, check.rule) for reason in result.reasons)
    if isinstance(result, GapResult):
        return (f"{head}: {GAP_GROUP}: {_points(result.baseline_gap).lstrip('+')} \u2192 "
                f"{_points(result.candidate_gap).lstrip('+')} (highest {result.max_group}, lowest "
                f"{result.min_group}): {reasons}")
    group = result.group
    level = f"{settings.confidence * 100:g}%"
    return (f"{head}: {group.group}: {_percent(group.baseline_value)} \u2192 {_percent(group.candidate_value)} "
            f"({_points(group.delta)}, {level} CI {_points(group.ci_low)} to {_points(group.ci_high)}), "
            f"p {_p(group.p_value)}, adjusted p {_p(group.p_adjusted)}: {reasons}")


def violation_record(result: GroupResult | GapResult, settings: CompareSettings) -> dict[str, Any]:
    check = result.check
    record: dict[str, Any] = {"rule": check.rule.id, "where": check.rule.where, "probe": check.rule.probe,
                              "metric": check.rule.metric, "slice": check.slice_id, "reasons": result.reasons,
                              "text": violation_text(result, settings)}
    if isinstance(result, GapResult):
        record.update(group=GAP_GROUP, baseline=result.baseline_gap, candidate=result.candidate_gap,
                      delta=None, ci_low=None, ci_high=None, p_value=None, p_adjusted=None)
    else:
        group = result.group
        record.update(group=group.group, baseline=group.baseline_value, candidate=group.candidate_value,
                      delta=group.delta, ci_low=group.ci_low, ci_high=group.ci_high, p_value=group.p_value,
                      p_adjusted=group.p_adjusted)
    return record


# --- outputs: compare.json, compare.md, compare.html, junit.xml -------------------------------


def render_markdown(document: dict[str, Any]) -> str:
    """compare.md: the verdict, the violations, then every check, for a pull-request comment or CI log."""
    settings, summary = document["settings"], document["summary"]
    verdict = "PASSED" if document["passed"] else "FAILED"
    lines = [f"## clipaudit compare: {verdict}", ""]
    lines.append(f"{summary['failed']} violation(s), {summary['passed']} check(s) passed, "
                 f"{summary['skipped']} skipped (groups under min_n = {settings['min_n']}). "
                 f"Holm-adjusted across {settings['family_size']} test(s) at \u03b1 = {settings['alpha']:g}.")
    lines.append("")
    lines.append(f"- baseline: `{_md(document['baseline']['path'])}` ({_md(document['baseline']['model'])}, "
                 f"{_md(document['baseline']['dataset']['spec'])})")
    lines.append(f"- candidate: `{_md(document['candidate']['path'])}` ({_md(document['candidate']['model'])}, "
                 f"{_md(document['candidate']['dataset']['spec'])})")
    lines.append(f"- pairing: {_md(document['pairing']['reason'])}")
    lines.append(f"- rules: {_md(settings['thresholds'] or settings['thresholds_description'] or '')}")
    for note in document["notes"]:
        lines.append(f"- note: {_md(note)}")
    lines.append("")
    if document["violations"]:
        lines += ["### Violations", "", "| rule | probe | metric | slice | group | baseline | candidate | change | "
                  f"{settings['confidence'] * 100:g}% CI | p | adj. p | reason |", "|" + "---|" * 12]
        for violation in document["violations"]:
            lines.append("| " + " | ".join(_md(cell) for cell in (
                violation["rule"], violation["probe"], violation["metric"], violation["slice"], violation["group"],
                *_value_cells(violation), "; ".join(violation["reasons"]))) + " |")
        lines.append("")
    lines += ["<details><summary>All checks</summary>", ""]
    for check in document["checks"]:
        mark = "pass" if check["passed"] else "FAIL"
        lines += [f"#### {_md(check['rule'])}: {_md(check['probe'])} {_md(check['metric'])} by "
                  f"{_md(check['slice'])} ({mark})", "",
                  "| group | n | baseline | candidate | change | CI | p | adj. p | status |", "|" + "---|" * 9]
        for group in check["groups"]:
            n = group["n_pairs"] if group["n_pairs"] is not None else (
                f"{group['baseline']['n']} / {group['candidate']['n']}")
            record = {"baseline": group["baseline"]["value"], "candidate": group["candidate"]["value"], **{
                key: group[key] for key in ("delta", "ci_low", "ci_high", "p_value", "p_adjusted")}}
            status = group["status"] + (f": {'; '.join(group['reasons'])}" if group["reasons"] else "")
            lines.append("| " + " | ".join(_md(cell) for cell in (group["group"], n, *_value_cells(record), status))
                         + " |")
        if check["gap"] is not None:
            gap = check["gap"]
            lines += ["", f"Gap across groups: {_points(gap['baseline']).lstrip('+')} \u2192 "
                          f"{_points(gap['candidate']).lstrip('+')} (bound {_points(gap['max_gap']).lstrip('+')}): "
                          f"{gap['status']}"]
        lines.append("")
    lines += ["</details>", ""]
    return "\n".join(lines)


def _value_cells(record: dict[str, Any]) -> tuple[str, ...]:
    interval = ("\u2014" if record["ci_low"] is None else
                f"{_points(record['ci_low'])} to {_points(record['ci_high'])}")
    if record.get("group") == GAP_GROUP:
        return (_points(record["baseline"]).lstrip("+"), _points(record["candidate"]).lstrip("+"), "\u2014",
                interval, "\u2014", "\u2014")
    return (_percent(record["baseline"]), _percent(record["candidate"]), _points(record["delta"]), interval,
            _p(record["p_value"]), _p(record["p_adjusted"]))


def _md(value: Any) -> str:
    """Table-safe Markdown text: pipes and newlines would break the table, markup would render."""
    text = "" if value is None else str(value)
    for character in "\\`*_[]<>|":
        text = text.replace(character, "\\" + character)
    return " ".join(text.split())


def render_junit(document: dict[str, Any]) -> str:
    """junit.xml: one test case per rule x group (and per gap bound), ``<failure>`` for violations."""
    import xml.etree.ElementTree as ElementTree

    cases: list[ElementTree.Element] = []
    texts = {(violation["rule"], violation["probe"], violation["metric"], violation["slice"], violation["group"]):
             violation["text"]
             for violation in document["violations"]}
    for check in document["checks"]:
        classname = f"{check['probe']}.{check['metric']}.{check['slice']}"
        entries = [(group["group"], group["status"], group["reasons"], group["notes"]) for group in check["groups"]]
        if check["gap"] is not None:
            entries.append((GAP_GROUP, check["gap"]["status"], check["gap"]["reasons"], []))
        for group_name, status, reasons, notes in entries:
            case = ElementTree.Element("testcase", classname=classname, name=f"{check['rule']} {group_name}", time="0")
            if status == "fail":
                failure = ElementTree.SubElement(case, "failure", message="; ".join(reasons), type="regression")
                key = (check["rule"], check["probe"], check["metric"], check["slice"], group_name)
                failure.text = texts.get(key, "; ".join(reasons))
            elif status == "skipped":
                ElementTree.SubElement(case, "skipped", message="; ".join(notes))
            cases.append(case)
    failures = sum(1 for case in cases if case.find("failure") is not None)
    skipped = sum(1 for case in cases if case.find("skipped") is not None)
    counts = {"tests": str(len(cases)), "failures": str(failures), "errors": "0", "skipped": str(skipped)}
    root = ElementTree.Element("testsuites", name="clipaudit", **counts)
    suite = ElementTree.SubElement(root, "testsuite", name="clipaudit compare", timestamp=document["created_at"],
                                   **counts)
    suite.extend(cases)
    ElementTree.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(root, encoding="unicode") + "\n"


def comparison_files(comparison: Comparison) -> dict[str, bytes]:
    """The four output files, rendered in memory (nothing is written here)."""
    from clipaudit.report.compare_view import render_compare_html

    document = check_own(comparison.to_dict(), "compare")
    return {
        "compare.json": to_json_bytes(document),
        "compare.md": render_markdown(document).encode("utf-8"),
        "compare.html": render_compare_html(document).encode("utf-8"),
        "junit.xml": render_junit(document).encode("utf-8"),
    }


OUTPUT_NAMES = ("compare.json", "compare.md", "compare.html", "junit.xml")


def write_comparison(comparison: Comparison, out_dir: Path) -> list[Path]:
    """Write compare.json, compare.md, compare.html and junit.xml into ``out_dir``, all or nothing."""
    from clipaudit.files import write_output_files

    return write_output_files(Path(out_dir), comparison_files(comparison))


def run_compare(baseline: str | Path, candidate: str | Path, *, thresholds: str | Path | None = None,
                settings: CompareSettings = CompareSettings()) -> Comparison:
    """`clipaudit compare` without writing: load, check, compare. Raises on bad input."""
    from clipaudit.compare.thresholds import load_thresholds

    base = load_audit_output(baseline, role="baseline")
    cand = load_audit_output(candidate, role="candidate")
    rules = load_thresholds(thresholds) if thresholds is not None else None
    return compare_audits(base, cand, rules, settings=settings)
