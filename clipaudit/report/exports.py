"""Text exports of the findings, from results.json alone, next to report.html.

- ``summary.md``: one header line and a Markdown table of findings, for CI logs and pull
  requests.
- ``model-index.yaml``: the overall rates and the findings as Hugging Face model card
  ``model-index`` evaluation results (huggingface/hub-docs ``modelcard.md``), to paste into
  a model card's metadata.

Both go through the same view model and formatting functions as the HTML report, so a
number reads the same in all three.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from .view import (
    GroupRow,
    ReportView,
    build_report_view,
    format_interval,
    format_p_value,
    format_percent,
    format_signed_interval,
    format_signed_points,
)

SUMMARY_COLUMNS = (
    "probe", "slice", "group", "metric", "value (CI)", "reference", "difference (CI)", "p_adj", "significant",
)
MODEL_INDEX_TASK = "zero-shot-image-classification"
# Markdown characters that change a table cell's structure or formatting; '\' first.
_MARKDOWN_SPECIAL = re.compile(r"([\\|`*\[\]])")


def escape_markdown_cell(text: str) -> str:
    """Plain text for one Markdown table cell: no line breaks, pipes and markup escaped.

    '<' and '>' become entities so that raw HTML in a class or group name is shown, not
    interpreted, by renderers that allow HTML (GitHub, GitLab).
    """
    flat = " ".join(str(text).split())
    flat = _MARKDOWN_SPECIAL.sub(r"\\\1", flat)
    return flat.replace("<", "&lt;").replace(">", "&gt;")


def render_summary_markdown(results: Mapping[str, Any]) -> str:
    """summary.md: a header line (model, dataset, taxonomy, tests, correction) and the findings table."""
    view = build_report_view(results)
    stats = view.statistics
    sha = f" (sha256 {view.taxonomy_sha256[:12]})" if view.taxonomy_sha256 else ""
    alpha = f", \u03b1 = {stats.alpha:g}" if stats.alpha is not None else ""
    min_effect = f", min effect {stats.min_effect * 100:g} pp" if stats.min_effect is not None else ""
    header = (
        f"**clipaudit** \u00b7 model `{_code(view.model_id)}` \u00b7 dataset `{_code(view.dataset_spec)}` "
        f"\u00b7 taxonomy `{_code(view.taxonomy_name)}`{sha} \u00b7 {stats.family_size} tests, "
        f"{stats.correction_label} correction{alpha}{min_effect} \u00b7 "
        f"{len(view.findings)} finding{'s' if len(view.findings) != 1 else ''}"
    )
    lines = ["# clipaudit findings", "", header, ""]
    findings = _ordered_raw_findings(results, view)
    if not findings:
        lines.append("No significant findings.")
        return "\n".join(lines) + "\n"
    lines.append("| " + " | ".join(SUMMARY_COLUMNS) + " |")
    lines.append("|" + "|".join("---" if i < 4 else "--:" for i in range(len(SUMMARY_COLUMNS) - 1)) + "|:-:|")
    for raw in findings:
        # Names come from users and are escaped; numbers are formatted here and contain no markup.
        names = [str(raw.get(key, "")) for key in ("probe", "slice", "group", "metric")]
        row = _group_row(view, raw)
        ci_low, ci_high = _number(raw.get("ci_low")), _number(raw.get("ci_high"))
        if ci_low is None and row is not None:  # older findings: the interval is in the group's table
            ci_low, ci_high = row.rate.ci_low, row.rate.ci_high
        difference_low, difference_high = _number(raw.get("difference_ci_low")), _number(raw.get("difference_ci_high"))
        if difference_low is None and row is not None and row.comparison is not None:
            difference_low, difference_high = row.comparison.ci_low, row.comparison.ci_high
        numbers = [
            f"{format_percent(_number(raw.get('value')))} ({format_interval(ci_low, ci_high)})",
            f"{escape_markdown_cell(str(raw.get('reference') or 'overall'))} "
            f"{format_percent(_number(raw.get('reference_value')))}",
            f"{format_signed_points(_number(raw.get('difference')))} pp "
            f"({format_signed_interval(difference_low, difference_high)})",
            format_p_value(_number(raw.get("p_adjusted"))),
            _significance(raw),
        ]
        lines.append("| " + " | ".join([escape_markdown_cell(name) for name in names] + numbers) + " |")
    return "\n".join(lines) + "\n"


def render_model_index(results: Mapping[str, Any]) -> str:
    """model-index.yaml: overall rates per probe, then every finding, as model card eval results."""
    view = build_report_view(results)
    manifest = results.get("manifest") or {}
    dataset = manifest.get("dataset") or {}
    dataset_entry: dict[str, Any] = {"name": _dataset_name(view.dataset_spec, dataset), "type": _dataset_type(view.dataset_spec, dataset)}
    if dataset.get("split"):
        dataset_entry["split"] = str(dataset["split"])
    metrics: list[dict[str, Any]] = []
    for probe in view.probes:
        for row in probe.overall:
            if row.rate.value is not None:
                metrics.append({"type": row.metric, "value": _rounded(row.rate.value),
                                "name": f"{probe.id} {row.metric} (overall)"})
    for raw in _ordered_raw_findings(results, view):
        value = _number(raw.get("value"))
        if value is None:
            continue
        metrics.append({
            "type": str(raw.get("metric", "")),
            "value": _rounded(value),
            "name": f"{raw.get('probe')} {raw.get('metric')} ({raw.get('slice')}={raw.get('group')})",
        })
    document = {
        "model-index": [{
            "name": view.model_id,
            "results": [{
                "task": {"type": MODEL_INDEX_TASK, "name": f"Fairness audit: {view.taxonomy_name}"},
                "dataset": dataset_entry,
                "metrics": metrics,
                "source": {"name": "clipaudit"},
            }],
        }],
    }
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=1000)


def _ordered_raw_findings(results: Mapping[str, Any], view: ReportView) -> list[Mapping[str, Any]]:
    """The raw findings in the report's order (most severe first)."""
    raw_findings = list(results.get("findings") or [])
    return [raw_findings[finding.index] for finding in view.findings]


