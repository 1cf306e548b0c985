"""Paired comparisons: the same images under two conditions (taxonomy variants, model versions).

A sweep or a regression check scores the same images twice; the two rates are then
not independent, and the right tools are McNemar's test on the discordant pairs and
an interval for the paired difference:

- :func:`~clipaudit.stats.hypothesis_tests.mcnemar_exact` (McNemar 1947, exact binomial form);
- :func:`paired_difference`: ``p1 - p2`` with Newcombe's (1998b, Statistics in
  Medicine 17:2635-2650) method 10, a hybrid score interval for paired proportions
  built from the two Wilson intervals and a (continuity-corrected) phi coefficient.

Zero-count policy: ``n == 0`` is an error (there is nothing to compare); a phi
coefficient with a zero margin in its denominator is taken as 0, as Newcombe does.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from clipaudit.errors import ClipauditError
from clipaudit.stats.hypothesis_tests import McNemarTest, mcnemar_exact
from clipaudit.stats.intervals import validate_confidence, wilson_interval


@dataclass(frozen=True)
class PairedDifference:
    """``p1 - p2`` on paired data with its interval and the exact McNemar test.

    ``both``/``first_only``/``second_only``/``neither`` are the 2 x 2 pair counts
    (``a``, ``b``, ``c``, ``d`` in Newcombe's notation).
    """

    n: int
    both: int
    first_only: int
    second_only: int
    neither: int
    rate_first: float
    rate_second: float
    difference: float
    ci_low: float
    ci_high: float
    confidence: float
    method: str
    test: McNemarTest

    def to_dict(self) -> dict[str, object]:
        return {"n": self.n, "both": self.both, "first_only": self.first_only,
                "second_only": self.second_only, "neither": self.neither,
                "rate_first": self.rate_first, "rate_second": self.rate_second,
                "difference": self.difference, "ci_low": self.ci_low, "ci_high": self.ci_high,
                "confidence": self.confidence, "method": self.method,
                "test": {"name": self.test.name, "statistic": self.test.statistic,
                         "p_value": self.test.p_value}}


def _count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ClipauditError(f"paired_difference: {name} must be a non-negative integer count, got {value!r}")
    return int(value)


def paired_difference(both: int, first_only: int, second_only: int, neither: int, *,
                      confidence: float = 0.95) -> PairedDifference:
    """Paired difference of proportions from the 2 x 2 table of pairs (Newcombe 1998b, method 10).

    With ``a = both``, ``b = first_only``, ``c = second_only``, ``d = neither``, ``n`` their sum:
    ``p1 = (a + b) / n``, ``p2 = (a + c) / n``, ``D = (b - c) / n``; Wilson intervals
    ``(l1, u1)``, ``(l2, u2)`` for ``p1`` and ``p2``; ``phi = max(ad - bc - n/2, 0) / sqrt(...)``
    when ``ad > bc``, else ``(ad - bc) / sqrt(...)`` (0 when a margin is 0); then
    ``low = D - sqrt((p1 - l1)^2 - 2 phi (p1 - l1)(u2 - p2) + (u2 - p2)^2)`` and
    ``high = D + sqrt((u1 - p1)^2 - 2 phi (u1 - p1)(p2 - l2) + (p2 - l2)^2)``.
    The exact McNemar test of ``b`` against ``c`` comes with it.
    """
    a, b, c, d = (_count(name, value) for name, value in
                  (("both", both), ("first_only", first_only), ("second_only", second_only), ("neither", neither)))
    confidence = validate_confidence(confidence)
    n = a + b + c + d
    if n == 0:
        raise ClipauditError("paired_difference: no pairs (all four counts are 0)")
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = (float(x) for x in wilson_interval(np.float64(a + b), np.float64(n), confidence))
    l2, u2 = (float(x) for x in wilson_interval(np.float64(a + c), np.float64(n), confidence))
    margins = float(a + b) * float(c + d) * float(a + c) * float(b + d)
    cross = float(a) * d - float(b) * c
    if margins == 0:
        phi = 0.0
    elif cross > 0:
        phi = max(cross - n / 2.0, 0.0) / np.sqrt(margins)
    else:
        phi = cross / np.sqrt(margins)
    difference = p1 - p2
    delta = np.sqrt(max((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2, 0.0))
    epsilon = np.sqrt(max((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2, 0.0))
    return PairedDifference(n=n, both=a, first_only=b, second_only=c, neither=d, rate_first=p1, rate_second=p2,
                            difference=difference, ci_low=float(max(-1.0, difference - delta)),
                            ci_high=float(min(1.0, difference + epsilon)), confidence=confidence,
                            method="Newcombe paired hybrid score (Newcombe 1998b, method 10)",
                            test=mcnemar_exact(b, c))


def paired_difference_from_outcomes(first: ArrayLike, second: ArrayLike, *,
                                    confidence: float = 0.95) -> PairedDifference:
    """:func:`paired_difference` from two boolean outcome arrays over the same images, in the same order."""
    first_arr = np.asarray(first, dtype=bool).ravel()
    second_arr = np.asarray(second, dtype=bool).ravel()
    if first_arr.shape != second_arr.shape:
        raise ClipauditError(f"paired outcomes differ in length: {first_arr.size} and {second_arr.size}")
    return paired_difference(int(np.count_nonzero(first_arr & second_arr)),
                             int(np.count_nonzero(first_arr & ~second_arr)),
                             int(np.count_nonzero(~first_arr & second_arr)),
                             int(np.count_nonzero(~first_arr & ~second_arr)), confidence=confidence)
