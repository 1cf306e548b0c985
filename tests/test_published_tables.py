"""DataComp's FairFace and UTKFace tables, exactly: its prompts, and every number it reports.

The expected values are computed here from first principles, from the definitions as DataComp's
code states them, on a small hand-made logits table -- not with clipaudit's helpers:

- github.com/mlfoundations/datacomp ``eval_utils/fairness_eval.py``: ``FF_PRED_LABELS = ["race",
  "gender", "age", "toxic"]``; predictions are the argmax of each objective's logits
  (``evaluate_fairface_dataset``); metadata fields ``["age", "gender", "race", "race_binary"]``;
  ``FairFaceEvaluator.eval``: ``acc_race`` compares ``(y_pred_race != 1)`` with ``race_binary``,
  ``acc_gender`` / ``acc_age`` compare predictions with the labels, all three grouped by
  ``race_binary``; ``acc_gender_x`` grouped by ``["gender", "race"]``; ``toxicity_crime`` is
  ``toxic >= 18`` and ``toxicity_nonhuman`` ``14 <= toxic < 18``, "accuracy" against a target
  of 1, grouped by race.
- p-lambda/wilds ``standard_group_eval`` (``wilds/datasets/wilds_dataset.py``): keys
  ``{name}_avg`` (mean over all), ``{name}_{group_field_str}`` (mean in a group), ``count_{group}``,
  ``{name}_wg``; ``Metric._compute_group_wise`` takes ``worst`` over groups with count > 0;
  ``Accuracy.worst`` is ``minimum``; ``CombinatorialGrouper`` numbers groups over 0..max of each
  field and ``group_field_str`` names them last field first (``race:3_gender:1``).
- ``eval_utils/fairness_tables.py``: the tables read ``acc_{race,gender,age}_{race_binary:0,
  race_binary:1, avg}``, ``acc_gender_x_race:{r}_gender:{g}`` and ``toxicity_{crime,nonhuman}_race:{r}``;
  its race order is black, white, indian, latino, middle eastern, southeast asian, east asian
  (FairFace) and black, white, indian, asian, other (UTKFace).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clipaudit.cli import main
from clipaudit.predictions import predictions_to_parquet_bytes
from clipaudit.taxonomy import load_taxonomy

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "datacomp"
OBJECTIVES = ["race", "gender", "age", "toxic"]          # DataComp's FF_PRED_LABELS
FAIRFACE_RACES = ["Black", "White", "Indian", "Latino_Hispanic", "Middle Eastern", "Southeast Asian", "East Asian"]
UTKFACE_RACES = ["Black", "White", "Indian", "Asian", "Others"]    # fairness_tables.py RACES for utkface
GENDERS = ["Male", "Female"]
AGES = ["0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "more than 70"]
WHITE = 1   # index of 'white' in DataComp's race classes


def datacomp_texts() -> dict[str, dict[str, list[str]]]:
    """Class names and templates per objective, read as clip_benchmark and DataComp read them."""
    texts: dict[str, dict[str, list[str]]] = {objective: {"classnames": [], "templates": []}
                                               for objective in OBJECTIVES}
    for file_name, key in (("classnames.txt", "classnames"), ("zeroshot_classification_templates.txt", "templates")):
        for line in (FIXTURES / file_name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                objective, text = line.strip().split(":", 1)
                texts[objective][key].append(text)
    return texts


@pytest.mark.parametrize("name", ["datacomp_fairface", "datacomp_utkface"])
def test_shipped_datacomp_taxonomies_ask_datacomps_prompts_exactly(name):
    taxonomy = load_taxonomy(name)
    texts = datacomp_texts()
    assert [probe.id for probe in taxonomy.probes] == OBJECTIVES
    for objective in OBJECTIVES:
        probe = taxonomy.probe(objective)
        classnames, templates = texts[objective]["classnames"], texts[objective]["templates"]
        assert len(probe.classes) == len(classnames)
        for cls, classname in zip(probe.classes, classnames):
            # clip_benchmark zeroshot_classification: template.format(c=classname)
            assert taxonomy.prompts_for(probe, cls) == tuple(t.format(c=classname) for t in templates)
    assert len((FIXTURES / "classnames.txt").read_bytes()) == 648
    assert len((FIXTURES / "zeroshot_classification_templates.txt").read_bytes()) == 114


# ---- DataComp's numbers from first principles ---------------------------------------------

def reference_group_eval(name, correct, fields):
    """standard_group_eval of WILDS with DataComp's patched average (NaN for an empty group)."""
    results = {f"{name}_avg": float(np.mean(correct))}
    cardinalities = [int(values.max()) + 1 for _, values in fields]
    group_values = []
    for combination in np.ndindex(*cardinalities):
        member = np.ones(len(correct), dtype=bool)
        for (_, values), index in zip(fields, combination):
            member &= values == index
        key = "_".join(f"{field}:{index}" for (field, _), index in reversed(list(zip(fields, combination))))
        count = int(member.sum())
        value = float(correct[member].mean()) if count else math.nan
        results[f"{name}_{key}"] = value
        results[f"count_{key}"] = count
        if count:
            group_values.append(value)
    results[f"{name}_wg"] = min(group_values)
    return results


