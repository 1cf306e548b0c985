"""Simulated audits that can fail: family-wise error rate, direction of false findings, the
selection-adjusted ``best`` reference, power, and interval coverage.

The null-audit checks are vectorised over 2,000 audits at FairFace val's shape (race, gender,
age and race x gender slices, three metrics: 111 tests), using the engine's own test functions
(their equality with ``compute_statistics`` is tested in test_stats_engine / test_stats_tests).
With 2,000 audits the simulation SE of a 5% rate is 0.5 points: a true 8% fails the bound
(5% + 3 SE = 6.5%) with probability above 0.999. Each check also runs the procedure the engine
used to have (pooled z test, unadjusted ``best``) and requires the check to catch it, so a check
that cannot fail would be noticed. The coverage of single-rate intervals is computed exactly in
test_stats_intervals.py.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from clipaudit.stats import StatsSettings, compute_statistics, newcombe_difference
from clipaudit.stats.hypothesis_tests import cochran_armitage_test, fisher_p_values
from test_stats_engine import HARM, RACES, StubProbe, harm_frame

RACE_ONLY = StubProbe("denigration", "harm", None, HARM.classes, (("race",),))
AUDITS, ALPHA = 2_000, 0.05
BOUND = ALPHA + 3 * np.sqrt(ALPHA * (1 - ALPHA) / AUDITS)
# FairFace val: images per race, gender and age bin.
RACE_SIZES = np.array([1550, 1516, 1556, 2085, 1209, 1623, 1415])
GENDER_SHARE = 5792 / 10954
AGE_SIZES = np.array([199, 1356, 1181, 3300, 2330, 1353, 796, 321, 118])
RATES = (0.01, 0.05, 0.90)  # two rare harm rates and an accuracy


def _cells(rng: np.random.Generator, rate: float) -> np.ndarray:
    """Successes per (audit, race, gender, age) cell under the null; sizes from FairFace's marginals."""
    shares = (RACE_SIZES[:, None, None] / RACE_SIZES.sum()) * np.array([GENDER_SHARE, 1 - GENDER_SHARE])[None, :, None] \
        * (AGE_SIZES / AGE_SIZES.sum())[None, None, :]
    sizes = np.maximum(1, np.round(shares * 10954)).astype(np.int64)
    return rng.binomial(sizes, rate, size=(AUDITS, *sizes.shape)), sizes


