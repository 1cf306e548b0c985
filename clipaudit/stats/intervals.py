"""Confidence intervals for a binomial proportion, vectorised over numpy arrays.

Three methods, all in :data:`INTERVAL_METHODS` with the same signature:

- ``"wilson"`` (default): the score interval of Wilson (1927);
- ``"clopper-pearson"``: the "exact" interval of Clopper & Pearson (1934), from beta
  quantiles; never below the nominal coverage, wider than the others;
- ``"jeffreys"``: the equal-tailed Bayesian interval under the Jeffreys Beta(1/2, 1/2)
  prior, as recommended by Brown, Cai & DasGupta (2001, Statistical Science 16:101-133),
  with their boundary modification (lower bound 0 when ``k = 0``, upper bound 1 when
  ``k = n``).

Zero-count policy: ``n == 0`` has no estimate, so both bounds are NaN. The
statistics engine never asks for one: a group with no images is listed under
``empty_groups`` instead. ``successes == 0`` and ``successes == n`` are ordinary
inputs with bounds of exactly 0.0 and 1.0 respectively.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from statistics import NormalDist

# scipy.special, not scipy.stats: the same functions without a second of imports on every run.
from scipy.special import betainccinv, betaincinv

from clipaudit.errors import ClipauditError

IntervalMethod = Literal["wilson", "clopper-pearson", "jeffreys"]


@dataclass(frozen=True)
class ConfidenceInterval:
    """Bounds of one or many proportion intervals.

    ``low`` and ``high`` are always float64 arrays (0-d for scalar inputs), so the
    type never depends on the shape of the input; ``float(ci.low)`` gives a scalar.
    """

    low: NDArray[np.float64]
    high: NDArray[np.float64]
    method: str
    confidence: float


def validate_confidence(confidence: float) -> float:
    """Return ``confidence`` as a float, or raise if it is not strictly inside (0, 1)."""
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float, np.floating)):
        raise ClipauditError(f"confidence must be a number strictly between 0 and 1, got {confidence!r}")
    value = float(confidence)
    if not 0.0 < value < 1.0:
        raise ClipauditError(f"confidence must be strictly between 0 and 1 (e.g. 0.95), got {confidence!r}")
    return value


def _as_counts(successes: ArrayLike, n: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    successes_arr = np.asarray(successes, dtype=np.float64)
    n_arr = np.asarray(n, dtype=np.float64)
    successes_arr, n_arr = np.broadcast_arrays(successes_arr, n_arr)
    if np.any(n_arr < 0) or np.any(successes_arr < 0) or np.any(successes_arr > n_arr):
        raise ClipauditError("interval counts must satisfy 0 <= successes <= n, "
                             f"got successes={successes!r}, n={n!r}")
    return successes_arr, n_arr


def wilson_interval(successes: NDArray[np.float64], n: NDArray[np.float64],
                    confidence: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Wilson score interval (Wilson 1927, JASA 22:209-212), without continuity correction.

    Inverts the score test of ``p = p0``: with ``z`` the two-sided normal quantile,
    centre ``(k + z^2/2) / (n + z^2)`` and half-width
    ``z / (n + z^2) * sqrt(k (n - k) / n + z^2 / 4)``. Assumes validated counts;
    ``n == 0`` gives NaN bounds.
    """
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    z2 = z * z
    with np.errstate(divide="ignore", invalid="ignore"):
        denominator = n + z2
        centre = (successes + z2 / 2.0) / denominator
        half_width = z / denominator * np.sqrt(successes * (n - successes) / n + z2 / 4.0)
        low = np.where(successes == 0, 0.0, centre - half_width)
        high = np.where(successes == n, 1.0, centre + half_width)
    empty = n == 0
    low = np.where(empty, np.nan, np.clip(low, 0.0, 1.0))
    high = np.where(empty, np.nan, np.clip(high, 0.0, 1.0))
    return low, high


