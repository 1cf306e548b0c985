"""Report sections beyond the tables: comparisons, trend, MDD, confusion, intended use, caveats, protocol.

Every results document here is made by the real statistics (tests/report_fixtures.py).
"""
from __future__ import annotations

import re

import pytest

import report_fixtures
from clipaudit import format
from clipaudit.report import build_report_view, render_report
from clipaudit.report.plots import heatmap_chart
from clipaudit.stats import StatsSettings
from report_fixtures import MIN_N, XSS_CLASS
from test_report import group_entry, metric_entry, parse, text_of


@pytest.fixture(scope="module")
def results() -> dict:
    return report_fixtures.build()


@pytest.fixture(scope="module")
def html(results: dict) -> str:
    return render_report(results)


def test_comparisons_show_difference_interval_and_adjusted_p(results: dict, html: str) -> None:
    harm_by_race = metric_entry(results, "denigration", "race", "harm_rate")
    black = next(c for c in harm_by_race["comparisons"] if c["group"] == "Black")
    assert black["significant"] and black["worse"]
    assert format.points_range(black["difference_ci_low"], black["difference_ci_high"]) in html
    assert "Difference (points)" in html and "MDD (points)" in html
    mdd = group_entry(results, "denigration", "race", "harm_rate", "Black")["mdd"]
    assert f'<td class="num">{format.points_number(mdd).lstrip("+")}</td>' in html  # MDD in points
    assert "significant, worse" in html and "significant, better" in html
    assert "each group against overall" in html
    # The findings' introduction says why there are fewer findings than significant tests.
    assert results["manifest"]["statistics"]["findings_from"] in html


def test_against_best_no_per_comparison_interval_is_printed() -> None:
    """Against the data-chosen best group no difference interval has its stated coverage
    (benchmarks/stats_validation.py), so results.json has none, the table says why and prints n/a,
    the findings' sentences print no interval of the difference, and the document still validates."""
    from clipaudit.report.exports import render_summary_markdown
    from clipaudit.schemas import validate_results

    best = report_fixtures.build(settings=StatsSettings(min_n=MIN_N, reference="best"))
    validate_results(best)
    harm_by_race = metric_entry(best, "denigration", "race", "harm_rate")
    compared = [c for c in harm_by_race["comparisons"] if c["p_value"] is not None]
    assert compared and all(c["selection_factor"] == len(compared) > 1 for c in compared)
    assert all(c["difference_ci_low"] is None and c["difference_ci_high"] is None for c in compared)
    assert all(c["simultaneous_ci_low"] <= c["difference"] <= c["simultaneous_ci_high"] for c in compared)
    output = render_report(best)
    table = re.search(r'id="probe-denigration--race--harm-rate".*?</table>', output, flags=re.S)
    assert table is not None and "chosen from the data" in table.group(0)
    assert f'<td class="num">{format.NOT_AVAILABLE}</td>' in table.group(0)
    findings = [f for f in best["findings"] if f["reference"] not in ("overall", "rest")]
    assert findings, "the fixture's planted disparity is found against the best group too"
    assert any(finding["difference_ci_low"] is None for finding in findings)
    for finding in findings:  # two groups: no selection, so the per-comparison interval is printed
        assert "simultaneous" not in finding["text"]
        assert ("for this comparison" in finding["text"]) == (finding["difference_ci_low"] is not None)
    render_summary_markdown(best)


def test_tables_without_comparisons_keep_the_short_layout() -> None:
    """With min_n above every group, nothing is tested or compared: short tables, and a caveat says why."""
    untested = report_fixtures.build(settings=StatsSettings(min_n=1000))
    assert all(not metric.get("comparisons") and metric["test"] is None
               for probe in untested["probes"] for slice_ in probe["slices"] for metric in slice_["metrics"])
    output = render_report(untested)
    gender_race = re.search(r'id="probe-gender--race--accuracy".*?</table>', output, flags=re.S)
    assert gender_race is not None
    assert "Difference (points)" not in gender_race.group(0)
    text = text_of(output)
    assert "across the family of 0 tests" in text
    assert "11 slices were not tested" in text


def test_trend_test_is_shown(html: str) -> None:
    assert "Trend test" in html and "cochran-armitage trend" in html


