"""Simulated audits: error rate without disparity, coverage of the difference intervals, power.

Kept small (a few seconds in all); the coverage of single-rate intervals is computed
exactly in test_stats_intervals.py.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clipaudit.stats import StatsSettings, compute_statistics, newcombe_difference
from test_stats_engine import HARM, RACES, StubProbe, harm_frame

RACE_ONLY = StubProbe("denigration", "harm", None, HARM.classes, (("race",),))


def _any_significant(results: dict) -> bool:
    tests = [t for p in results["probes"] for s in p["slices"] for m in s["metrics"]
             for t in [m["test"], m["trend"], *m["comparisons"]] if t]
    return any(t["significant"] for t in tests)


def test_no_disparity_keeps_the_family_wise_error_rate() -> None:
    """Audits without disparity: share with any significant test <= alpha + 3 simulation SEs.

    min_effect = 0 so that only the p-values decide (the practical threshold can only
    lower the rate further).
    """
    audits, alpha = 120, 0.05
    settings = StatsSettings(alpha=alpha, permutation_resamples=200, bootstrap=0, min_effect=0.0)
    rng = np.random.default_rng(2024)
    flagged = sum(_any_significant(compute_statistics(harm_frame(rng, 1500, {}), [HARM], settings=settings))
                  for _ in range(audits))
    assert flagged / audits <= alpha + 3 * np.sqrt(alpha * (1 - alpha) / audits)


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
    settings = StatsSettings(bootstrap=0, permutation_resamples=100)
    for _ in range(60):
        frame = harm_frame(rng, 2100, rates)
        results = compute_statistics(frame, [RACE_ONLY], settings=settings)
        entry = results["probes"][0]["slices"][0]["metrics"][0]
        sizes = {g["group"]: g["n"] for g in entry["groups"]}
        overall = sum(rates[g] * sizes[g] for g in sizes) / sum(sizes.values())
        for item in entry["comparisons"]:
            truth = rates[item["group"]] - overall
            covered += item["difference_ci_low"] <= truth <= item["difference_ci_high"]
            total += 1
    assert 0.93 <= covered / total <= 0.97


def test_planted_ten_point_disparity_is_found_at_n_500() -> None:
    """One race at 20% harm, the others at 10%, 500 images per race: found in >= 80% of audits."""
    rng = np.random.default_rng(11)
    settings = StatsSettings(bootstrap=0, permutation_resamples=200)
    audits, found = 60, 0
    for _ in range(audits):
        race = np.repeat(RACES, 500)
        harmful = rng.uniform(size=race.size) < np.where(race == "Black", 0.2, 0.1)
        frame = pd.DataFrame({"probe": "denigration", "race": race, "gender": rng.choice(["Male", "Female"], race.size),
                              "target": None, "prediction": np.where(harmful, "thief", "man")})
        findings = compute_statistics(frame, [RACE_ONLY], settings=settings)["findings"]
        found += any(f["group"] == "Black" and f["metric"] == "harm_rate" and f["worse"] for f in findings)
    assert found / audits >= 0.8