def _group_row(view: ReportView, raw: Mapping[str, Any]) -> GroupRow | None:
    for table in view.tables():
        if (table.probe_id, table.slice_id, table.metric) == (raw.get("probe"), raw.get("slice"), raw.get("metric")):
            return next((row for row in table.rows if row.group == str(raw.get("group"))), None)
    return None


def _significance(raw: Mapping[str, Any]) -> str:
    if not raw.get("significant", False):
        return "no"
    worse = raw.get("worse")
    return "yes, worse" if worse is True else "yes, better" if worse is False else "yes"


def _dataset_type(spec: str, dataset: Mapping[str, Any]) -> str:
    """'hf:HuggingFaceM4/FairFace:0.25:validation' -> 'HuggingFaceM4/FairFace'; 'fairface:/data' -> 'fairface'."""
    if dataset.get("type"):
        return str(dataset["type"])
    scheme, _, rest = spec.partition(":")
    if scheme == "hf" and rest:
        return rest.split(":")[0]
    return scheme or spec


def _dataset_name(spec: str, dataset: Mapping[str, Any]) -> str:
    return str(dataset.get("name") or spec)


def _rounded(value: float) -> float:
    return round(float(value), 4)


def _number(value: Any) -> float | None:
    return None if value is None or isinstance(value, bool) else float(value)


def _code(text: str) -> str:
    """Text inside a Markdown code span: backticks cannot be escaped there, so they are replaced."""
    return " ".join(str(text).split()).replace("`", "\u02cb")


__all__ = ["render_summary_markdown", "render_model_index", "escape_markdown_cell"]
