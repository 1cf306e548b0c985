"""The statistics engine: against fairlearn and statsmodels, policies, findings, schema."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame
from sklearn.metrics import accuracy_score
from statsmodels.stats.multitest import multipletests

from clipaudit.errors import ClipauditError
from clipaudit.schemas import load_schema, validate_results
from clipaudit.stats import StatsSettings, compute_statistics, interval
from clipaudit.stats.groups import FAIRFACE_ORDER
from clipaudit.format import p_phrase as format_p
from clipaudit.stats.findings import finding_text

TOLERANCE = 1e-9
RACES = FAIRFACE_ORDER["race"]
GENDERS = FAIRFACE_ORDER["gender"]
AGES = FAIRFACE_ORDER["age"]


@dataclass(frozen=True)
class StubClass:
    id: str
    category: str | None = None


@dataclass(frozen=True)
class StubProbe:
    id: str
    kind: str
    target: str | None
    classes: tuple[StubClass, ...]
    slices: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class StubTaxonomy:
    probes: tuple[StubProbe, ...]


HARM = StubProbe("denigration", "harm", None,
                 (StubClass("thief", "crime"), StubClass("criminal", "crime"), StubClass("gorilla", "non_human"),
                  StubClass("man"), StubClass("woman")),
                 (("race",), ("gender",), ("race", "gender")))
GENDER = StubProbe("gender", "attribute", "gender", (StubClass("Male"), StubClass("Female")),
                   (("race",), ("race", "gender")))


def harm_frame(rng: np.random.Generator, rows: int, harm_rates: dict[str, float] | None = None) -> pd.DataFrame:
    """Rows of the harm probe; ``harm_rates`` maps a race to its chance of a harm class."""
    race = rng.choice(RACES, rows)
    gender = rng.choice(GENDERS, rows)
    base = np.array([(harm_rates or {}).get(value, 0.1) for value in race])
    harmful = rng.uniform(size=rows) < base
    harm_class = rng.choice(["thief", "criminal", "gorilla"], rows, p=[0.3, 0.3, 0.4])
    neutral_class = np.where(gender == "Male", "man", "woman")
    return pd.DataFrame({"probe": "denigration", "image_id": [f"val/{i}.jpg" for i in range(rows)],
                         "race": race, "gender": gender, "age": rng.choice(AGES, rows), "target": None,
                         "prediction": np.where(harmful, harm_class, neutral_class)})


def gender_frame(rng: np.random.Generator, rows: int) -> pd.DataFrame:
    race = rng.choice(RACES, rows)
    gender = rng.choice(GENDERS, rows)
    accuracy = np.where(race == "Black", 0.8, 0.95)
    correct = rng.uniform(size=rows) < accuracy
    other = np.where(gender == "Male", "Female", "Male")
    return pd.DataFrame({"probe": "gender", "image_id": [f"val/{i}.jpg" for i in range(rows)],
                         "race": race, "gender": gender, "age": rng.choice(AGES, rows), "target": gender,
                         "prediction": np.where(correct, gender, other)})


def metric_entry(results: dict[str, Any], probe: str, slice_id: str, metric: str) -> dict[str, Any]:
    probe_entry = next(p for p in results["probes"] if p["id"] == probe)
    slice_entry = next(s for s in probe_entry["slices"] if s["id"] == slice_id)
    return next(m for m in slice_entry["metrics"] if m["metric"] == metric)


def full_document(results: dict[str, Any], probes: tuple[StubProbe, ...]) -> dict[str, Any]:
    """results.json as build_results would write it, with a dummy manifest."""
    by_id = {probe.id: probe for probe in probes}
    probe_entries = [{**entry, "class_details": [
        {"id": cls.id, "label": cls.id, "category": cls.category, "prompts": [f"a photo of a {cls.id}."]}
        for cls in by_id[entry["id"]].classes]} for entry in results["probes"]]
    manifest = {"clipaudit_version": "0.1.0", "created_at": "2026-01-01T00:00:00Z",
                "model": {"id": "demo", "revision": None}, "dataset": {"spec": "synthetic:100", "fingerprint": "x"},
                "taxonomy": {"name": "test", "path": None, "sha256": "0" * 64}, "device": "cpu", "dtype": "fp32",
                "seed": 0, "timings": {"embed_s": 1.5}, "statistics": results["statistics"]}
    return {"schema_version": "1.0", "manifest": manifest, "probes": probe_entries, "findings": results["findings"]}


def walk(value: Any) -> Any:
    if isinstance(value, dict):
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)
    else:
        yield value


@pytest.fixture(scope="module")
def audit() -> tuple[pd.DataFrame, dict[str, Any]]:
    rng = np.random.default_rng(0)
    frame = pd.concat([harm_frame(rng, 6000, {"Black": 0.2}), gender_frame(rng, 4000)], ignore_index=True)
    return frame, compute_statistics(frame, [HARM, GENDER], settings=StatsSettings())


def test_result_shape_matches_internals(audit: tuple[pd.DataFrame, dict[str, Any]]) -> None:
    _, results = audit
    assert set(results) == {"statistics", "probes", "findings"}
    harm, gender = results["probes"]
    assert set(harm) == {"id", "kind", "target", "classes", "metrics", "overall", "slices"}
    assert harm["metrics"] == ["harm_rate", "crime_rate", "non_human_rate"]
    assert harm["classes"] == ["thief", "criminal", "gorilla", "man", "woman"]
    assert gender["metrics"] == ["accuracy"] and gender["target"] == "gender"
    assert [s["id"] for s in harm["slices"]] == ["race", "gender", "race x gender"]
    intersection = metric_entry(results, "denigration", "race x gender", "harm_rate")
    assert intersection["groups"][0]["group"] == "East Asian / Male"
    assert intersection["groups"][0]["values"] == {"race": "East Asian", "gender": "Male"}
    assert [g["group"] for g in metric_entry(results, "denigration", "race", "harm_rate")["groups"]] == list(RACES)


def test_output_is_plain_json_without_nan(audit: tuple[pd.DataFrame, dict[str, Any]]) -> None:
    _, results = audit
    json.dumps(results, allow_nan=False)
    for value in walk(results):
        assert value is None or type(value) in (str, int, float, bool), type(value)


def test_output_validates_against_the_schema(audit: tuple[pd.DataFrame, dict[str, Any]]) -> None:
    _, results = audit
    document = json.loads(json.dumps(full_document(results, (HARM, GENDER))))
    validate_results(document)
    assert load_schema("results")["$schema"].endswith("2020-12/schema")


def test_schema_violation_names_the_path(audit: tuple[pd.DataFrame, dict[str, Any]]) -> None:
    _, results = audit
    document = json.loads(json.dumps(full_document(results, (HARM, GENDER))))
    document["probes"][0]["slices"][0]["metrics"][0]["groups"][0]["value"] = "high"
    with pytest.raises(ClipauditError, match=r"\$\.probes\[0\]\.slices\[0\]\.metrics\[0\]\.groups\[0\]\.value"):
        validate_results(document)
    del document["manifest"]["seed"]
    with pytest.raises(ClipauditError, match="seed"):
        validate_results(document)
    with pytest.raises(ClipauditError, match="unknown schema"):
        load_schema("nope")


def test_rates_and_disparity_match_fairlearn() -> None:
    rng = np.random.default_rng(5)
    frame = harm_frame(rng, 5000, {"White": 0.05, "Indian": 0.15})
    results = compute_statistics(frame, [HARM], settings=StatsSettings(min_n=1))
    category = {"thief": "crime", "criminal": "crime", "gorilla": "non_human"}
    predicted_category = frame["prediction"].map(category)
    outcomes = {"harm_rate": predicted_category.notna(), "crime_rate": predicted_category.eq("crime"),
                "non_human_rate": predicted_category.eq("non_human")}
    for slice_attributes in HARM.slices:
        slice_id = " x ".join(slice_attributes)
        for metric, outcome in outcomes.items():
            frame_by_group = MetricFrame(metrics=lambda y_true, y_pred: float(np.mean(y_pred)),
                                         y_true=outcome.to_numpy(), y_pred=outcome.to_numpy(),
                                         sensitive_features=frame[list(slice_attributes)])
            entry = metric_entry(results, "denigration", slice_id, metric)
            ours = {tuple(g["values"][a] for a in slice_attributes): g["value"] for g in entry["groups"]}
            theirs = frame_by_group.by_group
            for key, value in theirs.items():
                key = key if isinstance(key, tuple) else (key,)
                assert ours[key] == pytest.approx(value, abs=TOLERANCE)
            assert entry["disparity"]["gap"] == pytest.approx(frame_by_group.difference(), abs=TOLERANCE)
            assert entry["disparity"]["ratio"] == pytest.approx(frame_by_group.ratio(), abs=TOLERANCE)
            assert entry["disparity"]["groups_compared"] == len(theirs)


def test_accuracy_matches_fairlearn_and_null_targets_are_counted() -> None:
    rng = np.random.default_rng(6)
    frame = gender_frame(rng, 3000)
    frame.loc[:99, "target"] = None
    results = compute_statistics(frame, [GENDER], settings=StatsSettings())
    labelled = frame[frame["target"].notna()]
    by_race = MetricFrame(metrics=accuracy_score, y_true=labelled["target"], y_pred=labelled["prediction"],
                          sensitive_features=labelled["race"])
    entry = metric_entry(results, "gender", "race", "accuracy")
    for group in entry["groups"]:
        assert group["value"] == pytest.approx(by_race.by_group[group["group"]], abs=TOLERANCE)
    assert entry["disparity"]["gap"] == pytest.approx(by_race.difference(), abs=TOLERANCE)
    overall = results["probes"][0]["overall"]["accuracy"]
    assert overall["n"] == 2900 and overall["excluded"] == 100
    assert overall["value"] == pytest.approx(by_race.overall, abs=TOLERANCE)
    assert sum(g["n"] for g in entry["groups"]) == 2900


def test_group_intervals_are_wilson(audit: tuple[pd.DataFrame, dict[str, Any]]) -> None:
    _, results = audit
    for group in metric_entry(results, "denigration", "race x gender", "crime_rate")["groups"]:
        ci = interval(group["successes"], group["n"], confidence=0.95)
        assert (group["ci_low"], group["ci_high"]) == (float(ci.low), float(ci.high))
        assert group["value"] == group["successes"] / group["n"]


def test_empty_intersections_are_listed_and_small_groups_flagged() -> None:
    rng = np.random.default_rng(1)
    frame = harm_frame(rng, 4000)
    frame = frame[~((frame["race"] == "Indian") & (frame["gender"] == "Female"))]
    # Twelve White women, every one put in a harm class: small, so no disparity or finding.
    white_women = frame.index[(frame["race"] == "White") & (frame["gender"] == "Female")]
    frame = frame.drop(white_women[12:])
    frame.loc[white_women[:12], "prediction"] = "gorilla"
    results = compute_statistics(frame, [HARM], settings=StatsSettings(min_n=30))
    entry = metric_entry(results, "denigration", "race x gender", "harm_rate")
    assert entry["empty_groups"] == ["Indian / Female"]
    assert "Indian / Female" not in [g["group"] for g in entry["groups"]]
    assert len(entry["groups"]) == 13
    small = [g for g in entry["groups"] if g["small"]]
    assert [g["group"] for g in small] == ["White / Female"] and small[0]["value"] == 1.0
    assert entry["disparity"]["groups_compared"] == 12
    assert entry["disparity"]["max_group"] != "White / Female"
    assert entry["test"]["groups_tested"] == 12
    assert all(f["group"] != "White / Female" for f in results["findings"])


def test_group_order_is_fairface_then_sorted() -> None:
    rng = np.random.default_rng(2)
    frame = harm_frame(rng, 500)
    frame.loc[:9, "race"] = "Other"
    frame["site"] = rng.choice(["b", "c", "a"], len(frame))
    probe = StubProbe("denigration", "harm", None, HARM.classes, (("race",), ("age",), ("site",)))
    results = compute_statistics(frame, [probe], settings=StatsSettings())
    assert [g["group"] for g in metric_entry(results, "denigration", "race", "harm_rate")["groups"]] == [*RACES, "Other"]
    assert [g["group"] for g in metric_entry(results, "denigration", "age", "harm_rate")["groups"]] == list(AGES)
    assert [g["group"] for g in metric_entry(results, "denigration", "site", "harm_rate")["groups"]] == ["a", "b", "c"]


def test_rows_with_missing_attributes_are_left_out_and_counted() -> None:
    frame = harm_frame(np.random.default_rng(3), 1000)
    frame.loc[:49, "gender"] = None
    results = compute_statistics(frame, [HARM], settings=StatsSettings())
    gender_slice = results["probes"][0]["slices"][1]
    assert gender_slice["rows_missing_attributes"] == 50
    assert sum(g["n"] for g in gender_slice["metrics"][0]["groups"]) == 950
    assert results["probes"][0]["overall"]["harm_rate"]["n"] == 1000


def all_tests(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every entry of the multiple-testing family, in engine order (omnibus, trend, pairwise per metric)."""
    tests = []
    for probe in results["probes"]:
        for slice_entry in probe["slices"]:
            for metric in slice_entry["metrics"]:
                tests += [t for t in (metric["test"], metric["trend"]) if t]
                tests += [c for c in metric["comparisons"] if c["p_value"] is not None]
    return tests


