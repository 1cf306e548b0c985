"""Pairwise, trend and paired tests against statsmodels and scipy; Benjamini-Hochberg."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import fisher_exact
from statsmodels.stats.contingency_tables import Table, mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportions_ztest

from clipaudit.errors import ClipauditError
from clipaudit.stats import adjust_p_values, mcnemar_exact, paired_difference, pairwise_test
from clipaudit.stats.hypothesis_tests import (
    cochran_armitage_test,
    fisher_exact_test,
    trend_test,
    trend_untestable_reason,
    two_proportion_z_test,
)
from clipaudit.stats.multiple import benjamini_hochberg
from clipaudit.stats.paired import paired_difference_from_outcomes

TOLERANCE = 1e-9


@pytest.mark.parametrize("size", [1, 2, 5, 50, 400])
def test_benjamini_hochberg_matches_statsmodels(size: int) -> None:
    rng = np.random.default_rng(size + 100)
    p_values = rng.uniform(0, 1, size) ** 3
    p_values[: size // 5] = p_values[0]
    if size > 3:
        p_values[-1], p_values[-2] = 1.0, 0.0
    expected = multipletests(p_values, method="fdr_bh")[1]
    np.testing.assert_allclose(benjamini_hochberg(p_values), expected, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(adjust_p_values(p_values, method="bh"), expected, rtol=0, atol=TOLERANCE)


def test_z_test_matches_statsmodels() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = rng.integers(20, 5000, 2)
        k = rng.binomial(n, rng.uniform(0.05, 0.95))
        if k.sum() in (0, n.sum()):
            continue
        statistic, p_value = proportions_ztest(k, n)
        ours = two_proportion_z_test(int(k[0]), int(n[0]), int(k[1]), int(n[1]))
        assert ours.statistic == pytest.approx(statistic, abs=TOLERANCE)
        assert ours.p_value == pytest.approx(p_value, abs=TOLERANCE)


def test_fisher_matches_scipy_one_sided_doubled_and_is_always_the_pairwise_test() -> None:
    rng = np.random.default_rng(1)
    for _ in range(100):
        n = rng.integers(5, 3000, 2)
        k = rng.binomial(n, rng.uniform(0.0, 0.2))
        table = [[k[0], n[0] - k[0]], [k[1], n[1] - k[1]]]
        expected = 2 * min(fisher_exact(table, alternative="greater").pvalue,
                           fisher_exact(table, alternative="less").pvalue)
        if k.sum() in (0, n.sum()):
            continue
        assert fisher_exact_test(int(k[0]), int(n[0]), int(k[1]), int(n[1])).p_value == pytest.approx(
            min(1.0, expected), abs=TOLERANCE)
    assert pairwise_test(1, 100, 8, 120).name == "fisher exact"
    assert pairwise_test(20, 100, 45, 120).name == "fisher exact"
    assert pairwise_test(0, 100, 0, 120) is None and pairwise_test(100, 100, 120, 120) is None


def test_cochran_armitage_matches_statsmodels_linear_by_linear() -> None:
    rng = np.random.default_rng(2)
    for groups in (3, 5, 9):
        n = rng.integers(40, 400, groups)
        k = rng.binomial(n, np.linspace(0.1, 0.3, groups))
        ours = cochran_armitage_test(k, n)
        table = np.column_stack([k, n - k])
        theirs = Table(table).test_ordinal_association(row_scores=np.arange(groups), col_scores=np.array([1, 0]))
        total = n.sum()
        # Mantel's statistic uses N - 1 where Cochran-Armitage uses N in the variance.
        assert ours.statistic * np.sqrt((total - 1) / total) == pytest.approx(theirs.zscore, abs=TOLERANCE)
        rates = k / n
        slope = np.polyfit(np.arange(groups), rates, 1, w=np.sqrt(n))[0]
        assert ours.slope == pytest.approx(slope, rel=1e-9)
        assert ours.effect == pytest.approx(abs(slope) * (groups - 1), rel=1e-9)


def test_trend_test_runs_only_where_every_expected_count_is_at_least_5() -> None:
    k, n = np.array([20, 25, 31, 40, 44]), np.array([200, 210, 190, 220, 205])
    asymptotic = trend_test(k, n)
    assert asymptotic is not None and asymptotic.name == "cochran-armitage trend" and asymptotic.resamples is None
    assert asymptotic.p_value == cochran_armitage_test(k, n).p_value
    assert trend_test([0, 1, 3, 4], [40, 40, 40, 40]) is None
    assert "expected count is below 5" in (trend_untestable_reason([0, 1, 3, 4], [40, 40, 40, 40]) or "")
    assert trend_untestable_reason(k, n) is None
    permuted = cochran_armitage_test(k, n, resamples=20_000, rng=np.random.default_rng(0))
    assert permuted.name == "permutation cochran-armitage trend"
    assert abs(permuted.p_value - asymptotic.p_value) < 0.01
    with pytest.raises(ClipauditError, match="scores"):
        cochran_armitage_test(k, n, [1, 1, 1, 1, 1])


@pytest.mark.parametrize(("b", "c"), [(0, 0), (0, 5), (3, 11), (25, 25), (40, 12), (1, 200)])
def test_mcnemar_exact_matches_statsmodels(b: int, c: int) -> None:
    theirs = mcnemar(np.array([[50, b], [c, 70]]), exact=True)
    ours = mcnemar_exact(b, c)
    assert ours.p_value == pytest.approx(theirs.pvalue, abs=TOLERANCE)
    assert ours.statistic == theirs.statistic
    with pytest.raises(ClipauditError, match="b must be"):
        mcnemar_exact(-1, 2)


def test_paired_difference_counts_and_interval() -> None:
    result = paired_difference(40, 12, 3, 45)
    assert result.n == 100 and result.difference == pytest.approx(0.09)
    assert result.rate_first == 0.52 and result.rate_second == 0.43
    assert result.ci_low < result.difference < result.ci_high
    assert result.test.p_value == pytest.approx(mcnemar_exact(12, 3).p_value)
    # Positive association between the two conditions narrows the interval (phi > 0) ...
    correlated = paired_difference(40, 12, 3, 45)
    independent_width = paired_difference(23, 29, 20, 28)
    assert correlated.ci_high - correlated.ci_low < independent_width.ci_high - independent_width.ci_low
    same = paired_difference_from_outcomes([True, True, False], [True, True, False])
    assert same.difference == 0 and same.test.p_value == 1.0 and same.ci_low <= 0 <= same.ci_high
    with pytest.raises(ClipauditError, match="no pairs"):
        paired_difference(0, 0, 0, 0)


def test_paired_interval_covers_in_simulation() -> None:
    rng = np.random.default_rng(3)
    probabilities = np.array([0.55, 0.1, 0.05, 0.3])  # true difference 0.05
    covered = 0
    simulations = 2000
    for table in rng.multinomial(200, probabilities, size=simulations):
        result = paired_difference(*(int(x) for x in table))
        covered += result.ci_low <= 0.05 <= result.ci_high
    assert 0.93 <= covered / simulations <= 0.97
