"""Regression checks: a candidate audit against a baseline audit, rule by rule and group by group."""
from clipaudit.compare.document import OUTPUT_NAMES, Comparison, comparison_files, write_comparison
from clipaudit.compare.inputs import AuditOutput, CompareSettings, audit_output_from_run, load_audit_output
from clipaudit.compare.run import compare_audits, run_compare
from clipaudit.compare.thresholds import Thresholds, load_thresholds

__all__ = ["OUTPUT_NAMES", "AuditOutput", "CompareSettings", "Comparison", "Thresholds", "audit_output_from_run",
           "compare_audits", "comparison_files", "load_audit_output", "load_thresholds", "run_compare",
           "write_comparison"]
