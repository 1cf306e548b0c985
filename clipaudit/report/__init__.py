"""HTML reports: render a results dict (results.json) into one self-contained page."""
from .render import render_report, write_report

__all__ = ["render_report", "write_report"]