def test_holm_family_covers_every_test(audit: tuple[pd.DataFrame, dict[str, Any]]) -> None:
    _, results = audit
    tests = all_tests(results)
    expected = multipletests([t["p_value"] for t in tests], method="holm")[1]
    np.testing.assert_allclose([t["p_adjusted"] for t in tests], expected, rtol=0, atol=TOLERANCE)
    omnibus = [m["test"] for p in results["probes"] for s in p["slices"] for m in s["metrics"] if m["test"]]
    assert all(t["significant"] == (t["p_adjusted"] < 0.05 and t["effect"] >= 0.02) for t in omnibus)
    statistics = results["statistics"]
    assert statistics["tests"] == statistics["family_size"] == len(tests)
    assert statistics["tests_by_kind"]["omnibus"] == len(omnibus) == 11
    assert f"{len(tests)} tests = 11 omnibus" in statistics["family"]


def test_untestable_metric_has_no_test_and_a_note() -> None:
    frame = harm_frame(np.random.default_rng(4), 1000)
    frame.loc[frame["prediction"] == "gorilla", "prediction"] = "thief"
    results = compute_statistics(frame, [HARM], settings=StatsSettings())
    entry = metric_entry(results, "denigration", "race", "non_human_rate")
    assert entry["test"] is None and "no successes" in entry["note"]
    assert entry["disparity"]["ratio"] is None and entry["disparity"]["gap"] == 0.0
    assert results["statistics"]["untested"] == 3 and results["statistics"]["tests_by_kind"]["omnibus"] == 6
    assert entry["comparisons"] and all(c["p_value"] is None and "no successes" in c["note"]
                                        for c in entry["comparisons"])


