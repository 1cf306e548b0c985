"""The report's first screen: verdict, scorecard, key findings (report/summary_view.py), the
notebook view of an audit (AuditRun._repr_html_ and its DataFrames), and render speed's cause:
charts written as SVG directly."""
from __future__ import annotations

import copy
import re
from html import escape

import pandas as pd
import pytest

import report_fixtures
from clipaudit import format
from clipaudit.audit import AuditRun
from clipaudit.report import build_report_view, render_report, render_summary_html
from clipaudit.report.summary_view import KEY_FINDINGS_SHOWN, SCORECARD_COLUMNS, decided_by
from clipaudit.stats import StatsSettings
from test_report import parse


@pytest.fixture(scope="module")
def results() -> dict:
    return report_fixtures.build()


@pytest.fixture(scope="module")
def html(results: dict) -> str:
    return render_report(results)


def test_scorecard_has_one_cell_per_probe_and_slice_on_the_headline_metric(results: dict) -> None:
    card = build_report_view(results).scorecard
    expected = [(probe["id"], entry["id"]) for probe in results["probes"] for entry in probe["slices"]]
    assert [(row.probe_id, row.slice_id) for row in card.rows] == expected
    assert [line.probe_id for line in card.lines] == ["gender", "denigration"]
    assert card.slices == ("race", "race x gender", "age")
    gender = card.lines[0]
    assert gender.cells[2] is None  # the gender probe is not sliced by age
    for row in card.rows:
        probe = next(p for p in results["probes"] if p["id"] == row.probe_id)
        metric = next(s for s in probe["slices"] if s["id"] == row.slice_id)["metrics"][0]
        assert row.table.metric == probe["metrics"][0] == metric["metric"]
        assert row.significant == metric["verdict"]["significant"]
        assert row.small_groups == sum(group["small"] for group in metric["groups"])


def test_scorecard_cells_read_as_strictly_as_the_tests_and_agree_with_the_findings(results: dict, html: str) -> None:
    card = build_report_view(results).scorecard
    found = {(finding["probe"], finding["slice"], finding["metric"]) for finding in results["findings"]}
    for row in card.rows:
        disparity, verdict = row.table.disparity, row.table.verdict
        if (row.probe_id, row.slice_id, row.table.metric) in found:
            assert row.significant is True
        shown = (f"gap {format.points_size_number(disparity.gap)}</a> <span class=\"muted\">("
                 f"{format.points_size_number(disparity.gap_family_ci_low)}&ndash;"
                 f"{format.points_size_number(disparity.gap_family_ci_high)})</span>")
        assert shown in html
        shown = f"p {escape(format.p_value(verdict.p_adjusted))}"
        if verdict.significant:  # with the group (or test) that decided; a cell with no difference names none
            shown += f" <span class=\"where\">({escape(decided_by(verdict))})"
        assert shown in html
    # results.json from before verdicts existed: the report applies the statistics' own rule
    older = copy.deepcopy(results)
    for probe in older["probes"]:
        for entry in probe["slices"]:
            for metric in entry["metrics"]:
                del metric["verdict"]
    assert [row.significant for row in build_report_view(older).scorecard.rows] == [row.significant for row in card.rows]


def test_worst_off_group_is_the_bad_end_of_the_gap(results: dict) -> None:
    card = build_report_view(results).scorecard
    by_key = {(row.probe_id, row.slice_id): row for row in card.rows}
    # Accuracy: the lowest group (Black women are misclassified most); harm rate: the highest.
    assert by_key[("gender", "race x gender")].worst.group == "Black / Female"
    denigration = by_key[("denigration", "race")]
    assert denigration.worst.group == denigration.table.disparity.max_group
    assert denigration.worst.rate.value == max(row.rate.value for row in denigration.table.rows if not row.small)


def test_key_findings_are_the_first_disparities_in_the_findings_order(results: dict) -> None:
    view = build_report_view(results)
    assert [key.finding for key in view.key_findings] == list(view.findings[:KEY_FINDINGS_SHOWN])
    for key, raw in zip(view.key_findings, results["findings"]):
        assert f"#{key.table.anchor}" == key.finding.href
        assert (key.table.probe_id, key.table.slice_id, key.table.metric) == (raw["probe"], raw["slice"], raw["metric"])
        assert key.finding.related == len(raw["related"])


