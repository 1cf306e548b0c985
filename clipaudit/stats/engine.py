"""The statistics engine: predictions table -> per-group rates, intervals, disparities, tests.

One pass per (probe, slice, metric) over integer group codes (``numpy.bincount``),
so a million predictions with a hundred intersection groups take about a second.
The engine needs no model: it reads the predictions table that ``score.py`` writes
(columns ``probe``, ``prediction``, ``target`` and the dataset attributes) and a
duck-typed description of each probe (see :class:`ProbeSpec`).

Policies, stated once:

- Rows whose ``target`` is null are excluded from ``accuracy`` and counted under
  ``overall.accuracy.excluded``.
- Rows with a null value in any attribute of a slice are left out of that slice and
  counted in the slice's ``rows_missing_attributes``.
- Every combination of the observed values of a slice's attributes is a group; a
  group with no rows for a metric is listed in that metric's ``empty_groups`` and has
  no value or interval. A group with ``0 < n < min_n`` is listed with ``small: true``
  and left out of the disparity measures, the tests and the findings; every group
  carries ``mdd``, its minimum detectable difference at ``power`` (80%).
- A table with fewer than two non-small groups, or whose non-small groups have one
  outcome only, has ``test: null`` and a ``note``; it is not in the family. A pairwise
  comparison with one outcome only has ``p_value: null`` and a ``note``.
- The family for the multiple-testing correction is every omnibus, trend and pairwise
  test of the audit (``statistics.family`` says so, with the counts).
- What "significant" means, the reference options and every interval: see
  the README section "Statistics".
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from clipaudit import format
from clipaudit.errors import ClipauditError
from clipaudit.stats.comparisons import (fill_mdd, group_entries, reference_comparisons, selection_factor,
                                         simultaneous_intervals)
from clipaudit.stats.disparities import disparity
from clipaudit.stats.findings import Finding, build_findings
from clipaudit.stats.groups import FAIRFACE_ORDER, GroupCounts, SliceGroups, group_counts, probe_slice_groups
from clipaudit.stats.hypothesis_tests import (OmnibusTest, TrendTest, omnibus_test, pairwise_test, trend_test,
                                              trend_untestable_reason, untestable_reason)
from clipaudit.stats.intervals import rate_entry
from clipaudit.stats.metrics import ProbeSpec, metric_names, metric_outcomes
from clipaudit.stats.method_notes import method_notes
from clipaudit.stats.multiple import CORRECTION_CONTROLS
from clipaudit.stats.reference import Reference, resolve_reference
from clipaudit.stats.settings import GROUP_REFERENCE_PREFIX, StatsSettings
from clipaudit.stats.significance import EFFECT_TOLERANCE, correct_family
from clipaudit.stats.spread import SPREAD_METHOD, spread_interval
from clipaudit.stats.verdicts import family_gap_interval, family_level, metric_verdict
from clipaudit.vocabulary import direction_phrase, higher_is_worse, slice_id as slice_id_of


def _probe_list(probes: Sequence[ProbeSpec] | Any) -> list[ProbeSpec]:
    # A Taxonomy (internals.md) is accepted as well as a sequence of probes.
    probe_list = list(probes.probes) if hasattr(probes, "probes") else list(probes)
    seen: set[str] = set()
    for probe in probe_list:
        if probe.kind not in ("attribute", "harm"):
            raise ClipauditError(f"probe {probe.id!r}: kind must be 'attribute' or 'harm', got {probe.kind!r}")
        if probe.id in seen:
            raise ClipauditError(f"probe {probe.id!r} is listed twice")
        seen.add(probe.id)
        for slice_attributes in probe.slices:
            if len(slice_attributes) == 0:
                raise ClipauditError(f"probe {probe.id!r}: empty slice in {list(map(list, probe.slices))}")
    return probe_list


def _check_columns(predictions: pd.DataFrame, probes: Sequence[ProbeSpec]) -> None:
    present = [str(column) for column in predictions.columns]

    def require(column: str, why: str) -> None:
        if column not in predictions.columns:
            raise ClipauditError(f"predictions: missing column {column!r} ({why}); columns present: {present}")
    require("probe", "the probe id of each row")
    require("prediction", "the predicted class id")
    for probe in probes:
        if probe.kind == "attribute":
            require("target", f"ground truth for attribute probe {probe.id!r}")
        for slice_attributes in probe.slices:
            for attribute in slice_attributes:
                require(attribute, f"slice {slice_id_of(slice_attributes)!r} of probe {probe.id!r}")


def _probe_rows(predictions: pd.DataFrame, probes: Sequence[ProbeSpec]) -> dict[str, NDArray[np.intp]]:
    probe_codes, probe_values = pd.factorize(predictions["probe"])
    present = [str(value) for value in probe_values]
    rows: dict[str, NDArray[np.intp]] = {}
    for probe in probes:
        if probe.id not in present:
            raise ClipauditError(f"predictions: no rows for probe {probe.id!r}; probes present: {present}")
        rows[probe.id] = np.flatnonzero(probe_codes == present.index(probe.id))
    return rows



def _test_entry(test: OmnibusTest, counts: GroupCounts, tested_index: NDArray[np.intp]) -> tuple[dict[str, Any], float]:
    # The effect is the difference the test compares: the most significant group against the rest.
    lead = int(tested_index[int(test.most_significant or 0)])
    successes, n = counts.successes[tested_index], counts.n[tested_index]
    rest_n = int(n.sum()) - int(counts.n[lead])
    rest_successes = int(successes.sum()) - int(counts.successes[lead])
    effect = abs(float(counts.successes[lead]) / float(counts.n[lead]) - rest_successes / rest_n)
    return ({"name": test.name, "statistic": float(test.statistic), "df": int(test.df),
             "p_value": float(test.p_value), "p_adjusted": None, "significant": False,
             "groups_tested": int(test.groups_tested), "effect": effect,
             "effect_measure": "|group - rest| of the group with the smallest p-value",
             "effect_group": counts.labels[lead]}, effect)


def _trend_entry(test: TrendTest) -> dict[str, Any]:
    return {"name": test.name, "statistic": float(test.statistic), "df": 1, "p_value": float(test.p_value),
            "p_adjusted": None, "significant": False, "groups_tested": int(test.groups_tested),
            "slope": float(test.slope), "effect": float(test.effect),
            "effect_measure": "fitted change from first to last group"}


@dataclass
class _Tested:
    # One test awaiting the family-wise adjustment; ``effect`` is compared with min_effect.
    kind: Literal["omnibus", "trend", "pairwise"]
    probe: ProbeSpec
    slice_id: str
    metric: str
    counts: GroupCounts
    entry: dict[str, Any]
    effect: float
    reference: Reference | None = None
    attributes: tuple[str, ...] = ()


@dataclass
class _GroupTable:
    # A metric's entry awaiting what needs the family's size: the groups' MDD, the verdict, the family interval.
    entries: list[dict[str, Any]]
    counts: GroupCounts
    reference: Reference
    metric: str
    metric_entry: dict[str, Any]


def _disparity_entry(counts: GroupCounts, settings: StatsSettings) -> dict[str, Any]:
    measures = disparity(counts, min_n=settings.min_n).to_dict()
    qualifies = counts.n >= settings.min_n
    extra: dict[str, Any] = {"gap_ci_low": None, "gap_ci_high": None, "ratio_ci_low": None,
                             "ratio_ci_high": None, "four_fifths": None, "max_value": None, "min_value": None,
                             "ci_method": None, "ci_kind": None}
    if measures["gap"] is not None:
        rates = counts.successes[qualifies] / counts.n[qualifies]
        extra["max_value"], extra["min_value"] = float(rates.max()), float(rates.min())
        spread = spread_interval(counts.successes[qualifies], counts.n[qualifies], confidence=settings.confidence)
        extra.update(gap_ci_low=spread.gap_low, gap_ci_high=spread.gap_high,
                     ratio_ci_low=spread.ratio_low, ratio_ci_high=spread.ratio_high,
                     four_fifths=spread.four_fifths, ci_method=SPREAD_METHOD, ci_kind="simultaneous")
    return {**measures, **extra}


def _trend_applies(attributes: Sequence[str], counts: GroupCounts, settings: StatsSettings) -> bool:
    # One ordered attribute whose observed values all have a known order.
    if len(attributes) != 1 or attributes[0] not in settings.ordered_attributes:
        return False
    vocabulary = FAIRFACE_ORDER.get(attributes[0])
    return vocabulary is None or all(values[0] in vocabulary for values in counts.values)


def _metric_entry(probe: ProbeSpec, groups: SliceGroups, metric: str, counts: GroupCounts,
                  settings: StatsSettings, tested: list[_Tested], tables: list[_GroupTable],
                  reference_spec: str) -> dict[str, Any]:
    slice_id = slice_id_of(groups.attributes)
    qualifies = counts.n >= settings.min_n
    tested_index = np.flatnonzero(qualifies)
    test_successes, test_n = counts.successes[qualifies], counts.n[qualifies]
    disparity_entry = _disparity_entry(counts, settings)
    test_entry = None
    note = untestable_reason(test_successes, test_n)
    if note is None:
        test = omnibus_test(test_successes, test_n)
        if test is not None:
            test_entry, effect = _test_entry(test, counts, tested_index)
            tested.append(_Tested("omnibus", probe, slice_id, metric, counts, test_entry, effect))
    trend_entry, trend_note = None, None
    if note is None and _trend_applies(groups.attributes, counts, settings):
        trend_note = trend_untestable_reason(test_successes, test_n)
        # Scores are the positions in the attribute's order (0, 1, 2, ...), over tested groups.
        trend = trend_test(test_successes, test_n, tested_index.astype(np.float64))
        if trend is not None:
            trend_entry = _trend_entry(trend)
            tested.append(_Tested("trend", probe, slice_id, metric, counts, trend_entry, float(trend.effect)))
    reference = resolve_reference(reference_spec, counts, metric=metric, min_n=settings.min_n)
    comparisons = reference_comparisons(counts, reference, metric, settings)
    for comparison in comparisons:
        if comparison["p_value"] is not None:
            tested.append(_Tested("pairwise", probe, slice_id, metric, counts, comparison,
                                  float(comparison["effect"]), reference, tuple(groups.attributes)))
    group_list = group_entries(counts, groups.attributes, reference, settings)
    entry = {"metric": metric,
            "direction": direction_phrase(metric),
            "groups": group_list,
            "empty_groups": [label for label, n in zip(counts.labels, counts.n) if n == 0],
            "small_groups": [label for label, n in zip(counts.labels, counts.n) if 0 < n < settings.min_n],
            "disparity": disparity_entry,
            "reference": reference.to_dict(),
            "test": test_entry,
            "trend": trend_entry,
            "trend_note": trend_note,
            "comparisons": comparisons,
            "note": note}
    tables.append(_GroupTable(group_list, counts, reference, metric, entry))
    return entry


def _probe_entry(predictions: pd.DataFrame, rows: NDArray[np.intp], probe: ProbeSpec,
                 settings: StatsSettings, tested: list[_Tested], tables: list[_GroupTable]) -> dict[str, Any]:
    outcomes = metric_outcomes(predictions, rows, probe)
    metrics = metric_names(probe)
    overall: dict[str, dict[str, Any]] = {}
    for metric in metrics:
        counted, success = outcomes[metric]
        overall[metric] = rate_entry(int(np.count_nonzero(counted & success)), int(np.count_nonzero(counted)),
                                     method=settings.interval, confidence=settings.confidence)
        overall[metric]["excluded"] = int(rows.size - np.count_nonzero(counted))
    reference_spec = settings.reference_for(probe.id)
    slices = []
    for groups in probe_slice_groups(predictions, rows, probe.slices):
        slice_attributes = groups.attributes
        metric_entries = [
            _metric_entry(probe, groups, metric, group_counts(groups, *outcomes[metric]), settings, tested,
                          tables, reference_spec)
            for metric in metrics]
        slices.append({"id": slice_id_of(slice_attributes), "attributes": list(slice_attributes),
                       "rows_missing_attributes": groups.rows_missing_attributes, "metrics": metric_entries})
    if reference_spec.startswith(GROUP_REFERENCE_PREFIX):
        name = reference_spec.removeprefix(GROUP_REFERENCE_PREFIX)
        known = sorted({group["group"] for entry in slices for metric in entry["metrics"] for group in metric["groups"]})
        if name not in known and not any(name in metric["empty_groups"]
                                         for entry in slices for metric in entry["metrics"]):
            raise ClipauditError(f"reference 'group:{name}' for probe {probe.id!r}: no such group in any slice; "
                                 f"groups: {known[:20]}")
    return {"id": probe.id, "kind": probe.kind, "target": probe.target,
            "classes": [cls.id for cls in probe.classes], "metrics": metrics,
            "overall": overall, "slices": slices}


def _adjust_family(tested: Sequence[_Tested], settings: StatsSettings) -> None:
    corrected = correct_family([item.entry["p_value"] for item in tested], [item.effect for item in tested],
                               correction=settings.correction, alpha=settings.alpha, min_effect=settings.min_effect)
    for item, (p_adjusted, significant) in zip(tested, corrected):
        item.entry["p_adjusted"] = p_adjusted
        item.entry["significant"] = significant
    pairwise = [item for item in tested if item.kind == "pairwise"]
    simultaneous_intervals([item.entry for item in pairwise], [item.counts for item in pairwise],
                           [item.reference for item in pairwise if item.reference is not None],
                           family_size=max(1, len(tested)), confidence=settings.confidence)


def mdd_alpha(settings: StatsSettings, family_size: int) -> float:
    """The per-test level the MDD is computed at: ``alpha / m``, the level Holm's first step (and
    Bonferroni) asks of a test in a family of ``m`` (Holm's later steps are less strict, BH's
    up to ``alpha``; this is the level a single disparity must reach on its own)."""
    return settings.alpha / max(1, family_size)


def _fill_family_level(tables: Sequence[_GroupTable], settings: StatsSettings, family_size: int) -> float:
    """Each metric's verdict and its gap's family interval (:mod:`clipaudit.stats.verdicts`), once
    the family is adjusted and the findings chosen; returns the gaps' level."""
    level = _gap_level(tables, settings, family_size)
    for table in tables:
        entry = table.metric_entry
        entry["verdict"] = metric_verdict(entry)
        bounds = family_gap_interval(table.counts, entry["comparisons"], table.reference.kind, min_n=settings.min_n,
                                     level=level)
        entry["disparity"].update(gap_family_ci_low=None if bounds is None else bounds[0],
                                  gap_family_ci_high=None if bounds is None else bounds[1],
                                  family_level=None if bounds is None else level)
    return level