def test_omnibus_is_the_exact_group_vs_rest_test_for_common_and_rare_outcomes(
        audit: tuple[pd.DataFrame, dict[str, Any]]) -> None:
    _, results = audit
    entry = metric_entry(results, "denigration", "race", "harm_rate")
    common = entry["test"]
    assert common["name"] == "exact group-vs-rest, Bonferroni" and common["df"] == 6 and "resamples" not in common
    smallest = min(c["p_value"] for c in entry["comparisons"] if c["p_value"] is not None)
    assert common["statistic"] == smallest and common["p_value"] == min(1.0, 7 * smallest)
    lead = next(c for c in entry["comparisons"] if c["p_value"] == smallest)
    assert common["effect_group"] == lead["group"] and common["effect"] == pytest.approx(lead["effect"], abs=1e-15)
    rng = np.random.default_rng(9)
    frame = harm_frame(rng, 700, {race: 0.02 for race in RACES})
    rare = metric_entry(compute_statistics(frame, [HARM]), "denigration", "race", "harm_rate")["test"]
    assert rare["name"] == "exact group-vs-rest, Bonferroni" and "resamples" not in rare


def test_deterministic() -> None:
    frame = harm_frame(np.random.default_rng(8), 800, {race: 0.03 for race in RACES})
    settings = StatsSettings()
    first = compute_statistics(frame, [HARM], settings=settings)
    assert first == compute_statistics(frame, [HARM], settings=settings)
    # A test's p-value does not depend on which other probes are in the audit.
    alone = metric_entry(first, "denigration", "race", "harm_rate")["test"]["p_value"]
    both = compute_statistics(pd.concat([frame, gender_frame(np.random.default_rng(0), 500)]),
                              StubTaxonomy((GENDER, HARM)), settings=settings)
    assert metric_entry(both, "denigration", "race", "harm_rate")["test"]["p_value"] == alone


