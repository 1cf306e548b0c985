"""Hypothesis tests: omnibus across groups, pairwise, trend, and paired (McNemar).

Every test the audit runs is exact or asymptotic where the asymptotics hold at the level it is
used; none is Monte Carlo, so no verdict depends on ``--seed`` and every p-value can reach the
tiny levels a family of a thousand tests needs (Holm's first step is alpha / m).

- Pairwise (one group against a reference sample, independent samples):
  :func:`pairwise_test` is Fisher's exact test (Fisher 1922) with the two-sided p-value taken as
  twice the smaller one-sided p-value (the "doubling" rule; Yates 1984, Agresti 1992 section 2.1).
  The pooled two-proportion z test understates the upper binomial tail of rare outcomes (harm
  rates of a few percent) at the per-test levels of a large family, so false findings pointed
  one way ("worse"): 1.5-8x too many at 0.05/222 and 0.05/1050. The exact test keeps the whole
  test at or below its level, and the doubling rule keeps *each direction* at or below half of
  it (the rule that sums the tables no more likely than the observed one, as
  ``scipy.stats.fisher_exact`` does, can spend almost all of the level on the "worse" side of a
  rare outcome, whose other tail is too short to reach it).
- Omnibus (``k`` groups): :func:`omnibus_test` runs the exact group-vs-rest test of every group
  and combines them by Bonferroni (Dunn 1961): ``p = min(1, k * min_j p_j)`` (``k = 2``: the two
  tests are the same test, ``p = p_1``). Valid under any dependence, exact, deterministic.
- Trend across ordered groups (age bins): :func:`cochran_armitage_test` (Cochran 1954,
  Armitage 1955), asymptotic; :func:`trend_test` runs it only when every expected count is at
  least 5 (a linear score combines all the bins, so its normal approximation is much better
  than a single 2 x 2 table's); otherwise no trend test (the omnibus test still covers the slice).
- Paired (the same images under two conditions): :func:`mcnemar_exact` (McNemar 1947,
  exact binomial form).

Untestable-table policy: with fewer than two groups, or when every image has the same outcome
(all successes or all failures), there is no test; :func:`omnibus_test` returns ``None`` and
:func:`untestable_reason` says why. Such tables are not part of the multiple-testing family.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import bdtr, erfc, gammaln  # scipy.stats would add a second of imports

from clipaudit.errors import ClipauditError

EXACT_GROUP_VS_REST = "exact group-vs-rest, Bonferroni"
FISHER_EXACT = "fisher exact"
TWO_PROPORTION_Z = "two-proportion z"
TREND = "cochran-armitage trend"
MCNEMAR_EXACT = "mcnemar exact"
MIN_EXPECTED_COUNT = 5.0


@dataclass(frozen=True)
class OmnibusTest:
    """One test of equal rates across groups.

    ``df`` is ``k - 1``; ``most_significant`` is the position of the group with the smallest
    group-vs-rest p-value.
    """

    name: str
    statistic: float
    df: int
    p_value: float
    groups_tested: int
    most_significant: int | None = None


def _as_table(successes: ArrayLike, n: ArrayLike) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    successes_arr = np.asarray(successes, dtype=np.int64).ravel()
    n_arr = np.asarray(n, dtype=np.int64).ravel()
    if successes_arr.shape != n_arr.shape:
        raise ClipauditError(f"successes and n differ in length: {successes_arr.size} and {n_arr.size}")
    if np.any(n_arr < 1) or np.any(successes_arr < 0) or np.any(successes_arr > n_arr):
        raise ClipauditError("test counts must satisfy 0 <= successes <= n and n >= 1, "
                             f"got successes={successes_arr.tolist()}, n={n_arr.tolist()}")
    return successes_arr, n_arr


def untestable_reason(successes: ArrayLike, n: ArrayLike) -> str | None:
    """Why no test is possible on this table, or ``None`` when one is."""
    successes_arr, n_arr = _as_table(successes, n)
    if successes_arr.size < 2:
        return f"not tested: {successes_arr.size} group(s) large enough, 2 needed"
    total_successes = int(successes_arr.sum())
    if total_successes == 0:
        return "not tested: no successes in any tested group"
    if total_successes == int(n_arr.sum()):
        return "not tested: every image in the tested groups is a success"
    return None


def expected_successes(successes: NDArray[np.int64], n: NDArray[np.int64]) -> NDArray[np.float64]:
    """Expected successes per group under equal rates (assumes a non-empty table)."""
    return n * (successes.sum() / n.sum())


def omnibus_test(successes: ArrayLike, n: ArrayLike) -> OmnibusTest | None:
    """Do all groups have the same rate? Fisher's exact test of each group against the rest,
    Bonferroni-combined over the groups (see the module docstring).

    ``statistic`` is the smallest raw group-vs-rest p-value, ``df`` is ``k - 1``. Returns
    ``None`` for an untestable table (fewer than two groups, or one outcome only).
    """
    successes_arr, n_arr = _as_table(successes, n)
    if untestable_reason(successes_arr, n_arr) is not None:
        return None
    p_values = group_vs_rest_p_values(successes_arr, n_arr)
    lead = int(np.argmin(p_values))
    multiplier = 1 if successes_arr.size == 2 else successes_arr.size
    return OmnibusTest(name=EXACT_GROUP_VS_REST, statistic=float(p_values[lead]), df=int(successes_arr.size - 1),
                       p_value=float(min(1.0, multiplier * p_values[lead])), groups_tested=int(successes_arr.size),
                       most_significant=lead)


def group_vs_rest_p_values(successes: NDArray[np.int64], n: NDArray[np.int64]) -> NDArray[np.float64]:
    """Fisher's exact p-value (:func:`fisher_p_values`) of each group against the rest of the table."""
    return fisher_p_values(successes, n, successes.sum() - successes, n.sum() - n)