def _gap_level(tables: Sequence[_GroupTable], settings: StatsSettings, family_size: int) -> float:
    gaps = sum(1 for table in tables if int(np.count_nonzero(table.counts.n >= settings.min_n)) >= 2)
    return family_level(settings.confidence, family_size, gaps)


def _fill_mdd(tables: Sequence[_GroupTable], settings: StatsSettings, family_size: int) -> None:
    for table in tables:
        tested_groups = int(np.count_nonzero(table.counts.n >= settings.min_n))
        fill_mdd(table.entries, table.counts, table.reference, table.metric,
                 alpha=mdd_alpha(settings, family_size) / selection_factor(table.reference, tested_groups),
                 power=settings.power)


def _better_on_its_own(item: _Tested, worse_groups: Sequence[str], settings: StatsSettings,
                       family_size: int) -> str | None:
    """Why a better-off group against ``overall``/``rest`` is not a finding, or ``None`` when it is.

    When some groups of the table are significantly worse, the rest of the population contains
    them, and a group equal to all the others looks "better" than that rest. Such a group is a
    finding only on its own test: against the rest without the worse-off groups, Fisher's exact
    test at the Bonferroni level ``alpha / m`` and a difference of at least ``min_effect``.
    """
    comparison = item.entry
    labels = item.counts.labels
    excluded = [labels.index(comparison["group"]), *(labels.index(group) for group in worse_groups)]
    k1, n1 = int(comparison["successes"]), int(comparison["n"])
    others_n = int(item.counts.n.sum()) - int(item.counts.n[excluded].sum())
    others_k = int(item.counts.successes.sum()) - int(item.counts.successes[excluded].sum())
    why = (f"better than the rest only with the worse-off group(s) {', '.join(worse_groups)} in it; "
           "against the other groups it is ")
    if others_n == 0:
        return why + "not testable (no other groups)"
    test = pairwise_test(k1, n1, others_k, others_n)
    difference = k1 / n1 - others_k / others_n
    better = difference < 0 if higher_is_worse(item.metric) else difference > 0
    p_value = 1.0 if test is None else min(1.0, test.p_value * family_size)
    if better and p_value < settings.alpha and abs(difference) >= settings.min_effect - EFFECT_TOLERANCE:
        return None
    return why + (f"{format.points_number(difference)} points (Bonferroni-adjusted {format.p_phrase(p_value)}): "
                  "not a finding")


