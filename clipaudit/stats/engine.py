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

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from clipaudit.errors import ClipauditError
from clipaudit.stats.comparisons import group_entries, reference_comparisons
from clipaudit.stats.disparities import bootstrap_spread, disparity
from clipaudit.stats.findings import Finding, build_findings
from clipaudit.stats.groups import FAIRFACE_ORDER, GroupCounts, SliceGroups, group_counts, probe_slice_groups
from clipaudit.stats.hypothesis_tests import OmnibusTest, TrendTest, omnibus_test, trend_test, untestable_reason
from clipaudit.stats.intervals import INTERVAL_LABELS, interval
from clipaudit.stats.metrics import ProbeSpec, metric_names, metric_outcomes
from clipaudit.stats.multiple import CORRECTION_CONTROLS, CORRECTION_LABELS
from clipaudit.stats.reference import resolve_reference
from clipaudit.stats.settings import GROUP_REFERENCE_PREFIX, StatsSettings
from clipaudit.stats.significance import correct_family
from clipaudit.vocabulary import direction_phrase, slice_id as slice_id_of


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



def _rate_entry(successes: int, n: int, settings: StatsSettings) -> dict[str, Any]:
    if n == 0:
        return {"n": 0, "successes": 0, "value": None, "ci_low": None, "ci_high": None}
    bounds = interval(successes, n, method=settings.interval, confidence=settings.confidence)
    return {"n": int(n), "successes": int(successes), "value": successes / n,
            "ci_low": float(bounds.low), "ci_high": float(bounds.high)}


def _test_rng(settings: StatsSettings, key: str) -> np.random.Generator:
    # One stream per test, keyed by its name: a test's p-value does not depend on which
    # other probes or slices are in the audit.
    return np.random.default_rng(np.random.SeedSequence([settings.seed, zlib.crc32(key.encode("utf-8"))]))


def _test_entry(test: OmnibusTest, effect: float | None) -> dict[str, Any]:
    return {"name": test.name, "statistic": float(test.statistic), "df": int(test.df),
            "p_value": float(test.p_value), "p_adjusted": None, "significant": False,
            "groups_tested": int(test.groups_tested), "resamples": test.resamples, "effect": effect,
            "effect_measure": "max - min"}


