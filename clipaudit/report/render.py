"""Render a results dict into one self-contained HTML report (model-card style).

results dict -> :func:`~clipaudit.report.view.build_report_view` -> charts
(:mod:`~clipaudit.report.plots`) -> jinja2 template with autoescape. Every string from
the results (class ids, prompts, group, model and dataset names) reaches the page through
autoescaped ``{{ }}`` output; the only markup marked safe is the SVG that plots.py built.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from . import view as view_module
from .plots import Chart, confusion_chart, heatmap_chart, rate_chart

TEMPLATES_DIR = Path(__file__).parent / "templates"
REPORT_TEMPLATE = "report.html.j2"

FILTERS = {
    "percent": view_module.format_percent,
    "interval": view_module.format_interval,
    "points": view_module.format_points,
    "signed_points": view_module.format_signed_points,
    "signed_interval": view_module.format_signed_interval,
    "ratio": view_module.format_ratio,
    "statistic": view_module.format_statistic,
    "p_value": view_module.format_p_value,
    "count": view_module.format_count,
    "yes_no": view_module.format_yes_no,
    "confidence": view_module.format_confidence,
    "or_dash": lambda value: view_module.NOT_AVAILABLE if value is None else value,
}


@lru_cache(maxsize=1)
def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        # Escape everything, whatever the template's name: report text is untrusted input.
        autoescape=select_autoescape(
            enabled_extensions=("html", "htm", "xml", "j2"), default_for_string=True, default=True
        ),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters.update(FILTERS)
    return environment


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
    report = view_module.build_report_view(results, report_config=report_config)
    confidence_level = report.statistics.confidence_level
    charts: dict[str, Chart | None] = {
        table.anchor: rate_chart(table, confidence_level=confidence_level, min_n=report.statistics.min_n)
        for table in report.tables()
    }
    heatmaps: dict[str, Chart | None] = {
        table.anchor: heatmap_chart(table, confidence_level=confidence_level) for table in report.tables()
    }
    confusions: dict[str, Chart] = {
        probe.anchor: confusion_chart(probe.confusion) for probe in report.probes if probe.confusion is not None
    }
    return _environment().get_template(REPORT_TEMPLATE).render(
        report=report, charts=charts, heatmaps=heatmaps, confusions=confusions, comparison=comparison
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