def _findings(tested: Sequence[_Tested], settings: StatsSettings) -> list[Finding]:
    significant = [item for item in tested if item.kind == "pairwise" and item.entry["significant"]]
    worse_by_table: dict[tuple[str, str, str], list[str]] = {}
    for item in significant:
        if item.entry["worse"]:
            worse_by_table.setdefault((item.probe.id, item.slice_id, item.metric), []).append(item.entry["group"])
    kept = []
    for item in significant:
        worse_groups = worse_by_table.get((item.probe.id, item.slice_id, item.metric), [])
        if (not item.entry["worse"] and worse_groups and item.reference is not None
                and item.reference.kind in ("overall", "rest")):
            item.entry["finding_note"] = _better_on_its_own(item, worse_groups, settings, len(tested))
            if item.entry["finding_note"] is not None:
                continue
        kept.append(item)
    return build_findings(
        [(item.probe, item.slice_id, item.metric,
          dict(zip(item.attributes, item.counts.values[item.counts.labels.index(item.entry["group"])])), item.entry)
         for item in kept],
        settings=settings)


def _significant_counts(tested: Sequence[_Tested]) -> dict[str, int]:
    return {kind: sum(1 for item in tested if item.kind == kind and item.entry["significant"])
            for kind in ("omnibus", "trend", "pairwise")}


