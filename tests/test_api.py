"""The public Python API: the curated names, a torch-free import, and the per-group table."""
from __future__ import annotations

import subprocess
import sys

import numpy as np

import clipaudit
from clipaudit.stats import StatsSettings, compute_statistics, group_table
from test_stats_engine import HARM, harm_frame


def test_every_public_name_resolves():
    for name in clipaudit.__all__:
        assert getattr(clipaudit, name) is not None, name


def test_importing_clipaudit_and_its_statistics_loads_no_torch():
    code = ("import sys, clipaudit, clipaudit.stats, clipaudit.report, clipaudit.compare; "
            "clipaudit.group_table; clipaudit.render_report; print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_group_table_holds_every_group_of_the_results():
    frame = harm_frame(np.random.default_rng(3), 2_000, {"Black": 0.2})
    results = compute_statistics(frame, [HARM], settings=StatsSettings(min_n=20))
    table = group_table(results)
    groups = [(probe["id"], entry["id"], metric["metric"], group)
              for probe in results["probes"] for entry in probe["slices"] for metric in entry["metrics"]
              for group in metric["groups"]]
    assert len(table) == len(groups)
    for row, (probe, slice_id, metric, group) in zip(table.itertuples(), groups):
        assert (row.probe, row.slice, row.metric, row.group) == (probe, slice_id, metric, group["group"])
        assert (row.n, row.value, row.ci_low, row.ci_high) == (group["n"], group["value"], group["ci_low"],
                                                               group["ci_high"])
    tested = table[table["p_adjusted"].notna()]
    assert len(tested) and tested["significant"].any()
    black = table.query("slice == 'race' and metric == 'harm_rate' and group == 'Black'").iloc[0]
    assert black["difference"] > 0 and black["significant"]
