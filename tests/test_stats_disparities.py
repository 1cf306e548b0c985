"""Two-sample disparity measures against statsmodels; zero-cell policy; simultaneous spread intervals; power."""
from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.proportion import confint_proportions_2indep, power_proportions_2indep

from clipaudit.stats.disparities import (
    jeffreys_mover_difference,
    katz_ratio,
    minimum_detectable_difference,
    newcombe_difference,
    odds_ratio,
)
from clipaudit.stats.spread import spread_interval

TOLERANCE = 1e-9


def _random_tables(seed: int, size: int = 400, *, interior: bool = True):
    rng = np.random.default_rng(seed)
    n1 = rng.integers(2, 3000, size)
    n2 = rng.integers(2, 3000, size)
    k1 = rng.binomial(n1, rng.uniform(0.01, 0.99, size))
    k2 = rng.binomial(n2, rng.uniform(0.01, 0.99, size))
    if interior:
        k1, k2 = np.clip(k1, 1, n1 - 1), np.clip(k2, 1, n2 - 1)
    return k1, n1, k2, n2


@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_newcombe_matches_statsmodels(confidence: float) -> None:
    k1, n1, k2, n2 = _random_tables(1, interior=False)
    ours = newcombe_difference(k1, n1, k2, n2, confidence=confidence)
    low, high = confint_proportions_2indep(k1, n1, k2, n2, method="newcomb", compare="diff",
                                           alpha=1 - confidence)
    np.testing.assert_allclose(ours.low, low, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(ours.high, high, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(ours.estimate, k1 / n1 - k2 / n2, rtol=0, atol=0)


@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_katz_ratio_matches_statsmodels_log(confidence: float) -> None:
    k1, n1, k2, n2 = _random_tables(2)
    ours = katz_ratio(k1, n1, k2, n2, confidence=confidence)
    low, high = confint_proportions_2indep(k1, n1, k2, n2, method="log", compare="ratio", alpha=1 - confidence)
    np.testing.assert_allclose(ours.low, low, rtol=1e-9, atol=TOLERANCE)
    np.testing.assert_allclose(ours.high, high, rtol=1e-9, atol=TOLERANCE)
    np.testing.assert_allclose(ours.estimate, (k1 / n1) / (k2 / n2), rtol=1e-12)


@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_odds_ratio_matches_statsmodels_logit(confidence: float) -> None:
    k1, n1, k2, n2 = _random_tables(3)
    ours = odds_ratio(k1, n1, k2, n2, confidence=confidence)
    low, high = confint_proportions_2indep(k1, n1, k2, n2, method="logit", compare="odds-ratio",
                                           alpha=1 - confidence)
    np.testing.assert_allclose(ours.low, low, rtol=1e-9, atol=TOLERANCE)
    np.testing.assert_allclose(ours.high, high, rtol=1e-9, atol=TOLERANCE)


def test_ratio_zero_cells_use_haldane_anscombe_and_keep_the_estimate_inside() -> None:
    # Group 1 has no successes: ratio 0, lower bound exactly 0, upper bound from the +0.5 table.
    zero_first = katz_ratio(0, 50, 10, 100)
    assert float(zero_first.estimate) == 0.0 and float(zero_first.low) == 0.0
    c1, m1, c2, m2 = 0.5, 51.0, 10.5, 101.0
    expected_high = np.exp(np.log((c1 / m1) / (c2 / m2)) + 1.959963984540054 * np.sqrt(1 / c1 - 1 / m1 + 1 / c2 - 1 / m2))
    assert float(zero_first.high) == pytest.approx(expected_high, rel=1e-12)
    # Reference has no successes: the ratio is infinite -> NaN estimate and unbounded upper bound.
    zero_second = katz_ratio(5, 50, 0, 100)
    assert np.isnan(zero_second.estimate) and np.isnan(zero_second.high) and float(zero_second.low) > 0
    # All successes need no correction for the ratio: equal to statsmodels.
    low, high = confint_proportions_2indep(50, 50, 80, 100, method="log", compare="ratio")
    full = katz_ratio(50, 50, 80, 100)
    assert (float(full.low), float(full.high)) == pytest.approx((low, high), abs=TOLERANCE)


def test_odds_ratio_zero_cells() -> None:
    zero = odds_ratio(0, 40, 10, 60)
    assert float(zero.estimate) == 0.0 and float(zero.low) == 0.0 and np.isfinite(zero.high)
    infinite = odds_ratio(40, 40, 10, 60)
    assert np.isnan(infinite.estimate) and np.isnan(infinite.high) and float(infinite.low) > 1
    # With the correction on, the interval equals statsmodels' "logit-adjusted" (0.5 added to each cell).
    low, high = confint_proportions_2indep(0, 40, 10, 60, method="logit-adjusted", compare="odds-ratio")
    assert float(zero.high) == pytest.approx(high, rel=1e-9)


def test_spread_interval_brackets_the_spread_and_decides_four_fifths() -> None:
    successes, n = np.array([300, 500, 800, 200]), np.array([3000, 4000, 5000, 2500])
    spread = spread_interval(successes, n, confidence=0.95)
    rates = successes / n
    assert spread.pairs == 6
    assert spread.gap_low < rates.max() - rates.min() < spread.gap_high
    assert spread.ratio_low < rates.min() / rates.max() < spread.ratio_high
    assert spread.four_fifths is True  # 0.5 with an interval wholly below 0.8
    equal = spread_interval([100, 100], [1000, 1000], confidence=0.95)
    assert equal.gap_low == 0.0 and equal.four_fifths is None  # 1.0, but 0.8 is inside the interval
    assert spread_interval([5000, 5050], [10000, 10000], confidence=0.95).four_fifths is False
    # The gap's bounds are the extreme bounds of the Bonferroni-level pairwise Newcombe intervals.
    pairwise = jeffreys_mover_difference(800, 5000, 200, 2500, confidence=1 - 0.05 / 6)
    assert spread.gap_high == pytest.approx(float(pairwise.high), abs=1e-12)
    nothing = spread_interval([0, 0, 3], [100, 200, 50], confidence=0.95)
    assert nothing.ratio_low == 0.0 and nothing.ratio_high == 1.0  # every lower bound 0: ratio up to 1


@pytest.mark.parametrize("rates", [
    (0.05,) * 7,  # equal groups: true gap 0 (a percentile bootstrap never covers it)
    (0.05, 0.05, 0.05, 0.15, 0.05, 0.05, 0.05),  # one group 10 points worse
    (0.70, 0.72, 0.74, 0.76, 0.78, 0.80, 0.82),  # evenly spread accuracies
])
def test_gap_and_ratio_intervals_cover_at_least_the_stated_level(rates: tuple[float, ...]) -> None:
    """2000 simulated audits of seven FairFace-sized groups: the simultaneous gap and ratio intervals
    cover the true max - min and min / max at least 95% of the time (less 3 simulation SEs), and
    four_fifths is true in at most 5% when the true ratio is at or above 0.8."""
    rng = np.random.default_rng(len(set(rates)))
    truth = np.array(rates)
    sizes = np.array([1550, 1500, 1200, 1400, 1250, 1650, 1400])
    draws = rng.binomial(sizes, truth, size=(2000, truth.size))
    spreads = [spread_interval(row, sizes, confidence=0.95) for row in draws]
    gap, ratio = truth.max() - truth.min(), truth.min() / truth.max()
    gap_cover = np.mean([s.gap_low <= gap <= s.gap_high for s in spreads])
    ratio_cover = np.mean([s.ratio_low <= ratio <= s.ratio_high for s in spreads])
    floor = 0.95 - 3 * np.sqrt(0.95 * 0.05 / 2000)
    assert gap_cover >= floor and ratio_cover >= floor, (gap_cover, ratio_cover)
    if ratio >= 0.8:
        assert np.mean([s.four_fifths is True for s in spreads]) <= 0.05


@pytest.mark.parametrize(("n1", "n2", "rate", "increase"), [
    (30, 3000, 0.1, True), (100, 500, 0.5, True), (500, 500, 0.02, True), (2000, 8000, 0.9, False),
    (60, 60, 0.0, True),
])
def test_minimum_detectable_difference_has_the_stated_power(n1: int, n2: int, rate: float, increase: bool) -> None:
    difference = float(minimum_detectable_difference(n1, n2, rate, alpha=0.05, power=0.8, increase=increase))
    assert 0 < difference < 1
    signed = difference if increase else -difference
    power = power_proportions_2indep(signed, rate, n1, ratio=n2 / n1, alpha=0.05).power
    assert power == pytest.approx(0.8, abs=2e-3)


def test_minimum_detectable_difference_shrinks_with_n_and_is_nan_for_empty() -> None:
    sizes = np.array([10, 30, 100, 1000])
    differences = minimum_detectable_difference(sizes, 5000, 0.1)
    assert np.all(np.diff(differences) < 0)
    assert np.isnan(minimum_detectable_difference(0, 100, 0.1))
