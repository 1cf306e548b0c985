"""summary.md, model-index.yaml, the confusion matrix, and write_outputs."""
from __future__ import annotations

import copy
import re
from pathlib import Path

import pandas as pd
import yaml

from clipaudit.stats.confusion import confusion_matrix
from clipaudit.report import render_model_index, render_summary_markdown
from clipaudit.report.exports import escape_markdown_cell
from clipaudit.pipeline.results import write_outputs
from clipaudit.taxonomy import Probe, TaxonomyClass
from test_report import XSS_CLASS, make_results


def _rows(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("| ") and not line.startswith("| probe ")]


def _cells(row: str) -> list[str]:
    """Split a Markdown table row on unescaped pipes."""
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", row.strip())[1:-1]]


def test_summary_header_names_model_dataset_taxonomy_tests_and_correction() -> None:
    summary = render_summary_markdown(make_results())
    header = summary.splitlines()[2]
    for expected in ("openai/clip-vit-large-patch14-336", "fairface:/data/fairface", "clip_denigration",
                     "8 tests", "Holm correction", "3 findings"):
        assert expected in header


def test_summary_table_has_one_row_per_finding_by_severity() -> None:
    results = make_results()
    rows = _rows(render_summary_markdown(results))
    assert len(rows) == len(results["findings"])
    first = _cells(rows[0])
    assert first[:4] == ["gender", "race x gender", "Black / Female", "accuracy"]
    assert first[4] == "75.4% (63.3\u201384.5%)"
    assert first[6].startswith("-19.7 pp")
    assert first[7] == "0.0036" and first[8] == "yes"
    assert all(len(_cells(row)) == 9 for row in rows)


def test_summary_escapes_pipes_newlines_and_markup() -> None:
    results = make_results()
    results["findings"][0]["group"] = f"a | b\nc {XSS_CLASS} `x` *y*"
    rows = _rows(render_summary_markdown(results))
    assert all(len(_cells(row)) == 9 for row in rows)
    assert "<script>" not in "".join(rows)
    assert escape_markdown_cell("a | b\nc") == "a \\| b c"
    assert escape_markdown_cell("<b>") == "&lt;b&gt;"


def test_summary_without_findings() -> None:
    results = make_results()
    results["findings"] = []
    summary = render_summary_markdown(results)
    assert "No significant findings." in summary and "0 findings" in summary


def test_model_index_follows_the_model_card_spec() -> None:
    results = make_results()
    document = yaml.safe_load(render_model_index(results))
    (entry,) = document["model-index"]
    assert entry["name"] == "openai/clip-vit-large-patch14-336"
    (result,) = entry["results"]
    assert result["task"]["type"] == "zero-shot-image-classification"
    assert result["dataset"] == {"name": "fairface:/data/fairface", "type": "fairface"}
    names = [metric["name"] for metric in result["metrics"]]
    assert "gender accuracy (overall)" in names
    assert "gender accuracy (race x gender=Black / Female)" in names
    assert len(names) == 4 + len(results["findings"])  # 1 + 3 overall rates, then the findings
    for metric in result["metrics"]:
        assert set(metric) == {"type", "value", "name"} and isinstance(metric["value"], float)


def test_model_index_survives_hostile_names() -> None:
    results = make_results()
    results["manifest"]["model"]["id"] = "x: [y]\n- z # not a comment"
    document = yaml.safe_load(render_model_index(results))
    assert document["model-index"][0]["name"] == "x: [y]\n- z # not a comment"


def test_exports_are_deterministic() -> None:
    results = make_results()
    assert render_summary_markdown(copy.deepcopy(results)) == render_summary_markdown(results)
    assert render_model_index(copy.deepcopy(results)) == render_model_index(results)


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


def test_write_outputs_writes_summary_and_model_index(tmp_path: Path) -> None:
    results = make_results()
    written = write_outputs(results, None, tmp_path / "out")
    assert sorted(path.name for path in written) == ["model-index.yaml", "report.html", "results.json", "summary.md"]
    assert (tmp_path / "out" / "summary.md").read_text(encoding="utf-8") == render_summary_markdown(results)
    assert (tmp_path / "out" / "model-index.yaml").read_text(encoding="utf-8") == render_model_index(results)
