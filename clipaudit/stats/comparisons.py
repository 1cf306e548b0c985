"""Each group against its reference: rate with interval, minimum detectable difference, and the
pairwise difference, ratio and odds ratio with intervals and a test."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from clipaudit.stats.disparities import katz_ratio, minimum_detectable_difference, newcombe_difference, odds_ratio
from clipaudit.stats.groups import GroupCounts
from clipaudit.stats.hypothesis_tests import pairwise_test, pairwise_untestable
from clipaudit.stats.intervals import interval
from clipaudit.stats.reference import Reference, comparison_samples
from clipaudit.stats.settings import StatsSettings
from clipaudit.vocabulary import higher_is_worse


def _optional(value: float) -> float | None:
    # NaN stands for "none" (undefined or unbounded) in the vectorised helpers; JSON gets null.
    value = float(value)
    return None if not np.isfinite(value) else value



def group_entries(counts: GroupCounts, attributes: Sequence[str], reference: Reference, metric: str,
                   settings: StatsSettings) -> list[dict[str, Any]]:
    nonempty = np.flatnonzero(counts.n > 0)
    bounds = interval(counts.successes[nonempty], counts.n[nonempty], method=settings.interval,
                      confidence=settings.confidence)
    other_successes, other_n = comparison_samples(counts, reference)
    with np.errstate(divide="ignore", invalid="ignore"):
        other_rate = np.where(other_n > 0, other_successes / np.maximum(other_n, 1), np.nan)
    mdd = minimum_detectable_difference(counts.n, other_n, np.nan_to_num(other_rate), alpha=settings.alpha,
                                        power=settings.power, increase=higher_is_worse(metric))
    mdd = np.where(np.isfinite(other_rate), mdd, np.nan)
    entries = []
    for position, index in enumerate(nonempty):
        n, successes = int(counts.n[index]), int(counts.successes[index])
        entries.append({"group": counts.labels[index], "values": dict(zip(attributes, counts.values[index])),
                        "n": n, "successes": successes, "value": successes / n,
                        "ci_low": float(bounds.low[position]), "ci_high": float(bounds.high[position]),
                        "ci_method": settings.interval,
                        "small": n < settings.min_n,
                        "mdd": None if reference.index == index else _optional(mdd[index])})
    return entries



def reference_comparisons(counts: GroupCounts, reference: Reference, metric: str,
                 settings: StatsSettings) -> list[dict[str, Any]]:
    """Each tested group against the reference: difference, ratio, odds ratio, pairwise test.

    With the ``overall`` reference the group is part of the population it is compared
    with, so the two rates are not independent. The test and the intervals therefore
    use the group against the rest of the population (independent samples), and are
    carried over exactly: with ``w = n_group / N``, ``group - overall = (1 - w)(group - rest)``
    and ``group / overall = RR / (w RR + 1 - w)`` with ``RR = group / rest``, both
    increasing in the group-vs-rest measure, so the Newcombe and Katz bounds map to
    bounds for the overall comparison. The odds ratio is reported against the sample
    tested (the rest). ``H0: group = overall`` is the same hypothesis as ``group = rest``.
    """
    total_n, total_successes = int(counts.n.sum()), int(counts.successes.sum())
    compared = [int(i) for i in np.flatnonzero(counts.n >= settings.min_n) if int(i) != reference.index]
    if not compared:
        return []
    index = np.asarray(compared, dtype=np.intp)
    k1, n1 = counts.successes[index], counts.n[index]
    all_k2, all_n2 = comparison_samples(counts, reference)
    k2, n2 = all_k2[index], all_n2[index]
    keep = n2 > 0
    index, k1, n1, k2, n2 = index[keep], k1[keep], n1[keep], k2[keep], n2[keep]
    rest_k, rest_n = total_successes - k1, total_n - n1
    has_rest = rest_n > 0
    safe_rest_n = np.maximum(rest_n, 1)
    versus_sample = newcombe_difference(k1, n1, k2, n2, confidence=settings.confidence)
    versus_rest = newcombe_difference(k1, n1, rest_k, safe_rest_n, confidence=settings.confidence)
    ratios = katz_ratio(k1, n1, k2, n2, confidence=settings.confidence)
    odds = odds_ratio(k1, n1, k2, n2, confidence=settings.confidence)
    difference, difference_low, difference_high = versus_sample.estimate, versus_sample.low, versus_sample.high
    ratio, ratio_low, ratio_high = ratios.estimate, ratios.low, ratios.high
    reference_value = k2 / n2
    if reference.kind == "overall":
        weight = n1 / total_n
        overall_value = total_successes / total_n
        reference_value = np.full(k1.shape, overall_value)
        difference = k1 / n1 - overall_value
        difference_low, difference_high = (1 - weight) * versus_sample.low, (1 - weight) * versus_sample.high

        def to_overall(relative_risk: NDArray[np.float64]) -> NDArray[np.float64]:
            return relative_risk / (weight * relative_risk + 1 - weight)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(overall_value > 0, (k1 / n1) / overall_value, np.nan)
            ratio_low = to_overall(ratios.low)
            ratio_high = np.where(np.isnan(ratios.high), np.where(overall_value > 0, 1 / weight, np.nan),
                                  to_overall(ratios.high))
    entries = []
    reference_name = {"overall": "overall", "rest": "rest"}.get(reference.kind, reference.label)
    for position, group_index in enumerate(index):
        a, m, b, o = int(k1[position]), int(n1[position]), int(k2[position]), int(n2[position])
        test = pairwise_test(a, m, b, o)
        delta = float(difference[position])
        worse = (delta < 0) if not higher_is_worse(metric) else (delta > 0)
        entries.append({
            "group": counts.labels[group_index], "reference": reference_name,
            "compared_with": reference.label if reference.kind == "group" else "rest",
            "n": m, "successes": a, "value": a / m,
            "reference_n": o if reference.kind != "overall" else total_n,
            "reference_value": float(reference_value[position]),
            "difference": delta, "difference_ci_low": float(difference_low[position]),
            "difference_ci_high": float(difference_high[position]),
            "difference_method": versus_sample.method + (
                ", scaled from group vs rest" if reference.kind == "overall" else ""),
            "difference_vs_rest": float(versus_rest.estimate[position]) if has_rest[position] else None,
            "difference_vs_rest_ci_low": float(versus_rest.low[position]) if has_rest[position] else None,
            "difference_vs_rest_ci_high": float(versus_rest.high[position]) if has_rest[position] else None,
            "ratio": _optional(ratio[position]), "ratio_ci_low": _optional(ratio_low[position]),
            "ratio_ci_high": _optional(ratio_high[position]), "ratio_method": ratios.method,
            "odds_ratio": _optional(odds.estimate[position]), "odds_ratio_ci_low": _optional(odds.low[position]),
            "odds_ratio_ci_high": _optional(odds.high[position]), "odds_ratio_method": odds.method,
            "test": None if test is None else test.name,
            "statistic": None if test is None else test.statistic,
            "p_value": None if test is None else test.p_value,
            "p_adjusted": None, "significant": False,
            "direction": "equal" if delta == 0 else ("higher" if delta > 0 else "lower"),
            "worse": bool(worse),
            "note": None if test is not None else pairwise_untestable(a, m, b, o),
        })
    return entries
