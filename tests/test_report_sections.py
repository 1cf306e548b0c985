"""Report sections beyond the tables: comparisons, trend, MDD, confusion, intended use, caveats, protocol."""
from __future__ import annotations

import copy
import re

import pytest

from clipaudit.report import render_report
from clipaudit.report.plots import heatmap_chart
from clipaudit.report.view import build_report_view, format_signed_interval
from test_report import XSS_CLASS, make_results, parse


def _text(html: str) -> str:
    return " ".join("".join(parse(html).text_chunks).split())


def make_results_with_extras() -> dict:
    """make_results() plus the fields the upgraded statistics add (comparisons, trend, mdd, confusion)."""
    results = make_results()
    results["manifest"]["taxonomy"]["templates"] = ["a photo of a {label}."]
    results["manifest"]["statistics"]["min_effect"] = 0.02
    denigration_race_harm = results["probes"][1]["slices"][0]["metrics"][0]
    denigration_race_harm["reference"] = {"spec": "overall", "kind": "overall", "group": None}
    denigration_race_harm["direction"] = "higher is worse"
    comparisons = []
    for group in denigration_race_harm["groups"]:
        group["mdd"] = 0.061
        comparisons.append({
            "group": group["group"], "difference": group["value"] - 51 / 738,
            "difference_ci_low": group["value"] - 51 / 738 - 0.031, "difference_ci_high": group["value"] - 51 / 738 + 0.045,
            "test": "two-proportion z", "p_value": 0.0004, "p_adjusted": 0.0029 if group["group"] == "Black" else 0.9,
            "significant": group["group"] == "Black", "worse": group["group"] == "Black", "note": None,
        })
    denigration_race_harm["comparisons"] = comparisons
    denigration_race_harm["trend"] = {"name": "cochran-armitage trend", "statistic": 2.5, "df": 1,
                                      "p_value": 0.012, "p_adjusted": 0.05, "significant": False}
    results["probes"][0]["confusion"] = {"labels": ["man", "woman"], "counts": [[350, 20], [16, 352]]}
    return results


@pytest.fixture(scope="module")
def extras() -> dict:
    return make_results_with_extras()


@pytest.fixture(scope="module")
def html(extras: dict) -> str:
    return render_report(extras)


def test_comparisons_show_difference_interval_and_adjusted_p(extras: dict, html: str) -> None:
    black = extras["probes"][1]["slices"][0]["metrics"][0]["comparisons"][1]
    assert black["group"] == "Black"
    assert format_signed_interval(black["difference_ci_low"], black["difference_ci_high"]) in html
    assert "Difference (points)" in html and "MDD (points)" in html
    assert '<td class="num">6.1</td>' in html  # MDD in points
    assert "significant, worse" in html
    assert "each group against overall" in html


def test_tables_without_comparisons_keep_the_short_layout(html: str) -> None:
    gender_race = re.search(r'id="probe-gender--race--accuracy".*?</table>', html, flags=re.S)
    assert gender_race is not None
    assert "Difference (points)" not in gender_race.group(0)


def test_trend_test_is_shown(html: str) -> None:
    assert "Trend test" in html and "cochran-armitage trend" in html


def test_confusion_matrix_table_and_chart(html: str) -> None:
    parsed = parse(html)
    assert len([t for t in parsed.tags("table") if t.get("class") == "confusion"]) == 1
    svg = [s for s in parsed.tags("svg") if str(s.get("id")).startswith("confusion_")]
    assert len(svg) == 1 and "man: 350 of 370 correct" in str(svg[0].get("aria-label"))


@pytest.mark.parametrize("bad", [None, "x", {"labels": ["a"]}, {"labels": ["a", "b"], "counts": [[1, 2]]},
                                 {"labels": ["a", "b"], "counts": [[1], [2]]}])
def test_malformed_confusion_is_left_out(bad: object) -> None:
    results = make_results()
    results["probes"][0]["confusion"] = bad
    assert build_report_view(results).probes[0].confusion is None


def test_default_intended_use_repeats_the_clip_model_card_warning(extras: dict, html: str) -> None:
    text = _text(html)
    assert "surveillance and facial recognition" in text
    assert "defaults after the CLIP model card" in text