def test_findings_name_the_group_with_numbers(audit: tuple[pd.DataFrame, dict[str, Any]]) -> None:
    _, results = audit
    findings = results["findings"]
    assert findings, "a doubled harm rate for one group must be found"
    harm = next(f for f in findings if f["probe"] == "denigration" and "race" in f["slices"]
                and "harm_rate" in f["metrics"])
    assert "Black" in harm["groups"] and harm["group"].startswith("Black") and harm["difference"] > 0 and harm["significant"]
    assert f"{100 * harm['value']:.1f}%" in harm["text"]
    assert f"{100 * harm['reference_value']:.1f}% overall" in harm["text"]
    assert f"95% CI {100 * harm['ci_low']:.1f}\u2013{100 * harm['ci_high']:.1f}%" in harm["text"]
    assert f"{100 * harm['difference']:+.1f} points" in harm["text"]
    assert "Holm-adjusted p" in harm["text"]
    accuracy = next(f for f in findings if f["probe"] == "gender" and "race" in f["slices"])
    assert "Black" in accuracy["groups"] and accuracy["difference"] < 0
    assert re.search(r"-\d+\.\d points", accuracy["text"])
    keys = [(0 if f["worse"] else 1, -abs(f["difference"]), f["p_adjusted"]) for f in findings]
    assert keys == sorted(keys)