def _trend_entry(test: TrendTest) -> dict[str, Any]:
    return {"name": test.name, "statistic": float(test.statistic), "df": 1, "p_value": float(test.p_value),
            "p_adjusted": None, "significant": False, "groups_tested": int(test.groups_tested),
            "resamples": test.resamples, "slope": float(test.slope), "effect": float(test.effect),
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


def _disparity_entry(counts: GroupCounts, settings: StatsSettings, key: str) -> dict[str, Any]:
    measures = disparity(counts, min_n=settings.min_n).to_dict()
    qualifies = counts.n >= settings.min_n
    extra: dict[str, Any] = {"gap_ci_low": None, "gap_ci_high": None, "ratio_ci_low": None,
                             "ratio_ci_high": None, "four_fifths": None, "max_value": None, "min_value": None,
                             "ci_method": None, "bootstrap_resamples": None}
    if measures["gap"] is not None:
        rates = counts.successes[qualifies] / counts.n[qualifies]
        extra["max_value"], extra["min_value"] = float(rates.max()), float(rates.min())
        if measures["ratio"] is not None:
            extra["four_fifths"] = bool(measures["ratio"] < 0.8)
        if settings.bootstrap > 0:
            spread = bootstrap_spread(counts.successes[qualifies], counts.n[qualifies],
                                      resamples=settings.bootstrap, confidence=settings.confidence,
                                      rng=_test_rng(settings, key + "\x1fbootstrap"))
            extra.update(gap_ci_low=spread.gap_low, gap_ci_high=spread.gap_high,
                         ratio_ci_low=spread.ratio_low if measures["ratio"] is not None else None,
                         ratio_ci_high=spread.ratio_high if measures["ratio"] is not None else None,
                         ci_method="stratified percentile bootstrap (Efron & Tibshirani 1993)",
                         bootstrap_resamples=spread.resamples)
    return {**measures, **extra}


def _trend_applies(attributes: Sequence[str], counts: GroupCounts, settings: StatsSettings) -> bool:
    # One ordered attribute whose observed values all have a known order.
    if len(attributes) != 1 or attributes[0] not in settings.ordered_attributes:
        return False
    vocabulary = FAIRFACE_ORDER.get(attributes[0])
    return vocabulary is None or all(values[0] in vocabulary for values in counts.values)


def _metric_entry(probe: ProbeSpec, groups: SliceGroups, metric: str, counts: GroupCounts,
                  settings: StatsSettings, tested: list[_Tested], reference_spec: str) -> dict[str, Any]:
    slice_id = slice_id_of(groups.attributes)
    key = f"{probe.id}\x1f{slice_id}\x1f{metric}"
    qualifies = counts.n >= settings.min_n
    test_successes, test_n = counts.successes[qualifies], counts.n[qualifies]
    disparity_entry = _disparity_entry(counts, settings, key)
    test_entry = None
    note = untestable_reason(test_successes, test_n)
    if note is None:
        test = omnibus_test(test_successes, test_n, resamples=settings.permutation_resamples,
                            rng=_test_rng(settings, key))
        if test is not None:
            test_entry = _test_entry(test, disparity_entry["gap"])
            tested.append(_Tested("omnibus", probe, slice_id, metric, counts, test_entry,
                                  float(disparity_entry["gap"] or 0.0)))
    trend_entry = None
    if note is None and _trend_applies(groups.attributes, counts, settings):
        # Scores are the positions in the attribute's order (0, 1, 2, ...), over tested groups.
        trend = trend_test(test_successes, test_n, np.flatnonzero(qualifies).astype(np.float64),
                           resamples=settings.permutation_resamples, rng=_test_rng(settings, key + "\x1ftrend"))
        if trend is not None:
            trend_entry = _trend_entry(trend)
            tested.append(_Tested("trend", probe, slice_id, metric, counts, trend_entry, float(trend.effect)))
    reference = resolve_reference(reference_spec, counts, metric=metric, min_n=settings.min_n)
    comparisons = reference_comparisons(counts, reference, metric, settings)
    for comparison in comparisons:
        if comparison["p_value"] is not None:
            tested.append(_Tested("pairwise", probe, slice_id, metric, counts, comparison,
                                  abs(float(comparison["difference"]))))
    return {"metric": metric,
            "direction": direction_phrase(metric),
            "groups": group_entries(counts, groups.attributes, reference, metric, settings),
            "empty_groups": [label for label, n in zip(counts.labels, counts.n) if n == 0],
            "small_groups": [label for label, n in zip(counts.labels, counts.n) if 0 < n < settings.min_n],
            "disparity": disparity_entry,
            "reference": reference.to_dict(),
            "test": test_entry,
            "trend": trend_entry,
            "comparisons": comparisons,
            "note": note}


def _probe_entry(predictions: pd.DataFrame, rows: NDArray[np.intp], probe: ProbeSpec,
                 settings: StatsSettings, tested: list[_Tested]) -> dict[str, Any]:
    outcomes = metric_outcomes(predictions, rows, probe)
    metrics = metric_names(probe)
    overall: dict[str, dict[str, Any]] = {}
    for metric in metrics:
        counted, success = outcomes[metric]
        overall[metric] = _rate_entry(int(np.count_nonzero(counted & success)), int(np.count_nonzero(counted)),
                                      settings)
        overall[metric]["excluded"] = int(rows.size - np.count_nonzero(counted))
    reference_spec = settings.reference_for(probe.id)
    slices = []
    for groups in probe_slice_groups(predictions, rows, probe.slices):
        slice_attributes = groups.attributes
        metric_entries = [
            _metric_entry(probe, groups, metric, group_counts(groups, *outcomes[metric]), settings, tested,
                          reference_spec)
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


def _findings(tested: Sequence[_Tested], settings: StatsSettings) -> list[Finding]:
    return build_findings(
        [(item.probe, item.slice_id, item.metric, item.counts, item.entry)
         for item in tested if item.kind == "pairwise" and item.entry["significant"]],
        settings=settings)


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
    probe_entries = [_probe_entry(predictions, rows_by_probe[probe.id], probe, settings, tested)
                     for probe in probe_list]
    _adjust_family(tested, settings)
    untested = sum(1 for probe in probe_entries for slice_entry in probe["slices"]
                   for metric in slice_entry["metrics"] if metric["test"] is None)
    statistics = {**settings.to_dict(),
                  "interval_method": INTERVAL_LABELS[settings.interval],
                  "test": "Pearson chi-square without continuity correction when every expected count "
                          "is >= 5, else Monte-Carlo permutation chi-square",
                  "pairwise_test": "Fisher exact test when any expected count of the 2 x 2 table is < 5, "
                                   "else pooled two-proportion z test; group against the rest of the "
                                   "population when the reference is overall or rest",
                  "trend_test": "Cochran-Armitage test for trend (scores = order of the attribute's values) "
                                "on slices over one ordered attribute; permutation form when any expected count < 5",
                  "difference_interval": "Newcombe hybrid score (Newcombe 1998, method 10)",
                  "ratio_interval": "log (Katz et al. 1978); odds ratio: logit (Woolf 1955); "
                                    "Haldane-Anscombe +0.5 on zero cells",
                  "spread_interval": "stratified percentile bootstrap (Efron & Tibshirani 1993)",
                  "significance": (f"adjusted p < {settings.alpha:g} ({CORRECTION_LABELS[settings.correction]}) "
                                   f"and effect >= {settings.min_effect:g} "
                                   f"({100 * settings.min_effect:g} percentage points)"),
                  "family": _family_description(tested, settings),
                  "family_size": len(tested),
                  "tests": len(tested),
                  "tests_by_kind": {kind: sum(1 for item in tested if item.kind == kind)
                                    for kind in ("omnibus", "trend", "pairwise")},
                  "untested": untested}
    return {"statistics": statistics, "probes": probe_entries,
            "findings": [finding.to_dict() for finding in _findings(tested, settings)]}
