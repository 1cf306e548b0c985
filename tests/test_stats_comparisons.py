"""Pairwise comparisons, references, trend entries and the new result fields of the engine."""
from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame
from scipy.stats import fisher_exact
from statsmodels.stats.proportion import confint_proportions_2indep

from clipaudit.errors import ClipauditError
from clipaudit.schemas import validate_results
from clipaudit.stats import StatsSettings, compute_statistics
from test_stats_engine import AGES, GENDER, HARM, StubProbe, full_document, harm_frame, metric_entry

TOLERANCE = 1e-9
AGE_PROBE = StubProbe("denigration", "harm", None, HARM.classes, (("race",), ("age",), ("race", "gender")))


@pytest.fixture(scope="module")
def planted() -> pd.DataFrame:
    return harm_frame(np.random.default_rng(10), 7000, {"Black": 0.22, "White": 0.05})


def comparison(entry: dict[str, Any], group: str) -> dict[str, Any]:
    return next(c for c in entry["comparisons"] if c["group"] == group)


def test_overall_reference_intervals_are_group_vs_rest_carried_over(planted: pd.DataFrame) -> None:
    results = compute_statistics(planted, [HARM], settings=StatsSettings())
    entry = metric_entry(results, "denigration", "race", "harm_rate")
    assert entry["reference"]["kind"] == "overall" and entry["reference"]["n"] == 7000
    total_k, total_n = entry["reference"]["successes"], entry["reference"]["n"]
    for group in entry["groups"]:
        item = comparison(entry, group["group"])
        k1, n1 = group["successes"], group["n"]
        k2, n2 = total_k - k1, total_n - n1
        weight = n1 / total_n
        low, high = confint_proportions_2indep(k1, n1, k2, n2, method="newcomb", compare="diff")
        assert item["difference"] == pytest.approx(k1 / n1 - total_k / total_n, abs=1e-15)
        assert item["difference"] == pytest.approx((1 - weight) * (k1 / n1 - k2 / n2), abs=1e-12)
        assert item["difference_ci_low"] == pytest.approx((1 - weight) * low, abs=TOLERANCE)
        assert item["difference_ci_high"] == pytest.approx((1 - weight) * high, abs=TOLERANCE)
        assert item["difference_vs_rest_ci_low"] == pytest.approx(low, abs=TOLERANCE)
        rr_low, rr_high = confint_proportions_2indep(k1, n1, k2, n2, method="log", compare="ratio")
        assert item["ratio"] == pytest.approx((k1 / n1) / (total_k / total_n), rel=1e-12)
        assert item["ratio_ci_low"] == pytest.approx(rr_low / (weight * rr_low + 1 - weight), rel=1e-9)
        assert item["ratio_ci_high"] == pytest.approx(rr_high / (weight * rr_high + 1 - weight), rel=1e-9)
        assert item["ratio_ci_low"] <= item["ratio"] <= item["ratio_ci_high"]
        or_low, or_high = confint_proportions_2indep(k1, n1, k2, n2, method="logit", compare="odds-ratio")
        assert (item["odds_ratio_ci_low"], item["odds_ratio_ci_high"]) == pytest.approx((or_low, or_high), rel=1e-9)
        assert item["test"] == "fisher exact" and item["compared_with"] == "rest"
        table = [[k1, n1 - k1], [k2, n2 - k2]]
        doubled = 2 * min(fisher_exact(table, alternative="greater").pvalue, fisher_exact(table, alternative="less").pvalue)
        assert item["p_value"] == pytest.approx(min(1.0, doubled), abs=TOLERANCE)
        # The effect compared with min_effect is the difference the test compares: group - rest.
        assert item["effect"] == pytest.approx(abs(k1 / n1 - k2 / n2), abs=1e-15)
        assert item["simultaneous_ci_low"] <= item["difference_ci_low"] <= item["difference_ci_high"] \
            <= item["simultaneous_ci_high"]
    black, white = comparison(entry, "Black"), comparison(entry, "White")
    assert black["significant"] and black["worse"] and black["direction"] == "higher"
    assert white["significant"] and not white["worse"]


def test_largest_difference_to_overall_matches_fairlearn(planted: pd.DataFrame) -> None:
    results = compute_statistics(planted, [HARM], settings=StatsSettings(min_n=1))
    outcome = planted["prediction"].isin(["thief", "criminal", "gorilla"]).to_numpy()
    frame = MetricFrame(metrics=lambda y_true, y_pred: float(np.mean(y_pred)), y_true=outcome, y_pred=outcome,
                        sensitive_features=planted[["race", "gender"]])
    entry = metric_entry(results, "denigration", "race x gender", "harm_rate")
    largest = max(abs(c["difference"]) for c in entry["comparisons"])
    assert largest == pytest.approx(frame.difference(method="to_overall"), abs=TOLERANCE)
    assert entry["reference"]["value"] == pytest.approx(frame.overall, abs=TOLERANCE)