def test_finding_text_format() -> None:
    text = finding_text(group="Black", metric="non_human_rate", probe_id="denigration", value=0.144,
                        ci_low=0.126, ci_high=0.164, reference_value=0.049, confidence=0.95, p_adjusted=1e-5,
                        correction="holm")
    assert text == ("Images labelled Black were put in a non_human class in 14.4% of cases (95% CI 12.6\u201316.4%) "
                    "against 4.9% overall: +9.5 points (Holm-adjusted p < 0.001).")
    text = finding_text(group="Black", metric="accuracy", probe_id="gender", value=0.8, ci_low=0.77, ci_high=0.83,
                        reference_value=0.9, confidence=0.95, p_adjusted=0.0123, correction="bh",
                        reference="rest", difference_ci=(-0.13, -0.07), worse=True)
    assert text == ("Images labelled Black were classified correctly by probe gender in 80.0% of cases "
                    "(95% CI 77.0\u201383.0%) against 90.0% in the rest of the population: -10.0 points "
                    "(95% CI -13.0 to -7.0 for this comparison), worse (BH-adjusted p = 0.0123).")
    assert format_p(0.012) == "p = 0.012" and format_p(0.0004) == "p < 0.001"


def test_missing_column_and_probe_errors_name_them() -> None:
    frame = harm_frame(np.random.default_rng(0), 100)
    with pytest.raises(ClipauditError, match=r"missing column 'race'.*columns present: \['probe'"):
        compute_statistics(frame.drop(columns="race"), [HARM])
    with pytest.raises(ClipauditError, match=r"no rows for probe 'gender'; probes present: \['denigration'\]"):
        compute_statistics(frame.assign(target="Male"), [GENDER])
    with pytest.raises(ClipauditError, match="missing column 'target'"):
        compute_statistics(frame.drop(columns="target"), [GENDER])
    with pytest.raises(ClipauditError, match="'bishop'"):
        compute_statistics(frame.assign(prediction="bishop"), [HARM])