def _slices(successes: np.ndarray, sizes: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(successes per audit x group, n per group) for race, gender, age and race x gender."""
    return [(successes.sum(axis=(2, 3)), sizes.sum(axis=(1, 2))),
            (successes.sum(axis=(1, 3)), sizes.sum(axis=(0, 2))),
            (successes.sum(axis=(1, 2)), sizes.sum(axis=(0, 1))),
            (successes.sum(axis=3).reshape(AUDITS, -1), sizes.sum(axis=2).ravel())]


def _z_p_values(k1: np.ndarray, n1: np.ndarray, k2: np.ndarray, n2: np.ndarray) -> np.ndarray:
    # The pooled two-proportion z test the engine used before (kept here to show the check catches it).
    pooled = (k1 + k2) / (n1 + n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (k1 / n1 - k2 / n2) / np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return np.where(np.isfinite(z), 2 * norm.sf(np.abs(z)), 1.0)


def _null_family(reference: str, pairwise=fisher_p_values, selection_adjusted: bool = True,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Smallest p-value of each simulated audit, and its false pairwise rejections by direction.

    Returns (smallest p per audit, worse-side p-values, better-side p-values, family size); worse is
    a higher rate for the harm rates and a lower one for the accuracy.
    """
    rng = np.random.default_rng(seed)
    smallest = np.ones(AUDITS)
    worse, better, family = [], [], 0
    for rate in RATES:
        successes, sizes = _cells(rng, rate)
        for slice_successes, n in _slices(successes, sizes):
            groups = n.size
            total_k = slice_successes.sum(axis=1, keepdims=True)
            rest_p = pairwise(slice_successes, n, total_k - slice_successes, n.sum() - n)
            omnibus = np.minimum(1.0, (1 if groups == 2 else groups) * rest_p.min(axis=1))
            if reference == "best":
                rates = slice_successes / n
                best = np.argmax(rates, axis=1) if rate > 0.5 else np.argmin(rates, axis=1)
                best_k, best_n = slice_successes[np.arange(AUDITS), best][:, None], n[best][:, None]
                raw = pairwise(slice_successes, n, best_k, best_n)
                p = np.where(np.arange(groups) == best[:, None], 1.0,
                             np.minimum(1.0, raw * ((groups - 1) if selection_adjusted else 1)))
                difference = rates - best_k / best_n
            else:  # overall: each group against the rest
                p, difference = rest_p, slice_successes / n - (total_k - slice_successes) / (n.sum() - n)
            smallest = np.minimum(smallest, np.minimum(omnibus, p.min(axis=1)))
            family += 1 + (groups - 1 if reference == "best" else groups)
            is_worse = difference > 0 if rate < 0.5 else difference < 0
            worse.append(p[is_worse])
            better.append(p[~is_worse & (difference != 0)])
        # Cochran-Armitage trend over the age bins (asymptotic; every expected count is >= 5 here).
        age_successes, age_n = _slices(successes, sizes)[2]
        expected = age_n * rate
        if min(expected.min(), (age_n - expected).min()) >= 5:
            pooled = age_successes.sum(axis=1, keepdims=True) / age_n.sum()
            scores = np.arange(age_n.size, dtype=float)
            statistic = ((age_successes - age_n * pooled) @ scores) / np.sqrt(
                pooled[:, 0] * (1 - pooled[:, 0]) * (age_n @ scores ** 2 - (age_n @ scores) ** 2 / age_n.sum()))
            smallest = np.minimum(smallest, 2 * norm.sf(np.abs(statistic)))
            family += 1
    return smallest, np.concatenate(worse), np.concatenate(better), family


def test_the_trend_statistic_here_is_the_engines() -> None:
    k, n = np.array([10, 70, 60, 170, 110, 70, 40, 15, 6]), np.array([199, 1356, 1181, 3300, 2330, 1353, 796, 321, 118])
    pooled = k.sum() / n.sum()
    scores = np.arange(9.0)
    z = ((k - n * pooled) @ scores) / np.sqrt(pooled * (1 - pooled) * (n @ scores ** 2 - (n @ scores) ** 2 / n.sum()))
    assert 2 * norm.sf(abs(z)) == pytest.approx(cochran_armitage_test(k, n).p_value, rel=1e-9)


@pytest.mark.parametrize("reference", ["overall", "best"])
def test_null_audits_keep_the_family_wise_error_rate(reference: str) -> None:
    """Share of null audits with any significant test (Holm: the smallest p below alpha / m; min
    effect 0) stays below 5% + 3 simulation SEs, against the rest and against the data-chosen best."""
    smallest, _, _, family = _null_family(reference)
    assert family > 90
    assert np.mean(smallest <= ALPHA / family) <= BOUND


def test_the_error_rate_check_catches_an_unadjusted_best_reference() -> None:
    smallest, _, _, family = _null_family("best", selection_adjusted=False)
    assert np.mean(smallest <= ALPHA / family) > BOUND


def _worse_share(worse: np.ndarray, better: np.ndarray, level: float) -> tuple[int, int]:
    return int(np.count_nonzero(worse <= level)), int(np.count_nonzero(better <= level))


def test_false_findings_are_not_lopsided() -> None:
    """False rejections at a level where there are enough of them (alpha / 20, per test): the
    "worse" side may not take much more than half (the exact test gives each tail at most half of
    the level); the pooled z test, which understates the upper tail of rare outcomes, is caught."""
    _, worse, better, _ = _null_family("overall")
    worse_count, better_count = _worse_share(worse, better, ALPHA / 20)
    total = worse_count + better_count
    assert total > 200
    assert worse_count / total <= 0.5 + 3 * np.sqrt(0.25 / total) + 0.05
    _, z_worse, z_better, _ = _null_family("overall", pairwise=_z_p_values)
    z_worse_count, z_better_count = _worse_share(z_worse, z_better, ALPHA / 20)
    assert z_worse_count / (z_worse_count + z_better_count) > 0.5 + 3 * np.sqrt(0.25 / total) + 0.05


@pytest.mark.parametrize(("planted", "least_power"), [(0.10, 0.95), (0.05, 0.5)])
def test_power_for_a_harm_disparity_in_one_race_at_fairface_size(planted: float, least_power: float) -> None:
    """Black's harm rate 5% + planted against 5% for everyone else (FairFace val's race sizes), tested
    against the rest at Holm's first level in a 220-test family (the shipped taxonomies' size)."""
    rng = np.random.default_rng(int(planted * 100))
    rates = np.where(np.array(RACES) == "Black", 0.05 + planted, 0.05)
    successes = rng.binomial(RACE_SIZES, rates, size=(AUDITS, RACE_SIZES.size))
    black = list(RACES).index("Black")
    k1, n1 = successes[:, black], RACE_SIZES[black]
    p = fisher_p_values(k1, n1, successes.sum(axis=1) - k1, RACE_SIZES.sum() - n1)
    assert np.mean(p <= ALPHA / 220) >= least_power


@pytest.mark.parametrize("n", [30, 100, 500, 2000])
def test_newcombe_difference_covers_between_93_and_97_percent(n: int) -> None:
    """Coverage of the 95% Newcombe interval of a group-vs-reference difference, 4000 simulations."""
    rng = np.random.default_rng(n)
    simulations = 4000
    covered = []
    for p1, p2 in ((0.1, 0.1), (0.3, 0.2), (0.5, 0.4), (0.85, 0.9)):
        k1 = rng.binomial(n, p1, simulations)
        k2 = rng.binomial(3 * n, p2, simulations)
        result = newcombe_difference(k1, n, k2, 3 * n)
        covered.append(np.mean((result.low <= p1 - p2) & (p1 - p2 <= result.high)))
    assert all(0.93 <= share <= 0.97 for share in covered), covered


def test_overall_reference_interval_covers() -> None:
    """The group-vs-overall interval (scaled from group vs rest) covers the true gap in audits."""
    rng = np.random.default_rng(7)
    rates = dict(zip(RACES, np.linspace(0.05, 0.2, len(RACES))))
    covered, total = 0, 0
    for _ in range(60):
        frame = harm_frame(rng, 2100, rates)
        results = compute_statistics(frame, [RACE_ONLY], settings=StatsSettings())
        entry = results["probes"][0]["slices"][0]["metrics"][0]
        sizes = {g["group"]: g["n"] for g in entry["groups"]}
        overall = sum(rates[g] * sizes[g] for g in sizes) / sum(sizes.values())
        for item in entry["comparisons"]:
            truth = rates[item["group"]] - overall
            covered += item["difference_ci_low"] <= truth <= item["difference_ci_high"]
            total += 1
    assert 0.93 <= covered / total <= 0.97


def test_a_clear_gap_between_two_groups_becomes_a_finding() -> None:
    """Two genders, a 3-point gap with a tiny p-value: found (the effect is group - rest = the gap,
    not group - overall = half of it, which the 2-point floor used to drop)."""
    rng = np.random.default_rng(5)
    race = rng.choice(RACES, 40_000)
    gender = np.repeat(["Male", "Female"], 20_000)
    harmful = rng.uniform(size=40_000) < np.where(gender == "Male", 0.08, 0.05)
    frame = pd.DataFrame({"probe": "denigration", "race": race, "gender": gender, "target": None,
                          "prediction": np.where(harmful, "thief", "man")})
    probe = StubProbe("denigration", "harm", None, HARM.classes, (("gender",),))
    results = compute_statistics(frame, [probe])
    assert any(f["group"] == "Male" and f["worse"] for f in results["findings"])
