"""Wilson intervals against statsmodels, edge cases and argument checks."""
from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.proportion import proportion_confint

from clipaudit.errors import ClipauditError
from clipaudit.stats import ConfidenceInterval, interval

TOLERANCE = 1e-9


def _all_counts(max_n: int) -> tuple[np.ndarray, np.ndarray]:
    pairs = [(k, n) for n in range(1, max_n + 1) for k in range(n + 1)]
    successes, n = np.array(pairs).T
    return successes, n


@pytest.mark.parametrize("confidence", [0.8, 0.9, 0.95, 0.99, 0.999])
def test_wilson_matches_statsmodels_for_every_small_count(confidence: float) -> None:
    successes, n = _all_counts(60)
    ci = interval(successes, n, method="wilson", confidence=confidence)
    low, high = proportion_confint(successes, n, alpha=1 - confidence, method="wilson")
    np.testing.assert_allclose(ci.low, low, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(ci.high, high, rtol=0, atol=TOLERANCE)


def test_wilson_matches_statsmodels_for_large_counts() -> None:
    rng = np.random.default_rng(0)
    n = rng.integers(1, 2_000_000, size=500)
    successes = rng.integers(0, n + 1)
    ci = interval(successes, n)
    low, high = proportion_confint(successes, n, alpha=0.05, method="wilson")
    np.testing.assert_allclose(ci.low, low, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(ci.high, high, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("n", [1, 2, 30, 1000])
def test_zero_and_all_successes_reach_the_bounds(n: int) -> None:
    none_succeed = interval(0, n)
    all_succeed = interval(n, n)
    assert float(none_succeed.low) == 0.0 and 0.0 < float(none_succeed.high) < 1.0
    assert float(all_succeed.high) == 1.0 and 0.0 < float(all_succeed.low) < 1.0
    assert float(none_succeed.high) == pytest.approx(1.0 - float(all_succeed.low), abs=TOLERANCE)


def test_single_observation_matches_statsmodels() -> None:
    for k in (0, 1):
        low, high = proportion_confint(k, 1, method="wilson")
        ci = interval(k, 1)
        assert float(ci.low) == pytest.approx(low, abs=TOLERANCE)
        assert float(ci.high) == pytest.approx(high, abs=TOLERANCE)


def test_zero_count_policy_is_nan() -> None:
    ci = interval(np.array([0, 3]), np.array([0, 10]))
    assert np.isnan(ci.low[0]) and np.isnan(ci.high[0])
    assert np.isfinite(ci.low[1]) and np.isfinite(ci.high[1])


def test_result_type_does_not_depend_on_input_shape() -> None:
    scalar = interval(3, 10)
    vector = interval([3, 4], [10, 10])
    assert isinstance(scalar, ConfidenceInterval) and isinstance(vector, ConfidenceInterval)
    assert scalar.low.shape == () and vector.low.shape == (2,)
    assert float(scalar.low) == pytest.approx(float(vector.low[0]), abs=0)
    assert scalar.method == "wilson" and scalar.confidence == 0.95


def test_interval_contains_the_estimate_and_narrows_with_n() -> None:
    successes, n = _all_counts(40)
    ci = interval(successes, n)
    estimate = successes / n
    assert np.all(ci.low <= estimate + 1e-15) and np.all(estimate <= ci.high + 1e-15)
    assert float(interval(300, 1000).high - interval(300, 1000).low) < float(interval(30, 100).high - interval(30, 100).low)


@pytest.mark.parametrize("confidence", [0, 1, 1.5, -0.1, "0.95", True, float("nan")])
def test_bad_confidence_is_rejected_with_the_value(confidence: object) -> None:
    with pytest.raises(ClipauditError, match="confidence"):
        interval(1, 2, confidence=confidence)  # type: ignore[arg-type]


@pytest.mark.parametrize(("successes", "n"), [(3, 2), (-1, 5), (1, -1)])
def test_bad_counts_are_rejected(successes: int, n: int) -> None:
    with pytest.raises(ClipauditError, match="successes"):
        interval(successes, n)


def test_unknown_method_lists_the_known_ones() -> None:
    with pytest.raises(ClipauditError, match="wilson"):
        interval(1, 2, method="wald")  # type: ignore[arg-type]


@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_clopper_pearson_matches_statsmodels_beta(confidence: float) -> None:
    successes, n = _all_counts(60)
    ci = interval(successes, n, method="clopper-pearson", confidence=confidence)
    low, high = proportion_confint(successes, n, alpha=1 - confidence, method="beta")
    np.testing.assert_allclose(ci.low, low, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(ci.high, high, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_jeffreys_matches_statsmodels_inside_and_is_modified_at_the_boundary(confidence: float) -> None:
    successes, n = _all_counts(60)
    ci = interval(successes, n, method="jeffreys", confidence=confidence)
    low, high = proportion_confint(successes, n, alpha=1 - confidence, method="jeffreys")
    inside = (successes > 0) & (successes < n)
    np.testing.assert_allclose(ci.low[inside], low[inside], rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(ci.high[inside], high[inside], rtol=0, atol=TOLERANCE)
    # Brown, Cai & DasGupta (2001): lower bound 0 at k = 0, upper bound 1 at k = n.
    assert np.all(ci.low[successes == 0] == 0.0) and np.all(ci.high[successes == n] == 1.0)
    np.testing.assert_allclose(ci.high[successes == 0], high[successes == 0], rtol=0, atol=TOLERANCE)


def test_large_counts_match_statsmodels_for_every_method() -> None:
    rng = np.random.default_rng(1)
    n = rng.integers(1, 2_000_000, size=300)
    successes = rng.integers(1, n)
    for ours, theirs in (("clopper-pearson", "beta"), ("jeffreys", "jeffreys")):
        ci = interval(successes, n, method=ours)
        low, high = proportion_confint(successes, n, alpha=0.05, method=theirs)
        np.testing.assert_allclose(ci.low, low, rtol=0, atol=TOLERANCE)
        np.testing.assert_allclose(ci.high, high, rtol=0, atol=TOLERANCE)


def _exact_coverage(method: str, n: int, rates: np.ndarray) -> np.ndarray:
    """P(interval covers p) for each p, summed exactly over the binomial distribution."""
    from scipy.stats import binom

    successes = np.arange(n + 1)
    ci = interval(successes, np.full(n + 1, n), method=method)  # type: ignore[arg-type]
    covers = (ci.low[None, :] <= rates[:, None]) & (rates[:, None] <= ci.high[None, :])
    return np.sum(binom.pmf(successes[None, :], n, rates[:, None]) * covers, axis=1)


@pytest.mark.parametrize("n", [30, 100, 500, 2000])
@pytest.mark.parametrize("method", ["wilson", "jeffreys"])
def test_coverage_is_within_93_and_97_percent(method: str, n: int) -> None:
    """Exact coverage, averaged over p in a window (Newcombe 1998's criterion), and at fixed rates.

    Pointwise coverage of any binomial interval oscillates with p (Brown, Cai & DasGupta
    2001): at n = 30 the Wilson interval covers 92.98% at p = 0.3 and 97.4% at p = 0.1, so
    at n = 30 the [93%, 97%] band holds for the average over p, and pointwise from n = 100.
    """
    window = np.linspace(0.05, 0.95, 181)
    assert 0.93 <= float(np.mean(_exact_coverage(method, n, window))) <= 0.97
    rates = np.array([0.1, 0.2, 0.3, 0.5, 0.7, 0.9])
    coverage = _exact_coverage(method, n, rates)
    low, high = (0.92, 0.98) if n < 100 else (0.93, 0.97)
    assert np.all((coverage >= low) & (coverage <= high)), dict(zip(rates, coverage))


@pytest.mark.parametrize("n", [30, 100, 500, 2000])
def test_clopper_pearson_never_covers_less_than_nominal(n: int) -> None:
    coverage = _exact_coverage("clopper-pearson", n, np.linspace(0.01, 0.99, 99))
    assert np.all(coverage >= 0.95 - 1e-12)