def _reconciliation(tested: Sequence[_Tested], findings: Sequence[Finding]) -> str:
    # Why the count of significant tests and the number of findings differ, in one sentence.
    counts = _significant_counts(tested)
    total = sum(counts.values())
    not_findings = sum(1 for item in tested if item.kind == "pairwise" and item.entry.get("finding_note"))
    grouped = counts["pairwise"] - not_findings
    text = (f"{total} significant test{'' if total == 1 else 's'} ({counts['omnibus']} omnibus, {counts['trend']} "
            f"trend, {counts['pairwise']} pairwise); findings come from the pairwise comparisons only (omnibus and "
            f"trend tests say that groups differ, not which group): ")
    if not_findings:
        text += (f"{not_findings} better-off comparison{'' if not_findings == 1 else 's'} held only against a rest "
                 "that includes worse-off groups and are not findings; ")
    return text + (f"{'the other ' if not_findings else 'the '}{grouped} make {len(findings)} finding{'' if len(findings) == 1 else 's'}, "
                   "one per disparity (the same group across slices and metrics is one finding)")


def _family_description(tested: Sequence[_Tested], settings: StatsSettings) -> str:
    by_kind = {kind: sum(1 for item in tested if item.kind == kind) for kind in ("omnibus", "trend", "pairwise")}
    total = len(tested)
    return (f"all tests in this audit, adjusted together ({settings.correction}, controlling the "
            f"{CORRECTION_CONTROLS[settings.correction]}): {total} test{'' if total == 1 else 's'} = "
            f"{by_kind['omnibus']} omnibus across groups + {by_kind['trend']} trend across ordered groups + "
            f"{by_kind['pairwise']} pairwise group-vs-reference, over every probe, slice and metric")


