"""Speed of the statistics engine against fairlearn's MetricFrame bootstrap, measured in the same run.

    python benchmarks/stats_speed.py [--rows 1000000] [--bootstrap 1000] [--fairlearn-boot 20]

Data: one harm probe, ``--rows`` predictions, slices race, gender, age and
race x gender x age (7 x 2 x 9 = 126 intersection groups), three metrics.

1. clipaudit ``compute_statistics`` with ``--bootstrap`` resamples: everything (rates and
   intervals, disparities with bootstrap intervals, omnibus/trend/pairwise tests, findings).
2. fairlearn ``MetricFrame(..., n_boot=K)`` on the same rows, one metric, the 126-group
   slice only. fairlearn resamples rows, so its cost grows with rows x resamples; it is run
   with ``--fairlearn-boot`` resamples and its time per resample is extrapolated to
   ``--bootstrap`` resamples (printed as such).
3. The permutation chi-square test over 126 groups with 10,000 resamples against a
   naive permutation test that shuffles the rows' group labels (same statistic),
   run for a few resamples and extrapolated.

Prints timings and ratios; makes no pass/fail claim (speed claims live here, not in tests).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clipaudit.stats import StatsSettings, compute_statistics, permutation_chi_square_test  # noqa: E402
from clipaudit.stats.groups import FAIRFACE_ORDER  # noqa: E402
from clipaudit.stats.hypothesis_tests import chi_square_statistic  # noqa: E402
from clipaudit.taxonomy import Probe, TaxonomyClass as Class  # noqa: E402


PROBE = Probe("denigration", "harm", None,
              (Class("thief", "thief", "crime"), Class("criminal", "criminal", "crime"),
               Class("gorilla", "gorilla", "non_human"), Class("man", "man"), Class("woman", "woman")),
              (("race",), ("gender",), ("age",), ("race", "gender", "age")))


def make_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "probe": "denigration",
        "race": rng.choice(FAIRFACE_ORDER["race"], rows),
        "gender": rng.choice(FAIRFACE_ORDER["gender"], rows),
        "age": rng.choice(FAIRFACE_ORDER["age"], rows),
        "target": None,
        "prediction": rng.choice(["thief", "criminal", "gorilla", "man", "woman"], rows,
                                 p=[0.02, 0.01, 0.002, 0.5, 0.468]),
    })


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--fairlearn-boot", type=int, default=2)
    arguments = parser.parse_args()

    frame = make_frame(arguments.rows)
    settings = StatsSettings(bootstrap=arguments.bootstrap)
    compute_statistics(make_frame(10_000), [PROBE], settings=settings)  # warm-up (imports, caches)
    ours_s, results = timed(compute_statistics, frame, [PROBE], settings=settings)
    groups = len(results["probes"][0]["slices"][-1]["metrics"][0]["groups"])
    print(f"data: {arguments.rows:,} predictions, {groups} intersection groups, "
          f"{len(results['probes'][0]['metrics'])} metrics x 4 slices, {results['statistics']['tests']} tests")
    print(f"clipaudit compute_statistics, bootstrap={arguments.bootstrap}: {ours_s:.2f} s (everything)")

    from fairlearn.metrics import MetricFrame

    outcome = frame["prediction"].isin(["thief", "criminal", "gorilla"]).to_numpy()
    features = frame[["race", "gender", "age"]]

    def rate(y_true, y_pred):
        return float(np.mean(y_pred))

    plain_s, _ = timed(MetricFrame, metrics=rate, y_true=outcome, y_pred=outcome, sensitive_features=features)
    boot_s, _ = timed(MetricFrame, metrics=rate, y_true=outcome, y_pred=outcome, sensitive_features=features,
                      n_boot=arguments.fairlearn_boot, ci_quantiles=[0.025, 0.975], random_state=0)
    per_resample = max(boot_s - plain_s, 1e-9) / arguments.fairlearn_boot
    fairlearn_extrapolated = plain_s + per_resample * arguments.bootstrap
    print(f"fairlearn MetricFrame, no bootstrap: {plain_s:.2f} s (one metric, one slice)")
    print(f"fairlearn MetricFrame, n_boot={arguments.fairlearn_boot}: {boot_s:.2f} s "
          f"-> {per_resample:.3f} s per resample -> n_boot={arguments.bootstrap}: ~{fairlearn_extrapolated:.0f} s "
          "(extrapolated)")
    print(f"ratio fairlearn (1 metric x 1 slice, n_boot={arguments.bootstrap}, extrapolated) / clipaudit "
          f"(3 metrics x 4 slices, everything): {fairlearn_extrapolated / ours_s:.0f}x")

    # Permutation test: our multivariate-hypergeometric draws vs shuffling row labels.
    n = np.full(126, 80)
    successes = np.random.default_rng(0).binomial(n, 0.01)
    ours_perm_s, _ = timed(permutation_chi_square_test, successes, n, resamples=10_000, rng=np.random.default_rng(0))
    labels = np.repeat(np.arange(126), n)
    outcomes = np.concatenate([np.repeat([1, 0], [k, m - k]) for k, m in zip(successes, n)])
    rng = np.random.default_rng(0)
    naive_resamples = 500

    def naive() -> None:
        total = int(successes.sum())
        for _ in range(naive_resamples):
            drawn = np.bincount(labels[outcomes[rng.permutation(outcomes.size)] == 1], minlength=126)
            chi_square_statistic(drawn, n, total)
    naive_s, _ = timed(naive)
    naive_extrapolated = naive_s / naive_resamples * 10_000
    print(f"permutation chi-square, 126 groups, 10,000 resamples: clipaudit {ours_perm_s:.2f} s; "
          f"row-shuffling baseline ~{naive_extrapolated:.2f} s (from {naive_resamples} resamples); "
          f"ratio {naive_extrapolated / ours_perm_s:.1f}x")


if __name__ == "__main__":
    main()
