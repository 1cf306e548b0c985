"""Render a results dict into one self-contained HTML report (model-card style).

results dict -> :func:`~clipaudit.report.audit_view.build_report_view` -> charts
(:mod:`~clipaudit.report.plots`) -> jinja2 template with autoescape. Every string from
the results (class ids, prompts, group, model and dataset names) reaches the page through
autoescaped ``{{ }}`` output (:mod:`.templating`); the only markup marked safe is the SVG
that plots.py built. Numbers are rounded by the filters, :mod:`clipaudit.format`'s functions.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .audit_view import build_report_view
from .compare_view import build_compare_view
from .published_tables_view import build_published_tables
from .plots import Chart, confusion_chart, heatmap_chart, rate_chart
from .templating import environment

REPORT_TEMPLATE = "report.html.j2"
SUMMARY_TEMPLATE = "summary.html.j2"


def render_report(
    results: Mapping[str, Any],
    *,
    report_config: Mapping[str, Any] | None = None,
    comparison: Mapping[str, Any] | None = None,
) -> str:
    """The HTML of the report for ``results`` (the results.json shape, as a dict).

    ``report_config`` optionally sets ``title``, ``intended_use`` and ``out_of_scope_use``;
    ``comparison`` (compare.json's shape, from ``audit --baseline``) adds a section on the check
    against the baseline.
    """
    report = build_report_view(results, report_config=report_config)
    stats = report.statistics
    charts: dict[str, Chart | None] = {
        table.anchor: rate_chart(table, confidence_level=stats.confidence_level, min_n=stats.min_n,
                                 interval=stats.interval)
        for table in report.tables()
    }
    heatmaps: dict[str, Chart | None] = {
        table.anchor: heatmap_chart(table, confidence_level=stats.confidence_level) for table in report.tables()
    }
    confusions: dict[str, Chart] = {
        probe.anchor: confusion_chart(probe.confusion) for probe in report.probes if probe.confusion is not None
    }
    return environment().get_template(REPORT_TEMPLATE).render(
        report=report, charts=charts, heatmaps=heatmaps, confusions=confusions, comparison=comparison,
        comparison_view=None if comparison is None else build_compare_view(comparison),
        published=build_published_tables(results),
    )


def write_report(results: Mapping[str, Any], path: Path, *, report_config: Mapping[str, Any] | None = None) -> None:
    """Write the report to ``path`` atomically: a temp file in the same folder, then a rename.

    Readers see the old file or the new one, never half of one; on failure nothing is left.
    """
    path = Path(path)
    html = render_report(results, report_config=report_config)
    descriptor, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="\n") as temp_file:
            temp_file.write(html)
        os.chmod(temp_name, 0o644)  # mkstemp creates 0600; a report is meant to be shared
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def render_summary_html(results: Mapping[str, Any]) -> str:
    """The report's first screen alone (verdict, scorecard, key findings) as an HTML fragment with its
    own scoped styles: what a notebook shows for an audit (``AuditRun._repr_html_``)."""
    report = build_report_view(results)
    return environment().get_template(SUMMARY_TEMPLATE).render(report=report)