def compute_statistics(predictions: pd.DataFrame, probes: Sequence[ProbeSpec] | Any, *,
                       settings: StatsSettings = StatsSettings()) -> dict[str, Any]:
    """Per-group rates with intervals, disparities with intervals, tests, and findings.

    ``probes`` is a sequence of probes (or a taxonomy with a ``probes`` attribute).
    Returns ``{"statistics": {...}, "probes": [...], "findings": [...]}`` shaped as in
    ``docs/internals.md`` (the caller adds each probe's ``class_details``). Every test
    (omnibus, trend, pairwise) of the audit is one family for the multiple-testing
    correction (Holm 1979 or Benjamini & Hochberg 1995); a test is ``significant`` when
    its adjusted p-value is below ``alpha`` and its effect is at least ``min_effect``.
    Findings are the significant pairwise comparisons. Only plain Python values: no
    numpy scalars and no NaN (missing values are ``None``). Missing columns or probes
    raise :class:`~clipaudit.errors.ClipauditError`.
    """
    probe_list = _probe_list(probes)
    _check_columns(predictions, probe_list)
    for probe_id in settings.reference_by_probe:
        if probe_id not in {probe.id for probe in probe_list}:
            raise ClipauditError(f"reference_by_probe names probe {probe_id!r}, which is not audited; "
                                 f"probes: {[probe.id for probe in probe_list]}")
    rows_by_probe = _probe_rows(predictions, probe_list)
    tested: list[_Tested] = []
    tables: list[_GroupTable] = []
    probe_entries = [_probe_entry(predictions, rows_by_probe[probe.id], probe, settings, tested, tables)
                     for probe in probe_list]
    _adjust_family(tested, settings)
    _fill_mdd(tables, settings, len(tested))
    findings = _findings(tested, settings)
    gap_level = _fill_family_level(tables, settings, len(tested))
    untested = sum(1 for probe in probe_entries for slice_entry in probe["slices"]
                   for metric in slice_entry["metrics"] if metric["test"] is None)
    statistics = {**settings.to_dict(),
                  **method_notes(settings, gap_level=gap_level),
                  "mdd_alpha": mdd_alpha(settings, len(tested)),
                  "significant_tests": _significant_counts(tested),
                  "findings_from": _reconciliation(tested, findings),
                  "family": _family_description(tested, settings),
                  "family_size": len(tested),
                  "tests": len(tested),
                  "tests_by_kind": {kind: sum(1 for item in tested if item.kind == kind)
                                    for kind in ("omnibus", "trend", "pairwise")},
                  "untested": untested}
    return {"statistics": statistics, "probes": probe_entries,
            "findings": [finding.to_dict() for finding in findings]}
