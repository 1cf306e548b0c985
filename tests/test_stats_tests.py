"""Omnibus tests against scipy and exact enumeration; Holm against statsmodels."""
from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from clipaudit.errors import ClipauditError
from clipaudit.stats import adjust_p_values, cochran_armitage_test, holm, omnibus_test
from clipaudit.stats.hypothesis_tests import fisher_exact_test, untestable_reason

TOLERANCE = 1e-9


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
        cochran_armitage_test(successes, n)


def test_bad_tables_are_rejected() -> None:
    with pytest.raises(ClipauditError):
        omnibus_test([5, 3], [4, 10])
    with pytest.raises(ClipauditError):
        omnibus_test([1, 2, 3], [10, 10])


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
