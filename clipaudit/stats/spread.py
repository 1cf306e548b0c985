"""The spread of the rates across groups (max - min, min / max) with simultaneous intervals.

The gap ``max_i p_i - min_j p_j`` is the largest of the pairwise differences ``p_i - p_j``. If
intervals for *all* ``k (k - 1) / 2`` pairwise differences cover together with probability at
least ``confidence``, the gap lies, with at least that probability, between the largest lower
bound and the largest upper bound over the ordered pairs. The pairwise intervals are taken at
the Bonferroni level ``1 - (1 - confidence) / (k (k - 1) / 2)``
(Dunn 1961), so the coverage holds whether the groups are equal or not; it is conservative (at
least, not exactly, ``confidence``): a max - min has no interval of exact coverage in general,
and a percentile bootstrap of it never covers a gap of 0 (its resampled gaps are all positive).
At those extreme levels the pairwise intervals are MOVER-Jeffreys
(:func:`~clipaudit.stats.disparities.jeffreys_mover_difference`), not Newcombe's Wilson-based
ones, which miss far too often for rare outcomes in small groups.

The ratio ``min / max`` is bounded the same way from Jeffreys intervals of every group's rate at
the level ``1 - (1 - confidence) / k``: ``min_i low_i / max_i high_i`` to ``min_i high_i / max_i low_i``.
``four_fifths`` (the "four-fifths rule") is decided only when that interval is on one side of
0.8: true when it lies wholly below, false when wholly at or above, ``None`` (undecided) otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from clipaudit.stats.disparities import jeffreys_mover_difference
from clipaudit.stats.intervals import jeffreys_interval

FOUR_FIFTHS = 0.8
SPREAD_METHOD = ("simultaneous: MOVER-Jeffreys intervals (Laud 2017) of all pairwise differences (gap) and "
                 "Jeffreys intervals of every rate (ratio), Bonferroni-adjusted (Dunn 1961); coverage at least "
                 "the stated level")


@dataclass(frozen=True)
class SpreadInterval:
    """Simultaneous bounds for max - min and min / max; ``four_fifths`` is ``None`` when undecided."""

    gap_low: float
    gap_high: float
    ratio_low: float
    ratio_high: float
    four_fifths: bool | None
    pairs: int


def spread_interval(successes: ArrayLike, n: ArrayLike, *, confidence: float) -> SpreadInterval:
    """Simultaneous intervals for the gap and the ratio of ``k >= 2`` groups (module docstring)."""
    successes_arr = np.asarray(successes, dtype=np.float64).ravel()
    n_arr = np.asarray(n, dtype=np.float64).ravel()
    groups = successes_arr.size
    pairs = groups * (groups - 1) // 2
    first, second = np.triu_indices(groups, k=1)
    differences = jeffreys_mover_difference(successes_arr[first], n_arr[first], successes_arr[second],
                                      n_arr[second], confidence=1.0 - (1.0 - confidence) / pairs)
    # Ordered pairs: (i, j) has bounds (low, high), (j, i) has (-high, -low); the pair (i, i) is 0.
    gap_low = max(0.0, float(np.max(differences.low)), float(np.max(-differences.high)))
    gap_high = min(1.0, max(float(np.max(differences.high)), float(np.max(-differences.low))))
    low, high = jeffreys_interval(successes_arr, n_arr, 1.0 - (1.0 - confidence) / groups)
    # A Jeffreys upper bound is always positive; a largest lower bound of 0 leaves the ratio up to 1.
    ratio_low = float(low.min() / high.max())
    ratio_high = 1.0 if float(low.max()) == 0 else min(1.0, float(high.min() / low.max()))
    four_fifths = True if ratio_high < FOUR_FIFTHS else (False if ratio_low >= FOUR_FIFTHS else None)
    return SpreadInterval(gap_low=gap_low, gap_high=gap_high, ratio_low=ratio_low, ratio_high=ratio_high,
                          four_fifths=four_fifths, pairs=pairs)