def test_confusion_matrix_table_and_chart(results: dict, html: str) -> None:
    parsed = parse(html)
    assert len([t for t in parsed.tags("table") if t.get("class") == "confusion"]) == 1
    svg = [s for s in parsed.tags("svg") if str(s.get("id")).startswith("confusion_")]
    confusion = results["probes"][0]["confusion"]
    assert confusion["labels"][0] == "Male"
    male_correct, male_total = confusion["counts"][0][0], sum(confusion["counts"][0])
    assert len(svg) == 1 and f"Male: {male_correct} of {male_total} correct" in str(svg[0].get("aria-label"))


def test_default_intended_use_repeats_the_clip_model_card_warning(html: str) -> None:
    text = text_of(html)
    assert "surveillance and facial recognition" in text
    assert "defaults after the CLIP model card" in text


def test_intended_use_from_taxonomy_then_report_config() -> None:
    taxonomy = report_fixtures.taxonomy_document(intended_use="Taxonomy says <b>research</b>.",
                                                 out_of_scope_use="Taxonomy forbids deployment.")
    results = report_fixtures.build(taxonomy=taxonomy)
    text = text_of(render_report(results))
    assert "Taxonomy says <b>research</b>." in text and "Stated by the taxonomy." in text
    configured = build_report_view(results, report_config={"intended_use": "Config wins."})
    assert configured.intended_use.intended == "Config wins."
    assert configured.intended_use.out_of_scope == "Taxonomy forbids deployment."
    assert configured.intended_use.stated_by == "the report configuration and the taxonomy"


def test_caveats_list_small_groups_denigrating_classes_and_class_design(html: str) -> None:
    caveats = re.search(r'<ul class="caveats">(.*?)</ul>', html, flags=re.S)
    assert caveats is not None
    text = " ".join(caveats.group(1).split())
    assert "race = Middle Eastern (n = 18)" in text
    assert "thief, criminal, gorilla" in text
    assert "how they are worded" in text
    assert "synthetic" not in text  # fairface data: no demo caveat


def test_synthetic_data_gets_a_caveat_and_a_notice() -> None:
    results = report_fixtures.build(dataset_spec="synthetic:630", model_id="clipaudit demo (tiny CLIP)",
                                    model_spec="demo")
    view = build_report_view(results)
    assert view.synthetic_data and view.demo_model
    assert any("synthetic" in caveat for caveat in view.caveats)
    assert "Demonstration." in render_report(results)


def test_skipped_images_are_counted_and_listed() -> None:
    results = report_fixtures.build(skipped=(("val/17.jpg", "unreadable"), ("val/203.jpg", "missing")))
    text = text_of(render_report(results))
    assert "val/17.jpg (unreadable)" in text and "val/203.jpg (missing)" in text
    assert "2 images were skipped" in text


def test_protocol_shows_sha256_templates_and_every_prompt(results: dict, html: str) -> None:
    text = text_of(html)
    assert results["manifest"]["taxonomy"]["sha256"] in text
    assert "a photo of a {label}." in text
    assert f"a photo of a {XSS_CLASS}." in text


def test_factors_and_group_sizes(html: str) -> None:
    text = text_of(html)
    assert "Images per race group" in text
    assert re.search(r"<th scope=\"row\">Black</th><td class=\"num\">230</td>", html)


def test_heatmap_marks_empty_and_small_cells_and_escapes_labels(results: dict) -> None:
    view = build_report_view(results)
    table = next(t for t in view.tables() if t.slice_id == "race x gender" and t.metric == "harm_rate")
    chart = heatmap_chart(table, confidence_level=0.95)
    assert chart is not None
    assert "Middle Eastern / Female no images" in chart.alt
    svg = str(chart.svg)
    assert "no images" in svg and "n=18" in svg
    hostile = report_fixtures.build(predictions=report_fixtures.predictions_table(rename={"East Asian": XSS_CLASS}))
    hostile_table = next(t for t in build_report_view(hostile).tables()
                         if t.slice_id == "race x gender" and t.metric == "harm_rate")
    assert any(row.values["race"] == XSS_CLASS for row in hostile_table.rows)
    hostile_chart = heatmap_chart(hostile_table, confidence_level=0.95)
    assert hostile_chart is not None and "<script" not in str(hostile_chart.svg)


def test_small_group_legend_names_min_n(html: str) -> None:
    assert f"small group (n &lt; {MIN_N})" in html
