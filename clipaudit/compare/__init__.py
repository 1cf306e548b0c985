"""Regression checks: a candidate audit against a baseline audit, rule by rule and group by group."""
from clipaudit.compare.run import (
    OUTPUT_NAMES,
    CompareSettings,
    Comparison,
    audit_output_from_run,
    compare_audits,
    load_audit_output,
    run_compare,
    write_comparison,
)
from clipaudit.compare.thresholds import Thresholds, load_thresholds

__all__ = ["OUTPUT_NAMES", "CompareSettings", "Comparison", "Thresholds", "audit_output_from_run",
           "compare_audits", "load_audit_output", "load_thresholds", "run_compare", "write_comparison"]
