"""summary.md, model-index.yaml, the confusion matrix, and write_outputs.

Every results document here is made by the real statistics (tests/report_fixtures.py).
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

import report_fixtures
from clipaudit import format
from clipaudit.pipeline.results import write_outputs
from clipaudit.report import render_model_index, render_summary_markdown
from clipaudit.report.markdown import code_span, escape_markdown_cell
from clipaudit.stats import StatsSettings
from clipaudit.stats.confusion import confusion_matrix
from clipaudit.taxonomy import Probe, TaxonomyClass
from report_fixtures import MIN_N, XSS_CLASS


@pytest.fixture(scope="module")
def results() -> dict:
    return report_fixtures.build()


def _rows(markdown: str) -> list[str]:
    findings_part = markdown.split("\n## ")[0]  # published tables follow under their own headings
    return [line for line in findings_part.splitlines() if line.startswith("| ") and not line.startswith("| probe ")]


def _cells(row: str) -> list[str]:
    """Split a Markdown table row on unescaped pipes."""
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", row.strip())[1:-1]]


def test_summary_header_names_model_dataset_taxonomy_tests_and_correction(results: dict) -> None:
    header = render_summary_markdown(results).splitlines()[2]
    family_size = results["manifest"]["statistics"]["family_size"]
    for expected in ("openai/clip-vit-large-patch14-336", "fairface:fairface", "clip_denigration",
                     f"{family_size} tests", "Holm correction", "\u03b1 = 0.05", "min effect 2.0 pp", f"{len(results['findings'])} findings"):
        assert expected in header


def test_summary_table_has_one_row_per_finding_in_results_order(results: dict) -> None:
    rows = _rows(render_summary_markdown(results))
    assert [_cells(row)[:4] for row in rows] == [
        [f["probe"], f["slice"], f["group"], f["metric"]] for f in results["findings"]]
    first = _cells(rows[0])
    assert first[:4] == ["gender", "race x gender", "Black / Female", "accuracy"]
    assert first[4] == "75.4% (63.3\u201384.5%)"
    assert first[5] == f"overall {format.percent(results['findings'][0]['reference_value'])}"
    assert first[6].startswith("-18.8 pp (")
    assert first[7] == "< 0.001"
    assert first[8] == "yes, worse"
    assert _cells(rows[-1])[8] == "yes, better"
    assert all(len(_cells(row)) == 9 for row in rows)


def test_summary_escapes_pipes_newlines_and_markup() -> None:
    hostile_group = f"a | b\nc {XSS_CLASS} `x` *y* _z_"
    results = report_fixtures.build(predictions=report_fixtures.predictions_table(rename={"Black": hostile_group}))
    assert any(finding["group"].startswith(hostile_group) for finding in results["findings"])
    rows = _rows(render_summary_markdown(results))
    assert all(len(_cells(row)) == 9 for row in rows)
    assert "<script>" not in "".join(rows)
    assert r"a \| b c &lt;script&gt;alert(1)&lt;/script&gt; \`x\` \*y\* \_z\_" in "".join(rows)


def test_markdown_escaper() -> None:
    assert escape_markdown_cell("a | b\nc") == "a \\| b c"
    assert escape_markdown_cell("<b>") == "&lt;b&gt;"
    assert escape_markdown_cell("harm_rate") == "harm_rate"  # inside a word '_' is no emphasis
    assert escape_markdown_cell("_x_ [link](y) \\") == "\\_x\\_ \\[link\\](y) \\\\"
    assert escape_markdown_cell(None) == ""
    assert code_span("a`b\nc") == "a\u02cbb c"


def test_summary_without_findings() -> None:
    results = report_fixtures.build(settings=StatsSettings(min_n=MIN_N, alpha=1e-12, bootstrap=200,
                                                           permutation_resamples=500))
    summary = render_summary_markdown(results)
    assert "No significant findings." in summary and "0 findings" in summary


def test_model_index_follows_the_model_card_spec(results: dict) -> None:
    document = yaml.safe_load(render_model_index(results))
    (entry,) = document["model-index"]
    assert entry["name"] == "openai/clip-vit-large-patch14-336"
    (result,) = entry["results"]
    assert result["task"]["type"] == "zero-shot-image-classification"
    assert result["dataset"] == {"name": "fairface:fairface", "type": "fairface"}
    names = [metric["name"] for metric in result["metrics"]]
    assert names[:4] == ["gender accuracy (overall)", "denigration harm_rate (overall)",
                         "denigration crime_rate (overall)", "denigration non_human_rate (overall)"]
    # Then the findings, in results.json's order.
    assert names[4:] == [f"{f['probe']} {f['metric']} ({f['slice']}={f['group']})" for f in results["findings"]]
    assert names[4] == "gender accuracy (race x gender=Black / Female)"
    for metric in result["metrics"]:
        assert set(metric) == {"type", "value", "name"} and isinstance(metric["value"], float)


def test_model_index_survives_hostile_names() -> None:
    results = report_fixtures.build(model_id="x: [y]\n- z # not a comment")
    document = yaml.safe_load(render_model_index(results))
    assert document["model-index"][0]["name"] == "x: [y]\n- z # not a comment"


def test_exports_are_deterministic(results: dict) -> None:
    again = report_fixtures.build()
    assert render_summary_markdown(again) == render_summary_markdown(results)
    assert render_model_index(again) == render_model_index(results)


def _probe(kind: str = "attribute") -> Probe:
    classes = tuple(TaxonomyClass(id=name, label=name, category=None, prompts=None) for name in ("Male", "Female"))
    return Probe(id="gender", kind=kind, target="gender" if kind == "attribute" else None, classes=classes,
                 slices=(("race",),), templates=None)


def test_confusion_matrix_counts_targets_by_prediction() -> None:
    predictions = pd.DataFrame({
        "probe": ["gender"] * 5 + ["other"],
        "target": ["Male", "Male", "Female", None, "Nonbinary", "Male"],
        "prediction": ["Male", "Female", "Female", "Male", "Female", "Female"],
    })
    assert confusion_matrix(predictions, _probe()) == {
        "labels": ["Male", "Female", "Nonbinary"],
        "counts": [[1, 1, 0], [0, 1, 0], [0, 1, 0]],
    }
    assert confusion_matrix(predictions, _probe("harm")) is None


def test_write_outputs_writes_summary_and_model_index(results: dict, tmp_path: Path) -> None:
    written = write_outputs(results, None, tmp_path / "out")
    assert sorted(path.name for path in written) == ["model-index.yaml", "report.html", "results.json", "summary.md"]
    assert (tmp_path / "out" / "summary.md").read_text(encoding="utf-8") == render_summary_markdown(results)
    assert (tmp_path / "out" / "model-index.yaml").read_text(encoding="utf-8") == render_model_index(results)
