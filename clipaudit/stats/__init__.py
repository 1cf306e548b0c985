"""Per-group statistics for clipaudit: rates with intervals, disparities, tests, findings.

Runs from a predictions table alone; imports neither torch nor transformers.
See the README section "Statistics" for what each number is and how it is computed.
"""
from clipaudit.stats.disparities import (
    Disparity,
    TwoSampleEstimate,
    disparity,
    gap,
    katz_ratio,
    minimum_detectable_difference,
    newcombe_difference,
    odds_ratio,
    ratio,
)
from clipaudit.stats.engine import compute_statistics
from clipaudit.stats.spread import SpreadInterval, spread_interval
from clipaudit.stats.groups import GroupCounts, SliceGroups, group_counts, probe_slice_groups
from clipaudit.stats.metrics import ProbeSpec, metric_names, metric_outcomes
from clipaudit.stats.reference import Reference, resolve_reference
from clipaudit.stats.settings import StatsSettings
from clipaudit.stats.significance import correct_family, is_significant
from clipaudit.stats.tables import group_table
from clipaudit.stats.findings import Finding
from clipaudit.stats.hypothesis_tests import (
    McNemarTest,
    OmnibusTest,
    PairwiseTest,
    TrendTest,
    chi_square_test,
    cochran_armitage_test,
    mcnemar_exact,
    omnibus_test,
    pairwise_test,
    permutation_chi_square_test,
    trend_test,
)
from clipaudit.stats.intervals import ConfidenceInterval, interval
from clipaudit.stats.multiple import adjust_p_values, benjamini_hochberg, holm
from clipaudit.stats.paired import PairedDifference, paired_difference, paired_difference_from_outcomes

__all__ = [
    "ConfidenceInterval",
    "Disparity",
    "Finding",
    "GroupCounts",
    "McNemarTest",
    "OmnibusTest",
    "PairedDifference",
    "PairwiseTest",
    "SliceGroups",
    "ProbeSpec",
    "Reference",
    "SpreadInterval",
    "StatsSettings",
    "TrendTest",
    "TwoSampleEstimate",
    "adjust_p_values",
    "benjamini_hochberg",
    "spread_interval",
    "chi_square_test",
    "cochran_armitage_test",
    "compute_statistics",
    "correct_family",
    "disparity",
    "gap",
    "group_counts",
    "group_table",
    "holm",
    "interval",
    "is_significant",
    "katz_ratio",
    "mcnemar_exact",
    "metric_names",
    "metric_outcomes",
    "minimum_detectable_difference",
    "newcombe_difference",
    "odds_ratio",
    "omnibus_test",
    "paired_difference",
    "paired_difference_from_outcomes",
    "pairwise_test",
    "probe_slice_groups",
    "permutation_chi_square_test",
    "ratio",
    "resolve_reference",
    "trend_test",
]
