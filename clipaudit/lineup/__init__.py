"""Several audits of different models, side by side (`clipaudit report AUDIT_DIR AUDIT_DIR ... --out DIR`)."""
from clipaudit.lineup.run import LINEUP_OUTPUT, lineup_page, run_lineup, write_lineup

__all__ = ["LINEUP_OUTPUT", "lineup_page", "run_lineup", "write_lineup"]