# --- pairwise --------------------------------------------------------------------------


@dataclass(frozen=True)
class PairwiseTest:
    """A test of ``p1 == p2`` for two independent samples.

    ``statistic`` is the z statistic for the z test and ``None`` for Fisher's exact
    test (whose p-value needs none).
    """

    name: str
    statistic: float | None
    p_value: float


def pairwise_untestable(k1: int, n1: int, k2: int, n2: int) -> str | None:
    """Why two samples cannot be compared, or ``None`` when they can."""
    if n1 < 1 or n2 < 1:
        return "not tested: an empty sample"
    total = k1 + k2
    if total == 0:
        return "not tested: no successes in either sample"
    if total == n1 + n2:
        return "not tested: every image in both samples is a success"
    return None


def two_proportion_z_test(k1: int, n1: int, k2: int, n2: int) -> PairwiseTest:
    """Pooled two-proportion z test, two-sided (Agresti 2013, eq. 3.3 under H0).

    ``z = (p1 - p2) / sqrt(p (1 - p) (1/n1 + 1/n2))`` with the pooled ``p``;
    ``z^2`` is Pearson's X^2 of the 2 x 2 table. Assumes a testable table.
    """
    pooled = (k1 + k2) / (n1 + n2)
    z = (k1 / n1 - k2 / n2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    # Two-sided normal tail, 2 * sf(|z|) = erfc(|z| / sqrt 2), without scipy's per-call overhead.
    return PairwiseTest(TWO_PROPORTION_Z, float(z), float(math.erfc(abs(z) / math.sqrt(2.0))))


def fisher_p_values(k1: ArrayLike, n1: ArrayLike, k2: ArrayLike, n2: ArrayLike) -> NDArray[np.float64]:
    """Fisher's exact test, two-sided by doubling the smaller one-sided p-value, element-wise.

    Given both margins, ``k1`` is hypergeometric (``n1 + n2`` images, ``k1 + k2`` successes,
    ``n1`` drawn); ``p = min(1, 2 min(P(X >= k1), P(X <= k1)))``: equal to
    ``2 * min`` of ``scipy.stats.fisher_exact`` with ``alternative="greater"`` and ``"less"``.
    Each distinct set of margins is computed once (:func:`_doubled_tails`), so simulations of
    many tables with the same group sizes are fast.
    """
    k1_arr, n1_arr, k2_arr, n2_arr = (np.asarray(value, dtype=np.int64) for value in
                                      np.broadcast_arrays(k1, n1, k2, n2))
    flat = [array.ravel() for array in (k1_arr, n1_arr, k2_arr, n2_arr)]
    p_values = np.empty(flat[0].size, dtype=np.float64)
    margins = np.stack([flat[1], flat[3], flat[0] + flat[2]], axis=1)
    unique, inverse = np.unique(margins, axis=0, return_inverse=True)
    for index, (drawn, others, successes) in enumerate(unique.tolist()):
        where = np.flatnonzero(inverse.ravel() == index)
        lowest, tails = _doubled_tails(drawn, others, successes)
        p_values[where] = tails[flat[0][where] - lowest]
    return p_values.reshape(k1_arr.shape)


@functools.lru_cache(maxsize=4096)
def _doubled_tails(drawn: int, others: int, successes: int) -> tuple[int, NDArray[np.float64]]:
    # The doubled one-sided p-value for every k1 in the support of the hypergeometric distribution
    # (``drawn`` of ``drawn + others`` images, ``successes`` successes); log-pmf through gammaln,
    # tails summed from their far ends so tiny p-values keep their relative precision.
    lowest, highest = max(0, successes - others), min(drawn, successes)
    support = np.arange(lowest, highest + 1, dtype=np.float64)
    log_pmf = (_log_choose(successes, support) + _log_choose(others + drawn - successes, drawn - support)
               - _log_choose(others + drawn, np.float64(drawn)))
    pmf = np.exp(log_pmf - log_pmf.max())
    pmf /= pmf.sum()
    lower = np.cumsum(pmf)
    upper = np.cumsum(pmf[::-1])[::-1]
    tails = np.minimum(1.0, 2.0 * np.minimum(lower, upper))
    tails.setflags(write=False)
    return lowest, tails


def _log_choose(n: float, k: NDArray[np.float64]) -> NDArray[np.float64]:
    return gammaln(n + 1.0) - gammaln(k + 1.0) - gammaln(n - k + 1.0)


def fisher_exact_test(k1: int, n1: int, k2: int, n2: int) -> PairwiseTest:
    """Fisher's (1922) exact test of the 2 x 2 table, two-sided by doubling (:func:`fisher_p_values`)."""
    return PairwiseTest(FISHER_EXACT, None, float(fisher_p_values(k1, n1, k2, n2)))


def pairwise_test(k1: int, n1: int, k2: int, n2: int) -> PairwiseTest | None:
    """Fisher's exact test of two independent samples (see the module docstring for why not the z test).

    Returns ``None`` for an untestable pair (see :func:`pairwise_untestable`).
    """
    k1, n1, k2, n2 = int(k1), int(n1), int(k2), int(n2)
    if k1 < 0 or k2 < 0 or k1 > n1 or k2 > n2:
        raise ClipauditError(f"pairwise counts must satisfy 0 <= k <= n, got {k1}/{n1} and {k2}/{n2}")
    if pairwise_untestable(k1, n1, k2, n2) is not None:
        return None
    return fisher_exact_test(k1, n1, k2, n2)


# --- trend -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TrendTest:
    """Cochran-Armitage test of a linear trend in the rate across ordered groups.

    ``statistic`` is the signed z; ``slope`` the weighted least-squares change in rate
    per unit score; ``effect`` the fitted change from the first to the last tested group
    (``|slope| * (max score - min score)``), on the rate scale.
    """

    name: str
    statistic: float
    p_value: float
    slope: float
    effect: float
    groups_tested: int


def cochran_armitage_test(successes: ArrayLike, n: ArrayLike, scores: ArrayLike | None = None) -> TrendTest:
    """Cochran (1954) - Armitage (1955) test for trend in proportions, two-sided.

    With scores ``t_i`` (default ``0, 1, ..., k-1``), ``T = sum t_i (x_i - n_i p)``,
    ``Var(T) = p (1 - p) [sum n_i t_i^2 - (sum n_i t_i)^2 / N]`` and ``z = T / sqrt(Var)``
    (Agresti 2013, section 3.4.6, whose ``N/(N-1)`` multiple is the Mantel
    linear-by-linear statistic). Raises on an untestable table.
    """
    successes_arr, n_arr = _as_table(successes, n)
    reason = untestable_reason(successes_arr, n_arr)
    if reason is not None:
        raise ClipauditError(reason)
    score_arr = (np.arange(successes_arr.size, dtype=np.float64) if scores is None
                 else np.asarray(scores, dtype=np.float64).ravel())
    if score_arr.shape != successes_arr.shape or np.ptp(score_arr) == 0:
        raise ClipauditError(f"trend scores must be {successes_arr.size} values, not all equal; got {score_arr.tolist()}")
    total, total_successes = float(n_arr.sum()), int(successes_arr.sum())
    pooled = total_successes / total
    observed = float(np.sum(score_arr * (successes_arr - n_arr * pooled)))  # T = sum t_i (x_i - n_i K / N)
    variance = pooled * (1 - pooled) * (float(np.sum(n_arr * score_arr ** 2))
                                        - float(np.sum(n_arr * score_arr)) ** 2 / total)
    z = observed / np.sqrt(variance)
    mean_score = float(np.sum(n_arr * score_arr)) / total
    rates = successes_arr / n_arr
    slope = float(np.sum(n_arr * (score_arr - mean_score) * (rates - pooled))
                  / np.sum(n_arr * (score_arr - mean_score) ** 2))
    # The fitted first-to-last change; with very uneven bin sizes a least-squares line can imply
    # more than the whole rate scale, which no rate can move, so it is capped at 1.
    effect = min(abs(slope) * float(np.ptp(score_arr)), 1.0)
    return TrendTest(TREND, float(z), float(erfc(abs(z) / np.sqrt(2.0))), slope, effect, int(successes_arr.size))


def trend_test(successes: ArrayLike, n: ArrayLike, scores: ArrayLike | None = None) -> TrendTest | None:
    """The asymptotic Cochran-Armitage test when every expected count is >= 5, else ``None``.

    ``None`` too for an untestable table (fewer than two groups, or one outcome only);
    :func:`trend_untestable_reason` says which.
    """
    successes_arr, n_arr = _as_table(successes, n)
    if trend_untestable_reason(successes_arr, n_arr) is not None:
        return None
    return cochran_armitage_test(successes_arr, n_arr, scores)


def trend_untestable_reason(successes: ArrayLike, n: ArrayLike) -> str | None:
    """Why no trend test is run on this table, or ``None`` when one is."""
    successes_arr, n_arr = _as_table(successes, n)
    reason = untestable_reason(successes_arr, n_arr)
    if reason is not None:
        return reason
    expected = expected_successes(successes_arr, n_arr)
    if min(float(expected.min()), float((n_arr - expected).min())) < MIN_EXPECTED_COUNT:
        return (f"trend not tested: an expected count is below {MIN_EXPECTED_COUNT:g}, where the "
                "normal approximation is not trusted (the omnibus test, which is exact, covers the slice)")
    return None


# --- paired ----------------------------------------------------------------------------


@dataclass(frozen=True)
class McNemarTest:
    """Exact McNemar test: ``b`` and ``c`` are the discordant pair counts."""

    name: str
    b: int
    c: int
    statistic: float
    p_value: float


def mcnemar_exact(b: int, c: int) -> McNemarTest:
    """McNemar's (1947) test in its exact form: a two-sided binomial test of ``b`` out of ``b + c``.

    ``b``: pairs with a success under condition 1 only; ``c``: under condition 2 only.
    ``p = min(1, 2 P(Binomial(b + c, 1/2) <= min(b, c)))``; ``p = 1`` when ``b + c = 0``.
    ``statistic`` is ``min(b, c)`` (as statsmodels' ``mcnemar(exact=True)`` reports it).
    """
    for name, value in (("b", b), ("c", c)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ClipauditError(f"mcnemar_exact: {name} must be a non-negative integer count, got {value!r}")
    b, c = int(b), int(c)
    smaller = min(b, c)
    p_value = 1.0 if b + c == 0 else min(1.0, 2.0 * float(bdtr(smaller, b + c, 0.5)))
    return McNemarTest(MCNEMAR_EXACT, b, c, float(smaller), p_value)
