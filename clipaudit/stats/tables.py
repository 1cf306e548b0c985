"""A results document as a table: one row per (probe, slice, metric, group), for pandas users."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

GROUP_TABLE_COLUMNS = ("probe", "slice", "metric", "group", "n", "successes", "value", "ci_low", "ci_high", "small",
                       "reference", "reference_value", "difference", "difference_ci_low", "difference_ci_high",
                       "p_value", "p_adjusted", "significant")


def group_table(results: Mapping[str, Any]) -> pd.DataFrame:
    """Every group of every probe, slice and metric with its rate and interval, and (where the group
    was tested) its difference from the reference, the interval of that difference and the test.

    Rows follow results.json's order; untested groups (small, or the reference itself) have no
    difference or p-value.
    """
    rows = []
    for probe in results["probes"]:
        for entry in probe["slices"]:
            for metric in entry["metrics"]:
                comparisons = {comparison["group"]: comparison for comparison in metric["comparisons"]}
                for group in metric["groups"]:
                    comparison = comparisons.get(group["group"], {})
                    rows.append({
                        "probe": probe["id"], "slice": entry["id"], "metric": metric["metric"],
                        **{key: group[key] for key in ("group", "n", "successes", "value", "ci_low", "ci_high",
                                                       "small")},
                        "reference": comparison.get("reference"),
                        **{key: comparison.get(key) for key in GROUP_TABLE_COLUMNS[11:]},
                    })
    table = pd.DataFrame(rows, columns=list(GROUP_TABLE_COLUMNS))
    table["significant"] = table["significant"].astype("boolean")
    return table
