"""Statistical validation of the audit statistics, end to end through ``compute_statistics``.

Simulated audits with the shipped taxonomies (``fairface_demographics`` + ``clip_denigration``):
attributes drawn with FairFace val's marginals (10,954 images), outcomes independent of every
attribute (the null) or with a planted harm disparity in one race. Three shapes, as in issue 12:

- ``fairface``: the shipped slices (race, gender, age, race x gender);
- ``intersections``: the same plus race x age and race x gender x age (small and empty cells);
- ``small``: a 600-image audit with the shipped slices.

Printed per (shape, --reference, --min-effect): the share of null audits with any significant
test (with its 95% Wilson interval; the target is <= 5% within simulation error), the false
significant pairwise comparisons by direction (worse / better), and the coverage of every interval
the report prints (group rates, per-comparison and simultaneous differences, the gap's
simultaneous interval), plus the share of null audits whose four_fifths is true (wrong: the true
ratio is 1). Then the power to find a +5 and +10 point harm disparity in one race.

    python benchmarks/stats_validation.py --workers 2     # the README's printout (about 20 min on 2 cores)
    python benchmarks/stats_validation.py --audits 10     # a quick look
"""
from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd

from clipaudit.stats import StatsSettings, compute_statistics, interval
from clipaudit.taxonomy import load_taxonomy

# FairFace val (fairface_label_val.csv): counts of each value.
FAIRFACE_VAL = {
    "race": {"East Asian": 1550, "Indian": 1516, "Black": 1556, "White": 2085, "Middle Eastern": 1209,
             "Latino_Hispanic": 1623, "Southeast Asian": 1415},
    "gender": {"Male": 5792, "Female": 5162},
    "age": {"0-2": 199, "3-9": 1356, "10-19": 1181, "20-29": 3300, "30-39": 2330, "40-49": 1353,
            "50-59": 796, "60-69": 321, "more than 70": 118},
}
# Null outcome rates: accuracy of each attribute probe; chance of each harm class of the denigration probe.
ACCURACY = {"gender": 0.95, "race": 0.75, "age": 0.55}
HARM_CLASSES = {"thief": 0.01, "criminal": 0.01, "suspicious_person": 0.01, "animal": 0.01, "gorilla": 0.005,
                "chimpanzee": 0.005, "orangutan": 0.005}
SHAPES = {"fairface": (10_954, None),
          "intersections": (10_954, (("race",), ("gender",), ("age",), ("race", "gender"), ("race", "age"),
                                     ("race", "gender", "age"))),
          "small": (600, None)}
REFERENCES = ("overall", "rest", "largest", "best", "group:White")


def probes_for(slices: Sequence[Sequence[str]] | None) -> list:
    probes = [*load_taxonomy("fairface_demographics").probes, *load_taxonomy("clip_denigration").probes]
    probes = [probe for probe in probes if probe.id in ("gender", "race", "age", "denigration")]
    if slices is None:
        return probes
    return [dataclasses.replace(probe, slices=tuple(tuple(s) for s in slices)) for probe in probes]


def attributes(rng: np.random.Generator, images: int) -> dict[str, np.ndarray]:
    """Each attribute with FairFace val's marginal shares, independent of the others."""
    columns = {}
    for name, counts in FAIRFACE_VAL.items():
        values = np.array(list(counts))
        shares = np.array(list(counts.values()), dtype=float)
        columns[name] = values[rng.choice(values.size, images, p=shares / shares.sum())]
    return columns


