"""Outcome groupings (a probe's coarser outcomes) and attribute groupings (coarser slice columns)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clipaudit.stats import StatsSettings, compute_statistics
from clipaudit.taxonomy import check_against_dataset, load_taxonomy, validate_taxonomy_file
from clipaudit.taxonomy.groupings import with_attribute_groups

VALID = """\
name: grouped
templates: ["a photo of a {label}"]
probes:
  - id: race
    kind: attribute
    target: race
    classes:
      - {id: White, label: white person}
      - {id: Black, label: black person}
      - {id: Indian, label: indian person}
    outcome_groups:
      - id: race_binary
        groups:
          - {id: White, classes: [White]}
          - {id: non-White, rest: true}
    slices: [race, race_binary]
attribute_groups:
  - id: race_binary
    attribute: race
    groups:
      - {id: White, values: [White]}
      - {id: non-White, rest: true}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "taxonomy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_valid_grouping_loads_and_is_kept_by_variants_and_documents(tmp_path):
    path = write(tmp_path, VALID)
    assert validate_taxonomy_file(path) == []
    taxonomy = load_taxonomy(path)
    grouping = taxonomy.probe("race").outcome_groups[0]
    assert grouping.group_of("White") == "White" and grouping.group_of("Indian") == "non-White"
    assert grouping.group_of(None) is None and grouping.metric == "accuracy_race_binary"
    assert taxonomy.attribute_groups[0].attribute == "race"
    document = taxonomy.to_document()
    assert document["probes"][0]["outcome_groups"][0]["groups"][1] == {"id": "non-White", "rest": True}
    assert document["attribute_groups"][0]["groups"][0] == {"id": "White", "values": ["White"]}


@pytest.mark.parametrize("replace, add, line, field, words", [
    ("classes: [White]}", "classes: [White, Asian]}", 14, "probes[0].outcome_groups[0].groups[0].classes[1]",
     "unknown class 'Asian'"),
    ("- {id: non-White, rest: true}\n    slices", "- {id: non-White, classes: [Black, White]}\n    slices", 15,
     "probes[0].outcome_groups[0].groups[1].classes[1]", "already in group 'White'"),
    ("- {id: non-White, rest: true}\n    slices", "- {id: non-White, classes: [Black]}\n    slices", 13,
     "probes[0].outcome_groups[0].groups", "'Indian' are in no group"),
    ("- {id: White, classes: [White]}", "- {id: White, rest: true}", 15,
     "probes[0].outcome_groups[0].groups[1].rest", "only one group can be the rest group"),
    ("- {id: White, classes: [White]}", "- {id: White, classes: [White], rest: true}", 14,
     "probes[0].outcome_groups[0].groups[0]", "exactly one of the two"),
    ("  - id: race_binary\n    attribute: race", "  - id: race\n    attribute: race", 18,
     "attribute_groups[0].id", "must differ from its attribute"),
    ("      - id: race_binary\n        groups", "      - id: Race-Binary\n        groups", 12,
     "probes[0].outcome_groups[0].id", "lower-case"),
])
def test_grouping_mistakes_are_reported_with_their_line(tmp_path, replace, add, line, field, words):
    assert replace in VALID
    problems = validate_taxonomy_file(write(tmp_path, VALID.replace(replace, add, 1)))
    problem = next((problem for problem in problems if problem.field == field), None)
    assert problem is not None, [str(p) for p in problems]
    assert problem.line == line and words in problem.message, str(problem)


def test_outcome_groups_belong_to_attribute_probes_and_datacomp_tables_need_their_probes(tmp_path):
    harm = VALID.replace("kind: attribute\n    target: race", "kind: harm") \
        .replace("{id: Indian, label: indian person}", "{id: thief, category: crime}")
    problems = validate_taxonomy_file(write(tmp_path, harm))
    assert any(p.field == "probes[0].outcome_groups" and "attribute probes" in p.message for p in problems)
    tables = VALID + "published_tables: {layout: datacomp, race_order: [Black, White]}\n"
    problem = next(p for p in validate_taxonomy_file(write(tmp_path, tables)) if p.field == "published_tables.layout")
    assert problem.line == 23 and "probes race, gender and age" in problem.message
    unknown = VALID + "published_tables: {layout: clip, race_order: [Black]}\n"
    assert any("unknown layout 'clip'" in p.message for p in validate_taxonomy_file(write(tmp_path, unknown)))


def test_attribute_groupings_become_columns_that_slices_and_the_engine_use(tmp_path):
    taxonomy = load_taxonomy(write(tmp_path, VALID))
    problems = check_against_dataset(taxonomy, {"race": {"White", "Black", "Asian"}})
    assert [p for p in problems if p.severity == "error"] == []
    missing = check_against_dataset(taxonomy, {"gender": {"Male"}})
    assert any(p.field == "attribute_groups[0].attribute" and p.line == 19 for p in missing)
    frame = pd.DataFrame({"probe": "race", "image_id": ["a", "b", "c", "d"], "race": ["White", "Black", "Asian", None],
                          "target": ["White", "Black", "Asian", None],
                          "prediction": ["White", "Indian", "Black", "White"]})
    grouped = with_attribute_groups(frame, taxonomy.attribute_groups)
    assert list(grouped["race_binary"]) == ["White", "non-White", "non-White", None]
    assert with_attribute_groups(grouped, taxonomy.attribute_groups).equals(grouped)
    results = compute_statistics(grouped, taxonomy, settings=StatsSettings(bootstrap=0))
    probe = results["probes"][0]
    # 7-way: only 'a' right of 3 labelled rows; White vs non-White: a, b and c right ('Asian' is non-White).
    assert probe["overall"]["accuracy"]["successes"] == 1 and probe["overall"]["accuracy"]["n"] == 3
    assert probe["overall"]["accuracy_race_binary"]["successes"] == 3
    by_binary = next(entry for entry in probe["slices"] if entry["id"] == "race_binary")["metrics"][1]
    assert by_binary["metric"] == "accuracy_race_binary" and by_binary["direction"] == "higher is better"
    assert {group["group"]: (group["successes"], group["n"]) for group in by_binary["groups"]} == \
        {"White": (1, 1), "non-White": (2, 2)}
    assert np.isclose(probe["overall"]["accuracy_race_binary"]["value"], 1.0)
