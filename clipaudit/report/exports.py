"""Text exports of the findings, from results.json alone, next to report.html.

- ``summary.md``: one header line and a Markdown table of findings, for CI logs and pull
  requests.
- ``model-index.yaml``: the overall rates and the findings as Hugging Face model card
  ``model-index`` evaluation results (huggingface/hub-docs ``modelcard.md``), to paste into
  a model card's metadata.

Both list the findings in results.json's order and round numbers with :mod:`clipaudit.format`,
as the HTML report does, so a number reads the same in all three.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from clipaudit import format

from .audit_view import build_report_view
from .markdown import code_span, escape_markdown_cell
from .published_tables_view import published_tables_markdown

SUMMARY_COLUMNS = (
    "probe", "slice", "group", "metric", "value (CI)", "reference", "difference (CI)", "p_adj", "significant",
)
MODEL_INDEX_TASK = "zero-shot-image-classification"
MODEL_INDEX_DIGITS = 4  # model-index values are data (YAML numbers), not display text


def render_summary_markdown(results: Mapping[str, Any]) -> str:
    """summary.md: a header line (model, dataset, taxonomy, tests, correction) and the findings table."""
    view = build_report_view(results)
    stats = view.statistics
    min_effect = f", min effect {format.points_size(stats.min_effect)}" if stats.min_effect is not None else ""
    findings = results["findings"]
    header = (
        f"**clipaudit** \u00b7 model `{code_span(format.or_dash(view.model_id))}` \u00b7 dataset "
        f"`{code_span(format.or_dash(view.dataset_spec))}` \u00b7 taxonomy `{code_span(view.taxonomy_name)}` "
        f"(sha256 {view.taxonomy_sha256[:12]}) \u00b7 {format.or_dash(stats.family_size)} tests, "
        f"{stats.correction_label} correction, \u03b1 = {format.alpha(stats.alpha)}{min_effect} \u00b7 "
        f"{len(findings)} finding{'s' if len(findings) != 1 else ''}"
    )
    lines = ["# clipaudit findings", "", header, ""]
    for alert in view.alerts:  # what a reader must see before any number (manifest.alerts)
        lines += [f"> **Read first:** {escape_markdown_cell(alert)}", ""]
    if not findings:
        lines.append("No significant findings.")
        return "\n".join(lines + published_tables_markdown(results)) + "\n"
    lines.append("| " + " | ".join(SUMMARY_COLUMNS) + " |")
    lines.append("|" + "|".join("---" if i < 4 else "--:" for i in range(len(SUMMARY_COLUMNS) - 1)) + "|:-:|")
    for raw in findings:
        # Names come from users and are escaped; numbers are formatted and contain no markup.
        names = [escape_markdown_cell(raw[key]) for key in ("probe", "slice", "group", "metric")]
        reference = f"{escape_markdown_cell(raw['reference'])} " if "reference" in raw else ""
        numbers = [
            f"{format.percent(raw['value'])} ({format.percent_range(raw['ci_low'], raw['ci_high'])})",
            f"{reference}{format.percent(raw['reference_value'])}",
            f"{format.points(raw['difference'])} "
            f"({format.points_range(raw.get('difference_ci_low'), raw.get('difference_ci_high'))})",
            format.p_value(raw["p_adjusted"]),
            _significance(raw),
        ]
        lines.append("| " + " | ".join(names + numbers) + " |")
    return "\n".join(lines + published_tables_markdown(results)) + "\n"


def render_model_index(results: Mapping[str, Any]) -> str:
    """model-index.yaml: overall rates per probe, then every finding, as model card eval results."""
    view = build_report_view(results)
    dataset_spec = str(format.or_dash(view.dataset_spec))
    metrics: list[dict[str, Any]] = []
    for probe in view.probes:
        for metric, rate in probe.overall.items():
            if rate.value is not None:  # null only when the probe had no images
                metrics.append({"type": metric, "value": round(float(rate.value), MODEL_INDEX_DIGITS),
                                "name": f"{probe.id} {metric} (overall)"})
    for raw in results["findings"]:
        metrics.append({
            "type": raw["metric"],
            "value": round(float(raw["value"]), MODEL_INDEX_DIGITS),
            "name": f"{raw['probe']} {raw['metric']} ({raw['slice']}={raw['group']})",
        })
    document = {
        "model-index": [{
            "name": str(format.or_dash(view.model_id)),
            "results": [{
                "task": {"type": MODEL_INDEX_TASK, "name": f"Fairness audit: {view.taxonomy_name}"},
                "dataset": {"name": dataset_spec, "type": _dataset_type(dataset_spec)},
                "metrics": metrics,
                "source": {"name": "clipaudit"},
            }],
        }],
    }
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=1000)


def _significance(raw: Mapping[str, Any]) -> str:
    if not raw["significant"]:
        return "no"
    worse = raw.get("worse")
    return "yes, worse" if worse is True else "yes, better" if worse is False else "yes"


def _dataset_type(spec: str) -> str:
    """'hf:HuggingFaceM4/FairFace:0.25:validation' -> 'HuggingFaceM4/FairFace'; 'fairface:/data' -> 'fairface'."""
    scheme, _, rest = spec.partition(":")
    if scheme == "hf" and rest:
        return rest.split(":")[0]
    return scheme or spec


__all__ = ["render_summary_markdown", "render_model_index"]