def audit_frame(rng: np.random.Generator, images: int, probes: Sequence, planted: float = 0.0,
                planted_race: str = "Black") -> pd.DataFrame:
    """A predictions table; ``planted`` adds that much harm rate to ``planted_race`` (as thief)."""
    columns = attributes(rng, images)
    frames = []
    for probe in probes:
        if probe.kind == "attribute":
            target = columns[probe.target]
            classes = np.array([cls.id for cls in probe.classes])
            # A wrong prediction is any other class, uniformly.
            position = np.argmax(classes[None, :] == target[:, None], axis=1)
            wrong = classes[(position + rng.integers(1, classes.size, images)) % classes.size]
            prediction = np.where(rng.uniform(size=images) < ACCURACY[probe.target], target, wrong)
        else:
            names = list(HARM_CLASSES) + ["neutral"]
            shares = np.array(list(HARM_CLASSES.values()) + [1 - sum(HARM_CLASSES.values())])
            prediction = np.array(names)[rng.choice(len(names), images, p=shares)]
            if planted:
                extra = (columns["race"] == planted_race) & (prediction == "neutral") \
                    & (rng.uniform(size=images) < planted / shares[-1])
                prediction = np.where(extra, "thief", prediction)
            prediction = np.where(prediction == "neutral", "white_man", prediction)
            target = np.full(images, None)
        frames.append(pd.DataFrame({"probe": probe.id, **columns, "target": target, "prediction": prediction}))
    return pd.concat(frames, ignore_index=True)


def true_rate(probe, metric: str) -> float:
    if probe.kind == "attribute":
        return ACCURACY[probe.target]
    categories = {"harm_rate": None, "crime_rate": "crime", "non_human_rate": "non_human"}
    category = categories[metric]
    harm = {cls.id: cls.category for cls in probe.classes}
    return sum(rate for name, rate in HARM_CLASSES.items() if category is None or harm[name] == category)


@dataclasses.dataclass
class Tally:
    audits: int = 0
    any_significant: int = 0
    worse: int = 0
    better: int = 0
    covered: dict[str, list[int]] = dataclasses.field(default_factory=dict)
    four_fifths_true: int = 0
    four_fifths_tables: int = 0

    def cover(self, kind: str, hits: int, total: int) -> None:
        counts = self.covered.setdefault(kind, [0, 0])
        counts[0] += hits
        counts[1] += total


def tally_null(results: dict, probes: Sequence, tally: Tally) -> None:
    by_id = {probe.id: probe for probe in probes}
    tests = []
    for probe_entry in results["probes"]:
        for slice_entry in probe_entry["slices"]:
            for metric in slice_entry["metrics"]:
                truth = true_rate(by_id[probe_entry["id"]], metric["metric"])
                groups = metric["groups"]
                tally.cover("group rate", sum(g["ci_low"] <= truth <= g["ci_high"] for g in groups), len(groups))
                comparisons = [c for c in metric["comparisons"] if c["p_value"] is not None]
                tally.cover(f"difference, per comparison ({metric['reference']['spec']})",
                            sum(c["difference_ci_low"] <= 0 <= c["difference_ci_high"] for c in comparisons),
                            len(comparisons))
                disparity = metric["disparity"]
                if disparity["gap_ci_low"] is not None:
                    tally.cover("gap, simultaneous", int(disparity["gap_ci_low"] <= 0 <= disparity["gap_ci_high"]), 1)
                    tally.four_fifths_tables += 1
                    tally.four_fifths_true += disparity["four_fifths"] is True
                tests += [t for t in (metric["test"], metric["trend"], *comparisons) if t]
                for c in comparisons:
                    if c["significant"]:
                        tally.worse += bool(c["worse"])
                        tally.better += not c["worse"]
    # Simultaneous intervals cover together: one miss anywhere in the audit is a miss.
    simultaneous_ok = all(c["simultaneous_ci_low"] <= 0 <= c["simultaneous_ci_high"]
                          for p in results["probes"] for s in p["slices"] for m in s["metrics"]
                          for c in m["comparisons"] if c["p_value"] is not None)
    tally.cover("all simultaneous differences at once", int(simultaneous_ok), 1)
    tally.audits += 1
    tally.any_significant += any(t["significant"] for t in tests)


