"""Omnibus tests against scipy and exact enumeration; Holm against statsmodels."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2_contingency, hypergeom
from statsmodels.stats.multitest import multipletests

from clipaudit.errors import ClipauditError
from clipaudit.stats import (
    adjust_p_values,
    chi_square_test,
    holm,
    omnibus_test,
    permutation_chi_square_test,
)
from clipaudit.stats.hypothesis_tests import chi_square_statistic, fisher_exact_test, untestable_reason

TOLERANCE = 1e-9


@pytest.mark.parametrize("groups", [2, 3, 7, 14])
def test_chi_square_matches_scipy(groups: int) -> None:
    rng = np.random.default_rng(groups)
    for _ in range(20):
        n = rng.integers(30, 500, size=groups)
        successes = rng.binomial(n, rng.uniform(0.1, 0.9))
        table = np.vstack([successes, n - successes])
        statistic, p_value, df, _ = chi2_contingency(table, correction=False)
        result = chi_square_test(successes, n)
        assert result.name == "chi-square"
        assert result.statistic == pytest.approx(statistic, abs=TOLERANCE)
        assert result.p_value == pytest.approx(p_value, abs=TOLERANCE)
        assert result.df == df == groups - 1
        assert result.groups_tested == groups and result.resamples is None


def test_vectorised_statistic_matches_scipy() -> None:
    n = np.array([40, 60, 80, 100])
    draws = np.array([[10, 20, 30, 40], [25, 25, 25, 25], [0, 30, 30, 40]])
    expected = [chi2_contingency(np.vstack([row, n - row]), correction=False)[0] for row in draws]
    np.testing.assert_allclose(chi_square_statistic(draws, n, 100), expected, rtol=0, atol=TOLERANCE)


def _exact_conditional_p(successes: np.ndarray, n: np.ndarray) -> float:
    """P(X^2 >= observed) over the hypergeometric distribution of a 2 x 2 table."""
    total_successes = int(successes.sum())
    observed = float(chi_square_statistic(successes, n, total_successes))
    support = np.arange(max(0, total_successes - n[1]), min(n[0], total_successes) + 1)
    tables = np.column_stack([support, total_successes - support])
    statistics = chi_square_statistic(tables, n, total_successes)
    probabilities = hypergeom.pmf(support, int(n.sum()), total_successes, int(n[0]))
    return float(probabilities[statistics >= observed * (1 - 1e-10)].sum())


def test_permutation_p_is_close_to_the_exact_p_on_a_2x2_table() -> None:
    successes, n = np.array([3, 11]), np.array([40, 45])
    exact = _exact_conditional_p(successes, n)
    result = permutation_chi_square_test(successes, n, resamples=20_000, rng=np.random.default_rng(1))
    standard_error = np.sqrt(exact * (1 - exact) / 20_000)
    assert result.name == "permutation chi-square" and result.resamples == 20_000
    assert abs(result.p_value - exact) < 4 * standard_error + 1 / 20_001


def test_permutation_p_is_close_to_the_chi_square_p_on_a_moderate_table() -> None:
    successes, n = np.array([30, 42, 25, 51, 38]), np.array([200, 210, 190, 220, 205])
    asymptotic = chi_square_test(successes, n).p_value
    result = permutation_chi_square_test(successes, n, resamples=20_000, rng=np.random.default_rng(2))
    assert result.statistic == pytest.approx(chi_square_test(successes, n).statistic, abs=TOLERANCE)
    assert abs(result.p_value - asymptotic) < 0.01


def test_permutation_is_deterministic_for_a_seed() -> None:
    successes, n = np.array([1, 4, 0, 6]), np.array([35, 40, 31, 50])
    first = permutation_chi_square_test(successes, n, resamples=5_000, rng=np.random.default_rng(7))
    second = permutation_chi_square_test(successes, n, resamples=5_000, rng=np.random.default_rng(7))
    assert first == second
    assert 0 < first.p_value <= 1


def test_permutation_p_is_never_zero() -> None:
    successes, n = np.array([0, 40]), np.array([40, 40])
    result = permutation_chi_square_test(successes, n, resamples=999, rng=np.random.default_rng(0))
    assert result.p_value == pytest.approx(1 / 1000)


def test_omnibus_is_the_bonferroni_minimum_of_exact_group_vs_rest_tests() -> None:
    successes, n = np.array([50, 60, 70]), np.array([100, 100, 100])
    result = omnibus_test(successes, n)
    rest = [fisher_exact_test(int(k), 100, int(successes.sum() - k), 200).p_value for k in successes]
    assert result is not None and result.name == "exact group-vs-rest, Bonferroni"
    assert result.statistic == pytest.approx(min(rest), rel=1e-12) and result.most_significant == 2
    assert result.p_value == pytest.approx(min(1.0, 3 * min(rest)), rel=1e-12) and result.df == 2
    # Two groups: the two group-vs-rest tests are one test, which is not multiplied.
    two = omnibus_test([3, 12], [200, 180])
    assert two is not None and two.p_value == pytest.approx(fisher_exact_test(3, 200, 12, 180).p_value, rel=1e-12)
    # It reaches the tiny levels a family of a thousand tests needs (no permutation floor).
    tiny = omnibus_test([400, 100, 100, 100], [1000, 1000, 1000, 1000])
    assert tiny is not None and tiny.p_value < 1e-30


@pytest.mark.parametrize(("successes", "n", "reason"), [
    ([5], [10], "2 needed"),
    ([], [], "2 needed"),
    ([0, 0], [10, 20], "no successes"),
    ([10, 20], [10, 20], "every image"),
])
def test_untestable_tables_give_no_test(successes: list[int], n: list[int], reason: str) -> None:
    assert omnibus_test(successes, n) is None
    assert reason in (untestable_reason(successes, n) or "")
    with pytest.raises(ClipauditError, match=reason):
        chi_square_test(successes, n)


def test_bad_tables_are_rejected() -> None:
    with pytest.raises(ClipauditError):
        chi_square_test([5, 3], [4, 10])
    with pytest.raises(ClipauditError):
        chi_square_test([1, 2, 3], [10, 10])
    with pytest.raises(ClipauditError, match="resamples"):
        permutation_chi_square_test([1, 2], [10, 10], resamples=0, rng=np.random.default_rng(0))


@pytest.mark.parametrize("size", [1, 2, 5, 50, 400])
def test_holm_matches_statsmodels(size: int) -> None:
    rng = np.random.default_rng(size)
    p_values = rng.uniform(0, 1, size) ** 3
    p_values[: size // 5] = p_values[0]  # ties
    if size > 3:
        p_values[-1] = 1.0
        p_values[-2] = 0.0
    expected = multipletests(p_values, method="holm")[1]
    np.testing.assert_allclose(holm(p_values), expected, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(adjust_p_values(p_values, method="holm"), expected, rtol=0, atol=TOLERANCE)


def test_holm_is_monotone_and_capped() -> None:
    p_values = np.random.default_rng(3).uniform(0, 0.5, 100)
    adjusted = holm(p_values)
    order = np.argsort(p_values)
    assert np.all(np.diff(adjusted[order]) >= 0)
    assert np.all(adjusted <= 1.0) and np.all(adjusted >= p_values)


def test_adjust_handles_an_empty_family_and_rejects_bad_input() -> None:
    assert adjust_p_values([]).size == 0
    with pytest.raises(ClipauditError, match="p-values"):
        adjust_p_values([0.1, 1.2])
    with pytest.raises(ClipauditError, match="p-values"):
        adjust_p_values([0.1, float("nan")])
    with pytest.raises(ClipauditError, match="bonferroni"):
        adjust_p_values([0.1], method="bonferroni")  # type: ignore[arg-type]
