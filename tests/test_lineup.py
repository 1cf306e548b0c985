"""`clipaudit report AUDIT_DIR AUDIT_DIR ... --out DIR`: several models on one page.

The audits are real outputs (results.json from the statistics engine, predictions.parquet) of two
"models" on the same images: the fixture's, and one that never puts anyone in a harmful class.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

import report_fixtures
from clipaudit.cli import main
from clipaudit.compare import CompareSettings
from clipaudit.lineup import LINEUP_OUTPUT, lineup_page, run_lineup, write_lineup
from clipaudit.pipeline.results import write_outputs
from clipaudit.stats.ranking import rank_by_gap
from test_report import parse

SETTINGS = CompareSettings(min_n=report_fixtures.MIN_N)
REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_MODELS = REPO_ROOT / "reports" / "example-models"
REGENERATE = ("clipaudit demo --untrained 1 --out reports/example-models/untrained (keep its results.json and "
              "predictions.parquet), then clipaudit report reports/example reports/example-models/untrained "
              "--out reports/example-models")


def _harmless(predictions):
    """The same images, with every denigration prediction a neutral class."""
    harmless = predictions.copy()
    harmless.loc[harmless["probe"] == "denigration", "prediction"] = "man"
    return harmless


@pytest.fixture(scope="module")
def audits(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("lineup")
    predictions = report_fixtures.predictions_table()
    folders = []
    for name, table in (("fixture-model", predictions), ("harmless-model", _harmless(predictions))):
        results = report_fixtures.build(predictions=table, model_id=name)
        write_outputs(results, table, root / name)
        folders.append(root / name)
    return folders[0], folders[1]


@pytest.fixture(scope="module")
def lineup(audits: tuple[Path, Path]) -> dict:
    return run_lineup(list(audits), settings=SETTINGS, resamples=200)


def _table(lineup: dict, probe: str, slice_id: str, metric: str) -> dict:
    return next(t for t in lineup["tables"] if (t["probe"], t["slice"], t["metric"]) == (probe, slice_id, metric))


def test_every_probe_slice_and_metric_has_a_table_with_each_models_own_numbers(lineup: dict, audits) -> None:
    import json
    first = json.loads((audits[0] / "results.json").read_text())
    second = json.loads((audits[1] / "results.json").read_text())
    keys = [(p["id"], s["id"], m["metric"]) for p in first["probes"] for s in p["slices"] for m in s["metrics"]]
    assert [(t["probe"], t["slice"], t["metric"]) for t in lineup["tables"]] == keys
    assert [model["label"] for model in lineup["models"]] == ["fixture-model", "harmless-model"]
    table = _table(lineup, "denigration", "race", "harm_rate")
    black = next(group for group in table["groups"] if group["group"] == "Black")
    for side, results in enumerate((first, second)):
        entry = next(m for s in next(p for p in results["probes"] if p["id"] == "denigration")["slices"]
                     if s["id"] == "race" for m in s["metrics"] if m["metric"] == "harm_rate")
        expected = next(g for g in entry["groups"] if g["group"] == "Black")
        assert black["rates"][side]["value"] == expected["value"]
        assert table["gaps"][side]["gap"] == entry["disparity"]["gap"]


def test_ranking_puts_the_model_without_a_gap_first_with_certainty(lineup: dict) -> None:
    table = _table(lineup, "denigration", "race", "harm_rate")
    fixture, harmless = table["gaps"]
    assert harmless["gap"] == 0 and harmless["rank"] == 1 and harmless["probability_first"] == 1.0
    assert (harmless["rank_low"], harmless["rank_high"]) == (1, 1)
    assert fixture["rank"] == 2 and fixture["probability_first"] == 0.0
    # On the gender probe the two models are the same: tied, both first in every resample.
    gender = _table(lineup, "gender", "race", "accuracy")
    assert [gap["rank"] for gap in gender["gaps"]] == [1, 1]
    assert all(gap["probability_first"] == 1.0 for gap in gender["gaps"])


def test_paired_tests_against_the_first_model_holm_corrected(lineup: dict) -> None:
    assert "paired" in lineup["pairing"]
    table = _table(lineup, "denigration", "race", "harm_rate")
    black = next(group for group in table["groups"] if group["group"] == "Black")
    assert black["changes"][0] is None
    change = black["changes"][1]
    assert change["test"] == "exact McNemar" or "mcnemar" in change["test"].lower()
    assert change["difference"] == pytest.approx(-27 / 230)
    assert change["p_adjusted"] >= change["p_value"] and change["significant"]
    assert change["n_pairs"] == 230
    unchanged = next(group for group in _table(lineup, "gender", "race", "accuracy")["groups"])
    assert unchanged["changes"][1]["difference"] == 0 and not unchanged["changes"][1]["significant"]
    tested = [c for t in lineup["tables"] for g in t["groups"] for c in g["changes"] if c and c["p_value"] is not None]
    assert lineup["settings"]["family_size"] == len(tested)


def test_page_is_self_contained_escaped_and_names_no_absolute_path(lineup: dict, audits, tmp_path: Path) -> None:
    out = tmp_path / "models"
    written = write_lineup(lineup, out)
    assert written == [out / LINEUP_OUTPUT]
    page = (out / LINEUP_OUTPUT).read_text(encoding="utf-8")
    parsed = parse(page)
    assert parsed.problems == [] and parsed.tags("script") == []
    assert 'id="scorecard"' in page and 'class="verdict"' in page
    assert "harmless-model has the smallest gap" in page
    assert str(tmp_path) not in page and not re.search(r'(?<![\w.])/(tmp|home|work|Users)/', page)
    for folder in audits:  # the audit folders, relative to the page's folder
        assert f'<td class="mono">{os.path.relpath(folder, out)}</td>' in page


def test_rank_by_gap_on_planted_outcomes() -> None:
    codes = np.repeat([0, 1], 200)
    counted = np.ones(400, dtype=bool)
    even = np.tile([True, False], 200)  # 50% in both groups: no gap
    skewed = np.concatenate([np.arange(200) < 40, np.arange(200) < 160])  # 20% against 80%
    ranks = rank_by_gap(codes, 2, [counted, counted], [skewed, even], min_n=30, resamples=300, confidence=0.95,
                        seed=0)
    assert [rank.rank for rank in ranks] == [2, 1]
    assert ranks[1].probability_first == 1.0 and (ranks[1].rank_low, ranks[1].rank_high) == (1, 1)
    assert ranks[0].gap == pytest.approx(0.6) and ranks[1].gap == 0
    lonely = rank_by_gap(codes, 2, [counted, counted & (codes == 0)], [even, even], min_n=30, resamples=50,
                         confidence=0.95, seed=0)
    assert lonely[1].gap is None and lonely[1].rank == 2  # one group only: no gap, ranked last


def test_cli_report_writes_the_page_and_refuses_bad_inputs(audits, tmp_path: Path, capsys) -> None:
    first, second = audits
    assert main(["report", str(first), str(second), "--out", str(tmp_path / "ok")]) == 0
    assert (tmp_path / "ok" / LINEUP_OUTPUT).is_file()
    capsys.readouterr()
    assert main(["report", str(first), "--out", str(tmp_path / "one")]) == 2
    refusal = capsys.readouterr().err.strip().splitlines()
    assert len(refusal) == 1 and "at least two audit output folders" in refusal[0]  # no progress line first
    other = tmp_path / "other-taxonomy"
    table = report_fixtures.predictions_table()
    write_outputs(report_fixtures.build(taxonomy=report_fixtures.taxonomy_document(name="another")), table, other)
    assert main(["report", str(first), str(other), "--out", str(tmp_path / "bad")]) == 2
    assert "compared on one taxonomy" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_example_models_page_is_what_the_code_renders() -> None:
    """reports/example-models/models.html: the demo model against an untrained one, from the committed audits."""
    audits = [REPO_ROOT / "reports" / "example", EXAMPLE_MODELS / "untrained"]
    expected = lineup_page(run_lineup(audits), EXAMPLE_MODELS)
    committed = (EXAMPLE_MODELS / LINEUP_OUTPUT).read_text(encoding="utf-8")
    assert committed == expected, f"reports/example-models/models.html is stale; regenerate with: {REGENERATE}"
