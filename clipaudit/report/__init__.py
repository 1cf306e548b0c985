"""Reports: a results dict (results.json) -> one self-contained HTML page, the Markdown summary
and the Hugging Face model-index of its findings; compare.json -> compare.html, compare.md and
junit.xml; sweep.json -> sweep.html.

results.json -> :mod:`.audit_view` (the view model of :mod:`.view_model`) -> :mod:`.render`
(templates, :mod:`.plots`) and :mod:`.exports`. Numbers are rounded by :mod:`clipaudit.format`.
"""
from .audit_view import build_report_view
from .compare_exports import render_compare_markdown, render_junit
from .compare_view import render_compare_html
from .exports import render_model_index, render_summary_markdown
from .lineup_view import render_lineup_html
from .render import render_report, render_summary_html, write_report

__all__ = [
    "build_report_view",
    "render_compare_html",
    "render_compare_markdown",
    "render_junit",
    "render_lineup_html",
    "render_model_index",
    "render_report",
    "render_summary_html",
    "render_summary_markdown",
    "write_report",
]
