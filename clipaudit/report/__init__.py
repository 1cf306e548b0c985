"""HTML reports: render a results dict (results.json) into one self-contained page,
plus the Markdown summary and the Hugging Face model-index of its findings."""
from .exports import render_model_index, render_summary_markdown
from .render import render_report, write_report

__all__ = ["render_report", "write_report", "render_summary_markdown", "render_model_index"]