def clopper_pearson_interval(successes: NDArray[np.float64], n: NDArray[np.float64],
                             confidence: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Clopper & Pearson (1934, Biometrika 26:404-413) interval from beta quantiles.

    ``low = Beta(k, n - k + 1).ppf(a/2)``, ``high = Beta(k + 1, n - k).ppf(1 - a/2)``
    with ``a = 1 - confidence``; 0 when ``k = 0`` and 1 when ``k = n``. Assumes
    validated counts; ``n == 0`` gives NaN bounds.
    """
    tail = (1.0 - confidence) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        low = np.where(successes == 0, 0.0, betaincinv(successes, n - successes + 1.0, tail))
        high = np.where(successes == n, 1.0, betainccinv(successes + 1.0, n - successes, tail))
    empty = n == 0
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def jeffreys_interval(successes: NDArray[np.float64], n: NDArray[np.float64],
                      confidence: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Jeffreys interval (Brown, Cai & DasGupta 2001): Beta(k + 1/2, n - k + 1/2) quantiles.

    Equal tails of the posterior under the Jeffreys prior; following Brown, Cai &
    DasGupta the lower bound is 0 when ``k = 0`` and the upper bound 1 when ``k = n``
    (statsmodels' ``method="jeffreys"`` omits that boundary modification, so the two
    agree for ``0 < k < n``). ``n == 0`` gives NaN bounds.
    """
    tail = (1.0 - confidence) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        low = np.where(successes == 0, 0.0, betaincinv(successes + 0.5, n - successes + 0.5, tail))
        high = np.where(successes == n, 1.0, betainccinv(successes + 0.5, n - successes + 0.5, tail))
    empty = n == 0
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


INTERVAL_METHODS: dict[str, Callable[[NDArray[np.float64], NDArray[np.float64], float],
                                     tuple[NDArray[np.float64], NDArray[np.float64]]]] = {
    "wilson": wilson_interval,
    "clopper-pearson": clopper_pearson_interval,
    "jeffreys": jeffreys_interval,
}

#: How each method is named in results.json and the report.
INTERVAL_LABELS: dict[str, str] = {
    "wilson": "Wilson score (Wilson 1927)",
    "clopper-pearson": "Clopper-Pearson exact (Clopper & Pearson 1934)",
    "jeffreys": "Jeffreys (Brown, Cai & DasGupta 2001)",
}


def interval(successes: ArrayLike, n: ArrayLike, *, method: IntervalMethod = "wilson",
             confidence: float = 0.95) -> ConfidenceInterval:
    """Two-sided confidence interval for ``successes / n``, element-wise.

    ``successes`` and ``n`` broadcast against each other. ``method`` is one of
    :data:`INTERVAL_METHODS` (``"wilson"``: Wilson 1927;
    ``"clopper-pearson"``: Clopper & Pearson 1934; ``"jeffreys"``: Brown, Cai & DasGupta 2001). Counts with ``n == 0``
    give NaN bounds (no estimate); invalid counts or options raise
    :class:`~clipaudit.errors.ClipauditError`.
    """
    if method not in INTERVAL_METHODS:
        raise ClipauditError(f"unknown interval method {method!r}; known: {sorted(INTERVAL_METHODS)}")
    confidence = validate_confidence(confidence)
    successes_arr, n_arr = _as_counts(successes, n)
    low, high = INTERVAL_METHODS[method](successes_arr, n_arr, confidence)
    return ConfidenceInterval(low=np.asarray(low, dtype=np.float64), high=np.asarray(high, dtype=np.float64),
                              method=method, confidence=confidence)


def rate_entry(successes: int, n: int, *, method: IntervalMethod, confidence: float) -> dict[str, Any]:
    """A rate as results.json records it: n, successes, value and interval (all None but the counts when n is 0)."""
    if n == 0:
        return {"n": 0, "successes": 0, "value": None, "ci_low": None, "ci_high": None}
    bounds = interval(successes, n, method=method, confidence=confidence)
    return {"n": int(n), "successes": int(successes), "value": successes / n,
            "ci_low": float(bounds.low), "ci_high": float(bounds.high)}
