"""Per-group statistics for clipaudit: rates with intervals, disparities, tests, findings.

Runs from a predictions table alone; imports neither torch nor transformers.
"""
from clipaudit.stats.engine import (
    Disparity,
    GroupCounts,
    ProbeSpec,
    StatsSettings,
    compute_statistics,
    disparity,
    gap,
    ratio,
)
from clipaudit.stats.findings import Finding
from clipaudit.stats.hypothesis_tests import (
    OmnibusTest,
    chi_square_test,
    omnibus_test,
    permutation_chi_square_test,
)
from clipaudit.stats.intervals import ConfidenceInterval, interval
from clipaudit.stats.multiple import adjust_p_values, holm

__all__ = [
    "ConfidenceInterval",
    "Disparity",
    "Finding",
    "GroupCounts",
    "OmnibusTest",
    "ProbeSpec",
    "StatsSettings",
    "adjust_p_values",
    "chi_square_test",
    "compute_statistics",
    "disparity",
    "gap",
    "holm",
    "interval",
    "omnibus_test",
    "permutation_chi_square_test",
    "ratio",
]
