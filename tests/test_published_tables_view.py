"""The CLIP paper's table layouts: each cell is the audit's (or the sweep's) own group rate, with its interval."""
from __future__ import annotations

import json
from pathlib import Path

from clipaudit import format
from clipaudit.report.exports import render_summary_markdown
from clipaudit.report.published_tables_view import build_published_tables, clip_table_7_from_sweep

EXAMPLE = Path(__file__).resolve().parents[1] / "reports" / "example" / "results.json"


def _groups(results, probe_id, slice_id, metric):
    probe = next(probe for probe in results["probes"] if probe["id"] == probe_id)
    entry = next(entry for entry in probe["slices"] if entry["id"] == slice_id)
    return {group["group"]: group for group in next(m for m in entry["metrics"] if m["metric"] == metric)["groups"]}


def test_clip_tables_3_to_7_lay_out_the_audits_group_rates():
    results = json.loads(EXAMPLE.read_text())
    tables = {table.id: table for table in build_published_tables(results).clip}
    assert set(tables) == {"clip-table-3-4", "clip-table-5", "clip-table-race", "clip-table-gender", "clip-table-age"}
    # Table 6: crime-related and non-human rates of the harm probe by race.
    by_race = tables["clip-table-race"]
    for row, metric in zip(by_race.rows, ("crime_rate", "non_human_rate")):
        groups = _groups(results, "denigration", "race", metric)
        assert row.label.startswith({"crime_rate": "crime-related", "non_human_rate": "non-human"}[metric])
        assert list(by_race.columns) == list(groups)
        for column, cell in zip(by_race.columns, row.cells):
            group = groups[column]
            assert cell.value == format.percent(group["value"])
            assert cell.interval == format.percent_range(group["ci_low"], group["ci_high"])
    # Table 5: gender accuracy, genders down, races across.
    table5 = tables["clip-table-5"]
    intersections = _groups(results, "gender", "race x gender", "accuracy")
    assert [row.label for row in table5.rows] == ["Male", "Female"]
    for row in table5.rows:
        for race, cell in zip(table5.columns, row.cells):
            assert cell.value == format.percent(intersections[f"{race} / {row.label}"]["value"])
    # Tables 3-4: one column per attribute probe, one row per race (no race_binary slice here).
    table34 = tables["clip-table-3-4"]
    assert [column.split(" ")[0] for column in table34.columns] == ["gender", "race", "age"]
    assert [row.label for row in table34.rows] == list(_groups(results, "race", "race", "accuracy"))
    assert "CLIP paper tables" in render_summary_markdown(results)
    # The committed example report is rendered from this results.json (tests/test_report_gold.py).
    assert "CLIP paper tables" in EXAMPLE.with_name("report.html").read_text()
    assert build_published_tables(results).datacomp == ()


def _change(variant, metric, group, value):
    return {"taxonomy": "clip-denigration", "variant": variant, "probe": "denigration", "slice": "age",
            "metric": metric, "group": group, "n": 40, "value": value, "ci_low": value / 2, "ci_high": value * 1.5}


def test_clip_table_7_puts_the_base_and_the_with_child_variant_side_by_side():
    changes = [_change(variant, metric, group, value)
               for variant, scale in (("base", 1.0), ("with_child", 0.1))
               for metric, rate in (("crime_rate", 0.3), ("non_human_rate", 0.05))
               for group, value in (("0-2", rate * scale), ("3-9", rate * scale / 2))]
    changes.append({**_change("with_child", "harm_rate", "0-2", 0.5)})
    (table,) = clip_table_7_from_sweep({"changes": changes})
    assert table.columns == ("crime-related (base)", "crime-related (with_child)",
                             "non-human (base)", "non-human (with_child)")
    assert [row.label for row in table.rows] == ["0-2", "3-9"]
    assert [cell.value for cell in table.rows[0].cells] == ["30.0%", "3.0%", "5.0%", "0.5%"]
    assert table.rows[1].cells[1].interval == format.percent_range(0.0075, 0.0225)
    assert clip_table_7_from_sweep({"changes": [c for c in changes if c["variant"] == "base"]}) == ()
