"""Disparity measures between two independent proportions, each with an interval.

Everything is vectorised over numpy arrays of counts: group 1 (``k1`` of ``n1``) is
compared with group 2 (``k2`` of ``n2``), element-wise.

- Difference ``p1 - p2``: Newcombe's hybrid score interval (Newcombe 1998, Statistics
  in Medicine 17:873-890, method 10), built from the two Wilson intervals.
- Ratio ``p1 / p2``: the log (Katz) interval (Katz, Baptista, Azen & Pike 1978,
  Biometrics 34:469-474), ``exp(log RR +- z sqrt(1/k1 - 1/n1 + 1/k2 - 1/n2))``.
- Odds ratio: Woolf's (1955) logit interval, ``exp(log OR +- z sqrt(sum 1/cell))``
  (Agresti 2013, Categorical Data Analysis, section 3.1).
- Spread across many groups (max - min, min / max) with simultaneous intervals: see
  :mod:`clipaudit.stats.spread`.
- Minimum detectable difference of a two-sided two-proportion test at a given power
  (Fleiss, Levin & Paik 2003, section 4.2).

Zero-count policy, stated once:

- Ratio and odds ratio are ``None`` when undefined or infinite (a zero denominator).
- When a cell that the log-scale variance divides by is zero (successes for the ratio,
  any cell for the odds ratio), the interval is computed with the Haldane-Anscombe correction (0.5 added to every cell: Haldane 1956, Anscombe 1956);
  then a bound that the uncorrected estimate reaches is set exactly: the lower bound
  is 0 when the estimate is 0, and the upper bound is ``None`` (unbounded) when the
  estimate is infinite or undefined. So an interval always contains its estimate.
- With no zero cell the intervals are the textbook ones (they equal statsmodels'
  ``confint_proportions_2indep`` with ``method="log"`` / ``"logit"``).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from clipaudit.stats.groups import GroupCounts
from clipaudit.stats.intervals import jeffreys_interval, wilson_interval

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class TwoSampleEstimate:
    """An estimate with its interval, element-wise; NaN stands for "none" (undefined or unbounded)."""

    estimate: FloatArray
    low: FloatArray
    high: FloatArray
    method: str


def _z(confidence: float) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def _floats(*arrays: ArrayLike) -> list[FloatArray]:
    return [np.asarray(array, dtype=np.float64) for array in np.broadcast_arrays(*arrays)]


def newcombe_difference(k1: ArrayLike, n1: ArrayLike, k2: ArrayLike, n2: ArrayLike, *,
                        confidence: float = 0.95) -> TwoSampleEstimate:
    """``p1 - p2`` with Newcombe's (1998) hybrid score interval (method 10).

    With Wilson intervals ``(l1, u1)`` and ``(l2, u2)``:
    ``low = d - sqrt((p1 - l1)^2 + (u2 - p2)^2)``, ``high = d + sqrt((u1 - p1)^2 + (p2 - l2)^2)``.
    Assumes ``n1, n2 >= 1`` and independent samples.
    """
    return _mover(k1, n1, k2, n2, confidence, wilson_interval, "Newcombe hybrid score (Newcombe 1998)")


def jeffreys_mover_difference(k1: ArrayLike, n1: ArrayLike, k2: ArrayLike, n2: ArrayLike, *,
                              confidence: float) -> TwoSampleEstimate:
    """``p1 - p2`` with the MOVER interval built from Jeffreys intervals (MOVER-J: Zou & Donner 2008;
    Laud 2017, Pharmaceutical Statistics 16:334).

    Newcombe's formula with Jeffreys instead of Wilson intervals. It is the interval used at the
    extreme levels of simultaneous intervals (``1 - 0.05 / 1000``): there the Wilson-based interval
    misses 6-150 times too often for a rare outcome in a small group (the Wilson lower bound of a
    small count is far too high at large ``z``), the Jeffreys-based one at most its level.
    """
    return _mover(k1, n1, k2, n2, confidence, jeffreys_interval, "MOVER-Jeffreys (Laud 2017)")


def _mover(k1: ArrayLike, n1: ArrayLike, k2: ArrayLike, n2: ArrayLike, confidence: float,
           bounds: Callable[[FloatArray, FloatArray, float], tuple[FloatArray, FloatArray]],
           method: str) -> TwoSampleEstimate:
    # Method of variance estimates recovery (Zou & Donner 2008) from two single-rate intervals.
    k1, n1, k2, n2 = _floats(k1, n1, k2, n2)
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = bounds(k1, n1, confidence)
    l2, u2 = bounds(k2, n2, confidence)
    difference = p1 - p2
    low = difference - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = difference + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return TwoSampleEstimate(difference, low, high, method)


def _haldane(k1: FloatArray, n1: FloatArray, k2: FloatArray, n2: FloatArray, zero: NDArray[np.bool_]
             ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    # Counts with 0.5 added to each of the four cells where ``zero`` holds.
    add = np.where(zero, 0.5, 0.0)
    return k1 + add, n1 + 2 * add, k2 + add, n2 + 2 * add


def katz_ratio(k1: ArrayLike, n1: ArrayLike, k2: ArrayLike, n2: ArrayLike, *,
               confidence: float = 0.95) -> TwoSampleEstimate:
    """``p1 / p2`` with the log interval of Katz et al. (1978).

    Zero successes in either sample: Haldane-Anscombe correction for the interval (see
    the module docstring); the estimate is NaN when ``k2 == 0`` (infinite or undefined),
    and then so is the upper bound. (Zero failures need no correction for the ratio.)
    """
    k1, n1, k2, n2 = _floats(k1, n1, k2, n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = np.where(k2 > 0, (k1 / n1) / (k2 / n2), np.nan)
        c1, m1, c2, m2 = _haldane(k1, n1, k2, n2, (k1 == 0) | (k2 == 0))
        log_ratio = np.log((c1 / m1) / (c2 / m2))
        half_width = _z(confidence) * np.sqrt(1 / c1 - 1 / m1 + 1 / c2 - 1 / m2)
        low = np.where(k1 == 0, 0.0, np.exp(log_ratio - half_width))
        high = np.where(k2 == 0, np.nan, np.exp(log_ratio + half_width))
    return TwoSampleEstimate(estimate, low, high, "log (Katz et al. 1978)")


def odds_ratio(k1: ArrayLike, n1: ArrayLike, k2: ArrayLike, n2: ArrayLike, *,
               confidence: float = 0.95) -> TwoSampleEstimate:
    """Odds ratio ``[p1 / (1 - p1)] / [p2 / (1 - p2)]`` with Woolf's logit interval.

    Zero cells: Haldane-Anscombe correction for the interval; the estimate is 0 when
    ``k1 == 0`` or ``k2 == n2`` (and the other two cells are non-zero), NaN when it is
    infinite or 0/0, with the upper bound NaN then.
    """
    k1, n1, k2, n2 = _floats(k1, n1, k2, n2)
    numerator = k1 * (n2 - k2)
    denominator = (n1 - k1) * k2
    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = np.where(denominator > 0, numerator / denominator, np.nan)
        c1, m1, c2, m2 = _haldane(k1, n1, k2, n2, (k1 == 0) | (k1 == n1) | (k2 == 0) | (k2 == n2))
        log_odds_ratio = np.log(c1 * (m2 - c2) / ((m1 - c1) * c2))
        half_width = _z(confidence) * np.sqrt(1 / c1 + 1 / (m1 - c1) + 1 / c2 + 1 / (m2 - c2))
        low = np.where((numerator == 0) & (denominator > 0), 0.0, np.exp(log_odds_ratio - half_width))
        high = np.where(denominator == 0, np.nan, np.exp(log_odds_ratio + half_width))
    return TwoSampleEstimate(estimate, low, high, "logit (Woolf 1955)")


def minimum_detectable_difference(n1: ArrayLike, n2: ArrayLike, reference_rate: ArrayLike, *,
                                  alpha: float = 0.05, power: float = 0.8,
                                  increase: bool = True) -> FloatArray:
    """Smallest true ``|p1 - p2|`` a two-sided two-proportion z test detects with ``power``.

    Group 2 (``n2`` images) has rate ``reference_rate``; group 1 (``n1``) has rate
    ``p1 = p2 + d`` (``increase``) or ``p2 - d``. Solves the normal-approximation power
    equation (Fleiss, Levin & Paik 2003, eq. 4.14 without continuity correction)
    ``d = z_{1-alpha/2} sqrt(pbar qbar (1/n1 + 1/n2)) + z_power sqrt(p1 q1 / n1 + p2 q2 / n2)``
    by fixed-point iteration from the p = 1/2 solution; capped so that ``p1`` stays in [0, 1]. NaN where
    ``n1`` or ``n2`` is 0.
    """
    n1_arr, n2_arr, p2 = _floats(n1, n2, reference_rate)
    z_alpha, z_power = NormalDist().inv_cdf(1 - alpha / 2), NormalDist().inv_cdf(power)
    sign = 1.0 if increase else -1.0
    room = (1.0 - p2) if increase else p2
    with np.errstate(divide="ignore", invalid="ignore"):
        # Start from the worst-case-variance solution (p = 1/2) and iterate down: starting
        # at 0 would stall at the trivial fixed point when the reference rate is 0 or 1.
        difference = np.minimum(room, (z_alpha + z_power) * np.sqrt(0.25 * (1 / n1_arr + 1 / n2_arr)))
        for _ in range(200):
            p1 = np.clip(p2 + sign * difference, 0.0, 1.0)
            pooled = (n1_arr * p1 + n2_arr * p2) / (n1_arr + n2_arr)
            updated = (z_alpha * np.sqrt(pooled * (1 - pooled) * (1 / n1_arr + 1 / n2_arr))
                       + z_power * np.sqrt(p1 * (1 - p1) / n1_arr + p2 * (1 - p2) / n2_arr))
            updated = np.minimum(updated, room)
            if np.allclose(updated, difference, rtol=0, atol=1e-12, equal_nan=True):
                difference = updated
                break
            difference = updated
    return np.where((n1_arr > 0) & (n2_arr > 0), difference, np.nan)


# --- spread of the rates across groups -----------------------------------------------------


@dataclass(frozen=True)
class Disparity:
    """Spread of the rates across groups with ``n >= min_n``.

    ``gap = max - min``; ``ratio = min / max`` (``None`` when max is 0). All but
    ``groups_compared`` are ``None`` when fewer than two groups qualify. Ties go to
    the group listed first.
    """

    gap: float | None
    ratio: float | None
    max_group: str | None
    min_group: str | None
    groups_compared: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def disparity(counts: GroupCounts, *, min_n: int) -> Disparity:
    """Disparity measures over the non-small groups of ``counts``."""
    qualifies = counts.n >= min_n
    compared = int(qualifies.sum())
    if compared < 2:
        return Disparity(gap=None, ratio=None, max_group=None, min_group=None, groups_compared=compared)
    indices = np.flatnonzero(qualifies)
    rates = counts.successes[indices] / counts.n[indices]
    highest, lowest = indices[int(np.argmax(rates))], indices[int(np.argmin(rates))]
    max_rate, min_rate = float(rates.max()), float(rates.min())
    return Disparity(gap=max_rate - min_rate, ratio=(min_rate / max_rate) if max_rate > 0 else None,
                     max_group=counts.labels[highest], min_group=counts.labels[lowest],
                     groups_compared=compared)


def gap(counts: GroupCounts, *, min_n: int) -> float | None:
    """Largest minus smallest rate among groups with ``n >= min_n`` (see :func:`disparity`)."""
    return disparity(counts, min_n=min_n).gap


def ratio(counts: GroupCounts, *, min_n: int) -> float | None:
    """Smallest over largest rate among groups with ``n >= min_n`` (see :func:`disparity`)."""
    return disparity(counts, min_n=min_n).ratio
