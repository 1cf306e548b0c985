"""Confusion matrices for attribute probes, from a predictions table (torch-free).

results.json carries one per attribute probe (``probe["confusion"]``) so the report can draw
it from results alone, as ``clipaudit stats`` re-renders without images.
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from clipaudit.taxonomy import Probe


def confusion_matrix(predictions: pd.DataFrame, probe: Probe) -> dict[str, Any] | None:
    """Counts of (target, prediction) pairs for one attribute probe; None for harm probes.

    ``{"labels": [...], "counts": [[...]]}``: rows are targets, columns predictions, both in
    ``labels`` order -- the probe's class ids in score order, then any target value that is
    not a class id (sorted; its column is all zeros). Rows with a null target are left out,
    as they are from accuracy.
    """
    if probe.kind != "attribute":
        return None
    rows = predictions.loc[predictions["probe"] == probe.id, ["target", "prediction"]]
    rows = rows[rows["target"].notna()]
    labels = list(probe.class_ids())
    labels += sorted(set(rows["target"].astype(str)) - set(labels))
    position = {label: index for index, label in enumerate(labels)}
    counts = [[0] * len(labels) for _ in labels]
    pairs = rows.astype(str).value_counts(sort=False)
    for (target, prediction), count in pairs.items():
        if prediction in position:  # a prediction is always a class id; guard against foreign rows
            counts[position[target]][position[prediction]] += int(count)
    return {"labels": labels, "counts": counts}