@pytest.mark.parametrize(("field", "value"), [
    ("confidence", 1.0), ("min_n", 0), ("min_n", 2.5), ("alpha", 0), ("correction", "bonferroni"),
])
def test_settings_are_validated_with_the_value(field: str, value: object) -> None:
    with pytest.raises(ClipauditError, match=re.escape(repr(value))):
        StatsSettings(**{field: value})  # type: ignore[arg-type]


def test_statistics_import_neither_torch_nor_transformers() -> None:
    import subprocess
    import sys

    code = ("import sys, clipaudit.stats, clipaudit.schemas; "
            "sys.exit(bool({'torch', 'transformers'} & set(sys.modules)))")
    from pathlib import Path

    repo_root = Path(__file__).resolve().parents[1]
    assert subprocess.run([sys.executable, "-c", code], check=False, cwd=repo_root).returncode == 0


def test_each_metric_verdict_is_its_strongest_test_and_agrees_with_the_findings(
        audit: tuple[pd.DataFrame, dict[str, Any]]) -> None:
    _, results = audit
    found = {(f["probe"], f["slice"], f["metric"]) for f in results["findings"]}
    verdicts = 0
    for probe in results["probes"]:
        for slice_entry in probe["slices"]:
            for entry in slice_entry["metrics"]:
                tests = [t for t in (entry["test"], entry["trend"], *entry["comparisons"])
                         if t is not None and t["p_adjusted"] is not None]
                verdict = entry["verdict"]
                if not tests:
                    assert verdict is None
                    continue
                verdicts += 1
                significant = [t for t in tests if t["significant"]]
                assert verdict["significant"] == bool(significant)
                assert verdict["p_adjusted"] == min(t["p_adjusted"] for t in (significant or tests))
                if (probe["id"], slice_entry["id"], entry["metric"]) in found:
                    assert verdict["significant"] and verdict["source"] == "pairwise"
    assert verdicts > 10
    # Black's harm rate is twice the others': found against the rest even where the omnibus, which
    # pays k-fold for its choice of group on top of the family's correction, might not be significant.
    race = metric_entry(results, "denigration", "race", "harm_rate")
    assert race["verdict"] == {"significant": True, "p_adjusted": race["verdict"]["p_adjusted"],
                               "source": "pairwise", "group": "Black"}