@pytest.mark.parametrize("spec", ["rest", "largest", "best", "group:White"])
def test_reference_options(planted: pd.DataFrame, spec: str) -> None:
    results = compute_statistics(planted, [HARM], settings=StatsSettings(reference=spec))
    entry = metric_entry(results, "denigration", "race", "harm_rate")
    groups = {g["group"]: g for g in entry["groups"]}
    reference = entry["reference"]
    if spec == "rest":
        assert reference["kind"] == "rest" and reference["value"] is None
        black = comparison(entry, "Black")
        assert black["difference"] == pytest.approx(black["difference_vs_rest"], abs=0)
        assert black["reference_n"] == 7000 - groups["Black"]["n"]
        return
    expected = {"largest": max(groups, key=lambda g: groups[g]["n"]), "best": "White", "group:White": "White"}[spec]
    assert reference["kind"] == "group" and reference["group"] == expected
    assert expected not in [c["group"] for c in entry["comparisons"]]
    assert groups[expected]["mdd"] is None
    for item in entry["comparisons"]:
        k1, n1 = item["successes"], item["n"]
        k2, n2 = groups[expected]["successes"], groups[expected]["n"]
        # Against the data-chosen best group, interval and p-value are adjusted for the k - 1 comparisons.
        selection = len(entry["comparisons"]) if spec == "best" else 1
        assert item["selection_factor"] == selection
        assert item["p_value"] == pytest.approx(min(1.0, selection * item["p_value_unselected"]), rel=1e-12)
        low, high = confint_proportions_2indep(k1, n1, k2, n2, method="newcomb", compare="diff",
                                               alpha=0.05 / selection)
        assert (item["difference_ci_low"], item["difference_ci_high"]) == pytest.approx((low, high), abs=TOLERANCE)
        assert item["compared_with"] == expected and item["reference_value"] == k2 / n2


def test_reference_by_probe_and_fallbacks(planted: pd.DataFrame) -> None:
    settings = StatsSettings(reference="group:Black", reference_by_probe={"denigration": "group:Female"})
    results = compute_statistics(planted, [HARM], settings=settings)
    gender = metric_entry(results, "denigration", "gender", "harm_rate")
    assert gender["reference"]["group"] == "Female"
    race = metric_entry(results, "denigration", "race", "harm_rate")
    assert race["reference"]["kind"] == "overall" and "not a group of this slice" in race["reference"]["note"]
    with pytest.raises(ClipauditError, match="group:Martian.*no such group"):
        compute_statistics(planted, [HARM], settings=StatsSettings(reference="group:Martian"))
    with pytest.raises(ClipauditError, match="'gender', which is not audited"):
        compute_statistics(planted, [HARM], settings=StatsSettings(reference_by_probe={"gender": "best"}))


def test_small_groups_get_a_minimum_detectable_difference_and_no_test() -> None:
    frame = harm_frame(np.random.default_rng(1), 3000)
    white_women = frame.index[(frame["race"] == "White") & (frame["gender"] == "Female")]
    frame = frame.drop(white_women[12:])
    results = compute_statistics(frame, [HARM], settings=StatsSettings(min_n=30))
    entry = metric_entry(results, "denigration", "race x gender", "harm_rate")
    small = next(g for g in entry["groups"] if g["group"] == "White / Female")
    assert small["small"] and small["mdd"] > 0.2
    assert entry["small_groups"] == ["White / Female"]
    assert "White / Female" not in [c["group"] for c in entry["comparisons"]]
    large = [g["mdd"] for g in entry["groups"] if not g["small"]]
    assert all(0 < mdd < small["mdd"] for mdd in large)


def test_trend_test_for_age_only(planted: pd.DataFrame) -> None:
    rng = np.random.default_rng(4)
    frame = planted.copy()
    by_age = dict(zip(AGES, np.linspace(0.04, 0.3, len(AGES))))
    harmful = rng.uniform(size=len(frame)) < frame["age"].map(by_age).to_numpy()
    frame["prediction"] = np.where(harmful, "thief", "man")
    results = compute_statistics(frame, [AGE_PROBE], settings=StatsSettings())
    age = metric_entry(results, "denigration", "age", "harm_rate")
    assert age["trend"]["name"] == "cochran-armitage trend" and age["trend"]["statistic"] > 0
    assert age["trend"]["significant"] and age["trend"]["slope"] > 0
    assert age["trend"]["effect"] == pytest.approx(0.26, abs=0.05)
    assert metric_entry(results, "denigration", "race", "harm_rate")["trend"] is None
    # harm_rate and crime_rate; non_human_rate has no successes, so no test at all.
    assert results["statistics"]["tests_by_kind"]["trend"] == 2