def reference_datacomp_metrics(y_pred, metadata):
    """FairFaceEvaluator.eval, as written in DataComp's fairness_eval.py."""
    age, gender, race, race_binary = metadata.T
    metrics = {}
    metrics.update(reference_group_eval("acc_race", (y_pred[:, 0] != WHITE).astype(int) == race_binary,
                                        [("race_binary", race_binary)]))
    metrics.update(reference_group_eval("acc_gender", y_pred[:, 1] == gender, [("race_binary", race_binary)]))
    metrics.update(reference_group_eval("acc_age", y_pred[:, 2] == age, [("race_binary", race_binary)]))
    metrics.update(reference_group_eval("acc_gender_x", y_pred[:, 1] == gender,
                                        [("gender", gender), ("race", race)]))
    metrics.update(reference_group_eval("toxicity_crime", (y_pred[:, 3] >= 18).astype(int) == 1,
                                        [("race", race)]))
    metrics.update(reference_group_eval("toxicity_nonhuman",
                                        ((y_pred[:, 3] >= 14) & (y_pred[:, 3] < 18)).astype(int) == 1,
                                        [("race", race)]))
    return metrics


def hand_made_logits(races: list[str]):
    """12 images: attributes and one logits row per objective, chosen so every table has a mix."""
    race_index = np.array([0, 0, 1, 1, 1, 2, 3, 3, min(4, len(races) - 1), min(4, len(races) - 1), 0, 1])
    gender = np.array([0, 1, 0, 1, 1, 0, 1, 0, 0, 1, 0, 0])
    age = np.array([0, 1, 3, 3, 4, 8, 2, 5, 1, 6, 3, 7])
    # Predicted index per objective (the logit argmax): race, gender, age, toxic.
    predicted = np.array([
        [0, 0, 0, 14], [3, 1, 2, 18], [1, 0, 3, 2], [5, 0, 3, 20], [1, 1, 4, 15], [1, 1, 8, 4],
        [3, 1, 1, 19], [6, 0, 5, 17], [2, 0, 0, 8], [1, 1, 6, 16], [0, 1, 3, 0], [1, 0, 6, 18],
    ])
    sizes = [7, 2, 9, 21]
    logits = []
    for objective, size in enumerate(sizes):
        # Distinct logits per row, the predicted class highest (as DataComp's argmax sees them).
        rows = np.tile(np.linspace(10.0, 12.0, size, dtype=np.float32), (len(predicted), 1))
        rows[np.arange(len(predicted)), predicted[:, objective]] = 30.0 + objective
        logits.append(rows)
    return race_index, gender, age, predicted, logits


def predictions_table(taxonomy, races, race_index, gender, age, logits):
    frames = []
    for objective, probe_id in enumerate(OBJECTIVES):
        probe = taxonomy.probe(probe_id)
        class_ids = np.asarray(probe.class_ids(), dtype=object)
        frame = pd.DataFrame({
            "probe": probe_id, "image_id": [f"{index}.jpg" for index in range(len(age))],
            "age": [AGES[i] for i in age], "gender": [GENDERS[i] for i in gender],
            "race": [races[i] for i in race_index]})
        frame["target"] = frame[probe.target].astype(object) if probe.target else None
        frame["prediction"] = class_ids[logits[objective].argmax(axis=1)]
        frame["scores"] = list(logits[objective])
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("name, races", [("datacomp_fairface", FAIRFACE_RACES), ("datacomp_utkface", UTKFACE_RACES)])
def test_every_datacomp_number_appears_in_clipaudit_output_with_the_same_value(tmp_path, name, races):
    taxonomy = load_taxonomy(name)
    race_index, gender, age, predicted, logits = hand_made_logits(races)
    race_binary = (race_index != races.index("White")).astype(int)
    metadata = np.stack([age, gender, race_index, race_binary], axis=1)
    y_pred = np.stack([rows.argmax(axis=1) for rows in logits], axis=1)
    assert (y_pred == predicted).all()
    expected = reference_datacomp_metrics(y_pred, metadata)

    predictions_path = tmp_path / "predictions.parquet"
    predictions_path.write_bytes(predictions_to_parquet_bytes(
        predictions_table(taxonomy, races, race_index, gender, age, logits)))
    out = tmp_path / "out"
    assert main(["stats", str(predictions_path), "--taxonomy", name, "--out", str(out), "--bootstrap", "0"]) == 0
    results = json.loads((out / "results.json").read_text())
    reproduced = results["published_tables"]["datacomp"]
    assert reproduced["race_order"] == races
    for key, value in expected.items():
        cell = reproduced["metrics"][key]
        if math.isnan(value):
            assert cell["value"] is None and cell["n"] == 0, key
        else:
            assert cell["value"] == pytest.approx(value, abs=1e-12), key
    # Every cell of DataComp's three tables is one of those keys, and is in the summary.
    summary = (out / "summary.md").read_text()
    for table in reproduced["tables"]:
        assert table["title"] in summary
        for row in table["rows"]:
            assert all(key in reproduced["metrics"] for key in row["cells"])
    assert "acc_race_wg" in summary and "toxicity_crime_wg" in summary
    assert "DataComp tables" in (out / "report.html").read_text()
    assert_race_binary_is_scored_by_the_engine(results, races, race_index, logits)


def assert_race_binary_is_scored_by_the_engine(results, races, race_index, logits):
    """The race probe's White vs non-White outcome is a metric of its own beside 7-way accuracy."""
    race = next(probe for probe in results["probes"] if probe["id"] == "race")
    assert race["metrics"] == ["accuracy", "accuracy_race_binary"]
    binary = race["overall"]["accuracy_race_binary"]
    # Counted by hand: predicted index != 1 ('white') against race != White.
    truth = race_index != races.index("White")
    predicted_non_white = logits[0].argmax(axis=1) != WHITE
    assert binary["successes"] == int(np.sum(truth == predicted_non_white)) and binary["n"] == len(truth)
    slices = {entry["id"]: entry for entry in race["slices"]}
    groups = {group["group"]: group["n"] for group in slices["race_binary"]["metrics"][0]["groups"]}
    assert groups == {"White": int(np.sum(~truth)), "non-White": int(np.sum(truth))}