def test_intended_use_from_taxonomy_then_report_config(extras: dict) -> None:
    results = copy.deepcopy(extras)
    results["manifest"]["taxonomy"]["intended_use"] = "Taxonomy says <b>research</b>."
    results["manifest"]["taxonomy"]["out_of_scope_use"] = "Taxonomy forbids deployment."
    text = _text(render_report(results))
    assert "Taxonomy says <b>research</b>." in text and "Stated by the taxonomy." in text
    configured = build_report_view(results, report_config={"intended_use": "Config wins."})
    assert configured.intended_use == "Config wins."
    assert configured.out_of_scope_use == "Taxonomy forbids deployment."


def test_caveats_list_small_groups_denigrating_classes_and_class_design(html: str) -> None:
    caveats = re.search(r'<ul class="caveats">(.*?)</ul>', html, flags=re.S)
    assert caveats is not None
    text = " ".join(caveats.group(1).split())
    assert "race = Middle Eastern (n = 18)" in text
    assert "thief, criminal, gorilla" in text
    assert "how they are worded" in text
    assert "synthetic" not in text  # fairface data: no demo caveat


def test_synthetic_data_gets_a_caveat_and_a_notice() -> None:
    results = make_results()
    results["manifest"]["dataset"]["spec"] = "synthetic:630"
    results["manifest"]["model"] = {"id": "clipaudit demo (tiny CLIP)", "spec": "demo"}
    view = build_report_view(results)
    assert view.synthetic_data and view.demo_model
    assert any("synthetic" in caveat for caveat in view.caveats)
    assert "Demonstration." in render_report(results)


def test_protocol_shows_sha256_templates_and_every_prompt(extras: dict, html: str) -> None:
    text = _text(html)
    assert extras["manifest"]["taxonomy"]["sha256"] in text
    assert "a photo of a {label}." in text
    assert f"a photo of a {XSS_CLASS}." in text


def test_better_findings_come_after_worse_ones(extras: dict) -> None:
    results = copy.deepcopy(extras)
    results["findings"].insert(0, {
        "probe": "gender", "slice": "race", "group": "White", "metric": "accuracy", "value": 0.97,
        "reference_value": 0.95, "difference": 0.5, "p_adjusted": 0.001, "significant": True, "worse": False,
        "text": "Better than overall.",
    })
    findings = build_report_view(results).findings
    assert findings[-1].text == "Better than overall." and findings[-1].worse is False
    assert all(finding.worse for finding in findings[:-1])


def test_factors_and_group_sizes(html: str) -> None:
    text = _text(html)
    assert "Images per race group" in text
    assert re.search(r"<th scope=\"row\">Black</th><td class=\"num\">230</td>", html)


def test_heatmap_marks_empty_and_small_cells_and_escapes_labels(extras: dict) -> None:
    view = build_report_view(extras)
    table = next(t for t in view.tables() if t.slice_id == "race x gender" and t.metric == "harm_rate")
    chart = heatmap_chart(table, confidence_level=0.95)
    assert chart is not None
    assert "Middle Eastern / Female no images" in chart.alt
    svg = str(chart.svg)
    assert "no images" in svg and "n=18" in svg
    hostile = copy.deepcopy(extras)
    group = hostile["probes"][1]["slices"][1]["metrics"][0]["groups"][0]
    group["values"]["race"] = XSS_CLASS
    hostile_table = next(t for t in build_report_view(hostile).tables()
                         if t.slice_id == "race x gender" and t.metric == "harm_rate")
    hostile_chart = heatmap_chart(hostile_table, confidence_level=0.95)
    assert hostile_chart is not None and "<script" not in str(hostile_chart.svg)


def test_results_without_new_fields_still_render() -> None:
    results = make_results()
    for probe in results["probes"]:
        for slice_ in probe["slices"]:
            for metric in slice_["metrics"]:
                metric.pop("disparity")
                metric["test"] = None
                for group in metric["groups"]:
                    group.pop("values")
    del results["manifest"]["statistics"]
    output = render_report(results)
    assert parse(output).problems == []