def test_significance_needs_the_practical_threshold(planted: pd.DataFrame) -> None:
    strict = compute_statistics(planted, [HARM], settings=StatsSettings(min_effect=0.5))
    assert strict["findings"] == []
    entry = metric_entry(strict, "denigration", "race", "harm_rate")
    assert entry["test"]["p_adjusted"] < 0.05 and not entry["test"]["significant"]
    assert "effect >= 0.5" in strict["statistics"]["significance"]


def test_findings_come_from_pairwise_comparisons_sorted_by_severity(planted: pd.DataFrame) -> None:
    results = compute_statistics(planted, [HARM], settings=StatsSettings(correction="bh"))
    findings = results["findings"]
    pairwise = [c for p in results["probes"] for s in p["slices"] for m in s["metrics"] for c in m["comparisons"]]
    # Every significant comparison is in exactly one finding (as its lead or in ``related``), unless
    # a better-off group held only against a rest containing worse-off groups (finding_note says so).
    listed = sorted((f["slice"], f["metric"], f["group"]) for f in findings) + sorted(
        (r["slice"], r["metric"], r["group"]) for f in findings for r in f["related"])
    expected = [(s["id"], m["metric"], c["group"]) for p in results["probes"] for s in p["slices"]
                for m in s["metrics"] for c in m["comparisons"] if c["significant"] and not c.get("finding_note")]
    assert sorted(listed) == sorted(expected) and len(findings) < sum(c["significant"] for c in pairwise)
    for finding in findings:
        assert finding["significant"] and finding["p_adjusted"] < 0.05 and abs(finding["difference"]) >= 0.02
        assert finding["difference_ci_low"] <= finding["difference"] <= finding["difference_ci_high"]
        assert "BH-adjusted" in finding["text"] and re.search(r"(worse|better) \(", finding["text"])
    # One order for every output: worse off first, then the largest difference, then the smallest p.
    keys = [(0 if f["worse"] else 1, -abs(f["difference"]), f["p_adjusted"]) for f in findings]
    assert keys == sorted(keys)
    assert "false discovery rate" in results["statistics"]["family"]


@pytest.mark.parametrize("settings", [
    StatsSettings(interval="clopper-pearson", correction="bh", reference="best", bootstrap=200),
    StatsSettings(interval="jeffreys", reference="group:Black", bootstrap=0, min_n=200),
    StatsSettings(reference="rest", min_effect=0.0),
])
def test_full_documents_validate_with_every_option(planted: pd.DataFrame, settings: StatsSettings) -> None:
    gender_rows = harm_frame(np.random.default_rng(5), 2000).assign(probe="gender")
    gender_rows["target"] = gender_rows["gender"]
    gender_rows["prediction"] = np.where(np.random.default_rng(6).uniform(size=2000) < 0.9, gender_rows["gender"], "Male")
    frame = pd.concat([planted, gender_rows], ignore_index=True)
    probes = (AGE_PROBE, GENDER)
    results = compute_statistics(frame, list(probes), settings=settings)
    document = json.loads(json.dumps(full_document(results, probes), allow_nan=False))
    validate_results(document)
    entry = metric_entry(results, "denigration", "race", "harm_rate")
    assert all(g["ci_method"] == settings.interval for g in entry["groups"])
    disparity = entry["disparity"]
    assert disparity["gap_ci_low"] <= disparity["gap"] <= disparity["gap_ci_high"]
    assert disparity["ci_kind"] == "simultaneous"
    assert disparity["four_fifths"] in (None, disparity["ratio_ci_high"] < 0.8)


@pytest.mark.parametrize(("field", "value"), [
    ("interval", "wald"), ("min_effect", -0.1), ("min_effect", 1.0), ("reference", "median"),
    ("reference", "group:"), ("bootstrap", -1), ("power", 1.0), ("reference_by_probe", {"x": "nope"}),
])
def test_new_settings_are_validated_with_the_value(field: str, value: object) -> None:
    with pytest.raises(ClipauditError, match=re.escape(repr(value if field != "reference_by_probe" else "nope"))):
        StatsSettings(**{field: value})  # type: ignore[arg-type]


def test_results_do_not_depend_on_the_seed(planted: pd.DataFrame) -> None:
    """No test or interval is Monte Carlo: two seeds give the same document."""
    first = compute_statistics(planted, [AGE_PROBE], settings=StatsSettings(seed=3))
    other = compute_statistics(planted, [AGE_PROBE], settings=StatsSettings(seed=4))
    assert first["probes"] == other["probes"] and first["findings"] == other["findings"]