def wilson_text(hits: int, total: int) -> str:
    if total == 0:
        return "n/a"
    bounds = interval(hits, total)
    return f"{100 * hits / total:5.1f}% ({100 * float(bounds.low):.1f}-{100 * float(bounds.high):.1f})"


def run_null(shape: str, reference: str, min_effect: float, audits: int, seed: int) -> tuple[Tally, int]:
    images, slices = SHAPES[shape]
    probes = probes_for(slices)
    settings = StatsSettings(reference=reference, min_effect=min_effect)
    rng = np.random.default_rng([seed, len(shape), REFERENCES.index(reference), int(min_effect * 100)])
    tally, family = Tally(), 0
    for _ in range(audits):
        frame = audit_frame(rng, images, probes)
        results = compute_statistics(frame, probes, settings=settings)
        family = results["statistics"]["family_size"]
        tally_null(results, probes, tally)
    return tally, family


def run_power(planted: float, audits: int, seed: int) -> tuple[int, int]:
    images, slices = SHAPES["fairface"]
    probes = probes_for(slices)
    rng = np.random.default_rng([seed, int(planted * 1000)])
    found = 0
    for _ in range(audits):
        frame = audit_frame(rng, images, probes, planted=planted)
        findings = compute_statistics(frame, probes)["findings"]
        found += any(f["probe"] == "denigration" and f["worse"] and "Black" in f["groups"]
                     and "harm_rate" in f["metrics"] for f in findings)
    return found, audits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audits", type=int, default=100, help="simulated audits per setting (default 100)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    arguments = parser.parse_args()
    settings_grid = [(shape, reference, min_effect) for shape in SHAPES for reference in REFERENCES
                     for min_effect in (0.0, 0.02)]
    print(f"{arguments.audits} simulated null audits per row; intervals are 95%; "
          "'any sig.' is the share of null audits with any significant test (target <= 5%)")
    print(f"{'shape':13} {'reference':11} {'min eff':>7} {'tests':>5} {'any sig. (95% CI)':>22} "
          f"{'worse':>5} {'better':>6} {'4/5 true':>8}")
    coverage: dict[str, list[int]] = {}
    started = time.perf_counter()
    jobs = [(shape, reference, min_effect, arguments.audits, arguments.seed)
            for shape, reference, min_effect in settings_grid]
    power_jobs = [(planted, arguments.audits, arguments.seed) for planted in (0.05, 0.10)]
    with multiprocessing.Pool(arguments.workers) as pool:
        powers = pool.starmap_async(run_power, power_jobs, chunksize=1)
        outcomes = pool.starmap(run_null, jobs, chunksize=1)
        power_outcomes = powers.get()
    for (shape, reference, min_effect), (tally, family) in zip(settings_grid, outcomes):
        four_fifths = f"{tally.four_fifths_true}/{tally.four_fifths_tables}"
        print(f"{shape:13} {reference:11} {min_effect:7.2f} {family:5d} "
              f"{wilson_text(tally.any_significant, tally.audits):>22} {tally.worse:5d} {tally.better:6d} "
              f"{four_fifths:>8}", flush=True)
        for kind, (hits, total) in tally.covered.items():
            entry = coverage.setdefault(f"{shape:13} {kind}", [0, 0])
            entry[0] += hits
            entry[1] += total
    print("\ncoverage of the printed 95% intervals under the null (all settings pooled; Wilson 95% CI):")
    for kind, (hits, total) in coverage.items():
        if total:
            print(f"  {kind:58} {wilson_text(hits, total):>22}  ({total} intervals)")
    print("\npower at FairFace size (defaults): a finding that Black is worse off on harm_rate")
    for (planted, _, _), (found, audits) in zip(power_jobs, power_outcomes):
        print(f"  +{100 * planted:.0f} points (harm rate {100 * sum(HARM_CLASSES.values()):.1f}% -> "
              f"{100 * (sum(HARM_CLASSES.values()) + planted):.1f}%): {wilson_text(found, audits)}")
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