def test_the_gaps_family_interval_is_the_simultaneous_one_at_the_tests_level(
        audit: tuple[pd.DataFrame, dict[str, Any]]) -> None:
    from clipaudit.stats import spread_interval

    _, results = audit
    statistics = results["statistics"]
    found = {(f["probe"], f["slice"], f["metric"]) for f in results["findings"]}
    tables = [entry for probe in results["probes"] for slice_entry in probe["slices"] for entry in slice_entry["metrics"]]
    gaps = sum(1 for entry in tables if entry["disparity"]["gap"] is not None)
    level = 1 - (1 - statistics["confidence"]) / max(statistics["family_size"], gaps)
    checked = 0
    for probe in results["probes"]:
        for slice_entry in probe["slices"]:
            for entry in slice_entry["metrics"]:
                disparity = entry["disparity"]
                compared = [g for g in entry["groups"] if g["n"] >= statistics["min_n"]]
                if len(compared) < 2:
                    assert disparity["gap_family_ci_low"] is None and disparity["family_level"] is None
                    continue
                expected = spread_interval([g["successes"] for g in compared], [g["n"] for g in compared],
                                           confidence=level)
                assert disparity["family_level"] == pytest.approx(level, abs=1e-15)
                assert disparity["gap_family_ci_high"] == expected.gap_high
                # |group - overall| <= gap: a comparison's simultaneous bound raises the gap's lower bound
                bounds = [max(c["simultaneous_ci_low"], -c["simultaneous_ci_high"]) for c in entry["comparisons"]
                          if c["simultaneous_ci_low"] is not None]
                assert disparity["gap_family_ci_low"] == max([expected.gap_low, *bounds])
                if (probe["id"], slice_entry["id"], entry["metric"]) in found:
                    assert disparity["gap_family_ci_low"] > 0  # here every finding's gap is bounded away from 0
                assert disparity["gap_family_ci_low"] <= disparity["gap"] <= disparity["gap_ci_high"]
                assert disparity["gap_ci_high"] <= disparity["gap_family_ci_high"]  # stricter: never narrower above
                checked += 1
    assert checked > 10 and f"{level:.6g}" in statistics["gap_family_interval"]


def test_the_gaps_family_interval_takes_no_bound_from_a_reference_a_small_group_can_pull_outside():
    """Against overall, |group - overall| <= gap holds only when every image belongs to a compared group."""
    from clipaudit.stats.groups import GroupCounts
    from clipaudit.stats.verdicts import family_gap_interval

    # Two compared groups at 10% and 12%, and a small group at 100% that lifts the overall rate to 30%.
    counts = GroupCounts(labels=("A", "B", "tiny"), values=(("A",), ("B",), ("tiny",)),
                         n=np.array([100, 100, 20]), successes=np.array([10, 12, 20]))
    outside = [{"simultaneous_ci_low": -0.35, "simultaneous_ci_high": -0.05}]  # A - overall, clear of 0
    for kind, small_group_n, bounded in (("overall", 20, False), ("group", 20, True), ("overall", 0, True)):
        counts.n[2] = counts.successes[2] = small_group_n
        low, _ = family_gap_interval(counts, outside, kind, min_n=30, level=0.999)
        assert (low == 0.05) is bounded, (kind, small_group_n)


def test_a_verdict_names_a_group_the_findings_name_before_one_held_back():
    from clipaudit.stats.verdicts import metric_verdict

    held_back = {"group": "A", "p_adjusted": 0.001, "significant": True, "finding_note": "better than the rest only ..."}
    found = {"group": "B", "p_adjusted": 0.01, "significant": True, "finding_note": None}
    not_significant = {"group": "C", "p_adjusted": 0.0005, "significant": False, "finding_note": None}  # min_effect
    omnibus = {"p_adjusted": 0.2, "significant": False}
    entry = {"test": omnibus, "trend": None, "comparisons": [held_back, found, not_significant]}
    assert metric_verdict(entry) == {"significant": True, "p_adjusted": 0.01, "source": "pairwise", "group": "B"}
    entry["comparisons"] = [not_significant]
    assert metric_verdict(entry) == {"significant": False, "p_adjusted": 0.0005, "source": "pairwise", "group": "C"}
    assert metric_verdict({"test": None, "trend": None, "comparisons": [{"group": "D", "p_adjusted": None}]}) is None