def test_verdict_counts_disparities_and_states_the_correction(results: dict) -> None:
    view = build_report_view(results)
    tested = sum(1 for table in view.tables() if table.test is not None)
    worse = sum(1 for finding in view.findings if finding.worse)
    assert view.verdict.startswith(f"{len(view.findings)} disparities between groups found significant, {worse} of")
    assert f"({tested} slices and metrics tested" in view.verdict
    assert "Holm correction" in view.verdict


def test_verdict_without_findings_says_it_is_not_parity() -> None:
    quiet = report_fixtures.build(settings=StatsSettings(min_n=report_fixtures.MIN_N, alpha=1e-12))
    view = build_report_view(quiet)
    assert not view.findings and not view.key_findings
    assert view.verdict.startswith("No significant difference") and "not evidence of parity" in view.verdict


def test_first_screen_order_warning_verdict_scorecard_key_findings(results: dict) -> None:
    warned = report_fixtures.build()
    warned["manifest"]["warnings"] = ["race: 90 images have the value 'Latino Hispanic', which matches no class"]
    page = render_report(warned)
    positions = [page.index(marker) for marker in (
        'class="notice input-warning"', 'class="verdict', 'id="scorecard"', 'class="key-findings"',
        'id="model-details"')]
    assert positions == sorted(positions)
    assert "Latino Hispanic" in page[:positions[1]]


def test_each_key_finding_opens_to_its_table(html: str, results: dict) -> None:
    blocks = re.findall(r'<details class="key-finding.*?</details>', html, flags=re.S)
    assert 1 <= len(blocks) <= KEY_FINDINGS_SHOWN
    for block in blocks:
        assert '<table class="rates key-finding-table">' in block


def test_analysis_slices_protocol_and_manifest_are_folded(html: str, results: dict) -> None:
    parsed = parse(html)
    folded = [attributes.get("class") for attributes in parsed.tags("details")]
    assert folded.count("slice") == sum(len(probe["slices"]) for probe in results["probes"])
    assert folded.count("protocol-probe") == len(results["probes"])
    assert "manifest-details" in folded
    assert not any("open" in attributes for attributes in parsed.tags("details"))


def test_notebook_view_is_the_first_screen_and_tables_are_dataframes(results: dict) -> None:
    run = AuditRun(results=results, predictions=pd.DataFrame())
    fragment = run._repr_html_()
    assert fragment == render_summary_html(results)
    assert "<html" not in fragment and "<script" not in fragment
    assert 'class="verdict' in fragment and 'class="scorecard"' in fragment
    assert 'href="#' not in fragment  # no link to a page section a notebook does not have
    scorecard = run.scorecard()
    assert tuple(scorecard.columns) == SCORECARD_COLUMNS
    assert len(scorecard) == sum(len(probe["slices"]) for probe in results["probes"])
    findings = run.findings()
    assert list(findings["text"]) == [finding["text"] for finding in results["findings"]]
    assert list(run.group_table().columns)[:4] == ["probe", "slice", "metric", "group"]


def test_notebook_view_escapes_names() -> None:
    hostile = report_fixtures.build(predictions=report_fixtures.predictions_table(
        rename={"Black": report_fixtures.XSS_CLASS}))
    fragment = render_summary_html(hostile)
    assert "<script>" not in fragment and "&lt;script&gt;" in fragment


def test_charts_carry_no_matplotlib(html: str) -> None:
    assert "matplotlib" not in html.lower()
    assert "<style" not in "".join(re.findall(r"<svg\b.*?</svg>", html, flags=re.S))


def test_verdict_when_every_group_is_under_min_n() -> None:
    tiny = report_fixtures.build(settings=StatsSettings(min_n=1000))
    view = build_report_view(tiny)
    assert all(table.test is None for table in view.tables())
    assert view.verdict.startswith("No test could run") and "under 1000 images" in view.verdict
    page = render_report(tiny)
    assert page.index("Read first:") < page.index('class="verdict')  # the alert with --min-n comes first
