"""Hypothesis tests: omnibus across groups, pairwise, trend, and paired (McNemar).

Omnibus tests of independence between group and outcome on a 2 x k table:

The table has one column per group: successes and failures. The test asks
whether the success rate is the same in every group.

- Pearson's chi-square test (Pearson 1900), via ``scipy.stats.chi2_contingency``
  without Yates' correction, when every expected count is at least 5.
- Otherwise a Monte-Carlo permutation test of the same statistic (Davison &
  Hinkley 1997, section 4.2): group labels are permuted with the margins fixed,
  which for counts is a multivariate hypergeometric draw of the successes over
  the groups, ``p = (1 + #{stat >= observed}) / (1 + B)``.

Untestable-table policy: with fewer than two groups, or when every image has the
same outcome (all successes or all failures), there is no test; :func:`omnibus_test`
returns ``None`` and :func:`untestable_reason` says why. Such tables are not part
of the multiple-testing family (they can never reject).

Pairwise (one group against a reference sample, independent samples):
:func:`pairwise_test` uses Fisher's exact test (Fisher 1922; two-sided, summing the
tables no more likely than the observed one, as ``scipy.stats.fisher_exact``) when any
expected count of the 2 x 2 table is below 5, else the pooled two-proportion z test
(Agresti 2013, section 3.1; equal to Pearson's chi-square on the 2 x 2 table).

Trend across ordered groups (age bins): :func:`cochran_armitage_test` (Cochran 1954,
Armitage 1955), asymptotic or Monte-Carlo permutation when expected counts are small.

Paired (the same images under two conditions): :func:`mcnemar_exact` (McNemar 1947,
exact binomial form).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import binom, chi2_contingency, fisher_exact, norm

from clipaudit.errors import ClipauditError

CHI_SQUARE = "chi-square"
PERMUTATION_CHI_SQUARE = "permutation chi-square"
FISHER_EXACT = "fisher exact"
TWO_PROPORTION_Z = "two-proportion z"
TREND = "cochran-armitage trend"
PERMUTATION_TREND = "permutation cochran-armitage trend"
MCNEMAR_EXACT = "mcnemar exact"
MIN_EXPECTED_COUNT = 5.0
# Resampled statistics equal to the observed one up to rounding must count as ">=".
_RELATIVE_TOLERANCE = 1e-10


@dataclass(frozen=True)
class OmnibusTest:
    """One test of equal rates across groups.

    ``df`` is the chi-square degrees of freedom (k - 1), also recorded for the
    permutation test as the reference distribution it replaces; ``resamples`` is
    ``None`` for the asymptotic test.
    """

    name: str
    statistic: float
    df: int
    p_value: float
    groups_tested: int
    resamples: int | None = None


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


def chi_square_statistic(successes: NDArray[np.int64] | NDArray[np.float64], n: NDArray[np.int64],
                         total_successes: int) -> NDArray[np.float64]:
    """Pearson's X^2 for 2 x k tables, vectorised over leading axes of ``successes``.

    With ``E_j = n_j K / N`` the failure cell deviates by the negative of the
    success cell, so ``X^2 = sum_j (x_j - E_j)^2 N^2 / (n_j K (N - K))``.
    Assumes ``0 < K < N``.
    """
    total = float(n.sum())
    expected = n * (total_successes / total)
    weights = total * total / (n * float(total_successes) * (total - total_successes))
    deviations = np.asarray(successes, dtype=np.float64) - expected
    return np.sum(deviations * deviations * weights, axis=-1)


def chi_square_test(successes: ArrayLike, n: ArrayLike) -> OmnibusTest:
    """Pearson's chi-square test of independence (Pearson 1900), no Yates correction.

    Raises :class:`ClipauditError` on an untestable table (see :func:`untestable_reason`).
    """
    successes_arr, n_arr = _as_table(successes, n)
    reason = untestable_reason(successes_arr, n_arr)
    if reason is not None:
        raise ClipauditError(reason)
    table = np.vstack([successes_arr, n_arr - successes_arr])
    statistic, p_value, df, _ = chi2_contingency(table, correction=False)
    return OmnibusTest(name=CHI_SQUARE, statistic=float(statistic), df=int(df),
                       p_value=float(p_value), groups_tested=int(successes_arr.size))


def permutation_chi_square_test(successes: ArrayLike, n: ArrayLike, *, resamples: int,
                                rng: np.random.Generator, batch_size: int = 2_000) -> OmnibusTest:
    """Monte-Carlo permutation test of Pearson's X^2 (Davison & Hinkley 1997).

    Permuting group labels with fixed margins makes the successes per group a
    multivariate hypergeometric draw; ``resamples`` draws are made in batches of
    ``batch_size`` and ``p = (1 + #{X^2_b >= X^2_obs}) / (1 + resamples)``, which is
    never 0 and is valid for any number of resamples. Deterministic for a given ``rng`` state.
    """
    successes_arr, n_arr = _as_table(successes, n)
    reason = untestable_reason(successes_arr, n_arr)
    if reason is not None:
        raise ClipauditError(reason)
    if isinstance(resamples, bool) or not isinstance(resamples, (int, np.integer)) or resamples < 1:
        raise ClipauditError(f"resamples must be a positive integer, got {resamples!r}")
    total_successes = int(successes_arr.sum())
    observed = float(chi_square_statistic(successes_arr, n_arr, total_successes))
    threshold = observed * (1.0 - _RELATIVE_TOLERANCE)
    at_least_as_extreme = 0
    remaining = int(resamples)
    while remaining > 0:
        size = min(batch_size, remaining)
        draws = rng.multivariate_hypergeometric(n_arr, total_successes, size=size, method="marginals")
        at_least_as_extreme += int(np.count_nonzero(
            chi_square_statistic(draws, n_arr, total_successes) >= threshold))
        remaining -= size
    p_value = (1.0 + at_least_as_extreme) / (1.0 + resamples)
    return OmnibusTest(name=PERMUTATION_CHI_SQUARE, statistic=observed, df=int(successes_arr.size - 1),
                       p_value=float(p_value), groups_tested=int(successes_arr.size),
                       resamples=int(resamples))


def omnibus_test(successes: ArrayLike, n: ArrayLike, *, resamples: int,
                 rng: np.random.Generator) -> OmnibusTest | None:
    """Chi-square test when every expected count is >= 5, else the permutation test.

    Returns ``None`` for an untestable table (fewer than two groups, or one outcome only).
    """
    successes_arr, n_arr = _as_table(successes, n)
    if untestable_reason(successes_arr, n_arr) is not None:
        return None
    expected = expected_successes(successes_arr, n_arr)
    if min(float(expected.min()), float((n_arr - expected).min())) >= MIN_EXPECTED_COUNT:
        return chi_square_test(successes_arr, n_arr)
    return permutation_chi_square_test(successes_arr, n_arr, resamples=resamples, rng=rng)


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


def fisher_exact_test(k1: int, n1: int, k2: int, n2: int) -> PairwiseTest:
    """Fisher's (1922) exact test of the 2 x 2 table, two-sided, via ``scipy.stats.fisher_exact``."""
    result = fisher_exact([[k1, n1 - k1], [k2, n2 - k2]], alternative="two-sided")
    return PairwiseTest(FISHER_EXACT, None, float(min(1.0, result.pvalue)))


def pairwise_test(k1: int, n1: int, k2: int, n2: int) -> PairwiseTest | None:
    """Fisher's exact test when any expected count is below 5, else the z test.

    Returns ``None`` for an untestable pair (see :func:`pairwise_untestable`).
    """
    k1, n1, k2, n2 = int(k1), int(n1), int(k2), int(n2)
    if k1 < 0 or k2 < 0 or k1 > n1 or k2 > n2:
        raise ClipauditError(f"pairwise counts must satisfy 0 <= k <= n, got {k1}/{n1} and {k2}/{n2}")
    if pairwise_untestable(k1, n1, k2, n2) is not None:
        return None
    total, successes = n1 + n2, k1 + k2
    expected = np.outer([n1, n2], [successes, total - successes]) / total
    if float(expected.min()) < MIN_EXPECTED_COUNT:
        return fisher_exact_test(k1, n1, k2, n2)
    return two_proportion_z_test(k1, n1, k2, n2)


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
    resamples: int | None = None


def _trend_parts(successes: NDArray[np.int64] | NDArray[np.float64], n: NDArray[np.int64],
                 scores: NDArray[np.float64]) -> NDArray[np.float64]:
    # Cochran-Armitage T = sum_i t_i (x_i - n_i K / N), vectorised over leading axes.
    expected = n * (float(np.sum(successes, axis=-1).flat[0]) / float(n.sum()))
    return np.sum(scores * (np.asarray(successes, dtype=np.float64) - expected), axis=-1)


def cochran_armitage_test(successes: ArrayLike, n: ArrayLike, scores: ArrayLike | None = None, *,
                          resamples: int | None = None,
                          rng: np.random.Generator | None = None) -> TrendTest:
    """Cochran (1954) - Armitage (1955) test for trend in proportions, two-sided.

    With scores ``t_i`` (default ``0, 1, ..., k-1``), ``T = sum t_i (x_i - n_i p)``,
    ``Var(T) = p (1 - p) [sum n_i t_i^2 - (sum n_i t_i)^2 / N]`` and ``z = T / sqrt(Var)``
    (Agresti 2013, section 3.4.6, whose ``N/(N-1)`` multiple is the Mantel
    linear-by-linear statistic). With ``resamples``, the p-value is instead a
    Monte-Carlo permutation p-value of ``|T|`` with fixed margins,
    ``(1 + #{|T_b| >= |T|}) / (1 + B)``. Raises on an untestable table.
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
    observed = float(_trend_parts(successes_arr, n_arr, score_arr))
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
    if resamples is None:
        return TrendTest(TREND, float(z), float(2 * norm.sf(abs(z))), slope, effect, int(successes_arr.size))
    if rng is None or isinstance(resamples, bool) or not isinstance(resamples, (int, np.integer)) or resamples < 1:
        raise ClipauditError(f"resamples must be a positive integer with an rng, got {resamples!r}")
    threshold = abs(observed) * (1.0 - _RELATIVE_TOLERANCE)
    at_least_as_extreme, remaining = 0, int(resamples)
    while remaining > 0:
        size = min(2_000, remaining)
        draws = rng.multivariate_hypergeometric(n_arr, total_successes, size=size, method="marginals")
        deviations = (draws - n_arr * pooled) @ score_arr
        at_least_as_extreme += int(np.count_nonzero(np.abs(deviations) >= threshold))
        remaining -= size
    p_value = (1.0 + at_least_as_extreme) / (1.0 + resamples)
    return TrendTest(PERMUTATION_TREND, float(z), float(p_value), slope, effect, int(successes_arr.size),
                     int(resamples))


def trend_test(successes: ArrayLike, n: ArrayLike, scores: ArrayLike | None = None, *, resamples: int,
               rng: np.random.Generator) -> TrendTest | None:
    """Asymptotic Cochran-Armitage test when every expected count is >= 5, else its permutation form.

    ``None`` for an untestable table (fewer than two groups, or one outcome only).
    """
    successes_arr, n_arr = _as_table(successes, n)
    if untestable_reason(successes_arr, n_arr) is not None:
        return None
    expected = expected_successes(successes_arr, n_arr)
    if min(float(expected.min()), float((n_arr - expected).min())) >= MIN_EXPECTED_COUNT:
        return cochran_armitage_test(successes_arr, n_arr, scores)
    return cochran_armitage_test(successes_arr, n_arr, scores, resamples=resamples, rng=rng)


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
    p_value = 1.0 if b + c == 0 else min(1.0, 2.0 * float(binom.cdf(smaller, b + c, 0.5)))
    return McNemarTest(MCNEMAR_EXACT, b, c, float(smaller), p_value)
