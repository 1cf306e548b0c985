"""Speed of the statistics engine against fairlearn's MetricFrame bootstrap, measured in the same run.

    python benchmarks/stats_speed.py [--rows 1000000] [--fairlearn-boot 20] [--boot-target 1000]

Data: one harm probe, ``--rows`` predictions, slices race, gender, age and
race x gender x age (7 x 2 x 9 = 126 intersection groups), three metrics.

1. clipaudit ``compute_statistics``: everything (rates and intervals, disparities with their
   simultaneous intervals, omnibus/trend/pairwise exact tests, findings); nothing is resampled.
2. fairlearn ``MetricFrame(..., n_boot=K)`` on the same rows, one metric, the 126-group
   slice only: fairlearn's way to intervals is a bootstrap of the rows, so its cost grows with
   rows x resamples; it is run with ``--fairlearn-boot`` resamples and its time per resample is
   extrapolated to ``--boot-target`` resamples (printed as such).

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

from clipaudit.stats import compute_statistics  # noqa: E402
from clipaudit.stats.groups import FAIRFACE_ORDER  # noqa: E402
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
    parser.add_argument("--boot-target", type=int, default=1000,
                        help="resamples fairlearn's bootstrap is extrapolated to (default 1000)")
    parser.add_argument("--fairlearn-boot", type=int, default=2)
    arguments = parser.parse_args()

    frame = make_frame(arguments.rows)
    compute_statistics(make_frame(10_000), [PROBE])  # warm-up (imports, caches)
    ours_s, results = timed(compute_statistics, frame, [PROBE])
    groups = len(results["probes"][0]["slices"][-1]["metrics"][0]["groups"])
    print(f"data: {arguments.rows:,} predictions, {groups} intersection groups, "
          f"{len(results['probes'][0]['metrics'])} metrics x 4 slices, {results['statistics']['tests']} tests")
    print(f"clipaudit compute_statistics: {ours_s:.2f} s (everything, no resampling)")

    from fairlearn.metrics import MetricFrame

    outcome = frame["prediction"].isin(["thief", "criminal", "gorilla"]).to_numpy()
    features = frame[["race", "gender", "age"]]

    def rate(y_true, y_pred):
        return float(np.mean(y_pred))

    plain_s, _ = timed(MetricFrame, metrics=rate, y_true=outcome, y_pred=outcome, sensitive_features=features)
    boot_s, _ = timed(MetricFrame, metrics=rate, y_true=outcome, y_pred=outcome, sensitive_features=features,
                      n_boot=arguments.fairlearn_boot, ci_quantiles=[0.025, 0.975], random_state=0)
    per_resample = max(boot_s - plain_s, 1e-9) / arguments.fairlearn_boot
    fairlearn_extrapolated = plain_s + per_resample * arguments.boot_target
    print(f"fairlearn MetricFrame, no bootstrap: {plain_s:.2f} s (one metric, one slice)")
    print(f"fairlearn MetricFrame, n_boot={arguments.fairlearn_boot}: {boot_s:.2f} s "
          f"-> {per_resample:.3f} s per resample -> n_boot={arguments.boot_target}: ~{fairlearn_extrapolated:.0f} s "
          "(extrapolated)")
    print(f"ratio fairlearn (1 metric x 1 slice, n_boot={arguments.boot_target}, extrapolated) / clipaudit "
          f"(3 metrics x 4 slices, everything): {fairlearn_extrapolated / ours_s:.0f}x")


if __name__ == "__main__":
    main()
