"""sweep.html: a sensitivity study read at a glance, in the report's style and safety rules.

sweep.json -> small display rows (this module) -> heatmaps (matplotlib SVG, inlined the way the
audit report inlines its charts) -> `templates/sweep.html.j2`, rendered with autoescape.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from clipaudit import format
from clipaudit.vocabulary import ACCURACY, HARM_RATE, metric_words

from .anchors import slugify
from .published_tables_view import clip_table_7_from_sweep
from .templating import environment
from .svg import figure_to_svg, make_inline

HEADLINE_METRICS = (ACCURACY, HARM_RATE)


@dataclass(frozen=True)
class SensitivityTable:
    """One probe x slice x metric: groups down, variants across, rates and paired changes."""

    anchor: str
    probe: str
    slice: str
    metric: str
    variants: list[str]
    rows: list[dict[str, Any]]   # {"group", "n", "small", "cells": [{"value", "difference", "significant", ...}]}
    chart: Any


def build_tables(document: Mapping[str, Any]) -> list[SensitivityTable]:
    """Headline metric (accuracy, harm rate) of every probe x slice, with one column per variant."""
    changes = [row for row in document["changes"] if row["metric"] in HEADLINE_METRICS]
    tables = []
    keys = list(dict.fromkeys((row["taxonomy"], row["probe"], row["slice"], row["metric"]) for row in changes))
    for taxonomy, probe, slice_id, metric in keys:
        selected = [r for r in changes if (r["taxonomy"], r["probe"], r["slice"], r["metric"]) == (taxonomy, probe, slice_id, metric)]
        variants = list(dict.fromkeys(r["variant"] for r in selected))
        groups = list(dict.fromkeys(r["group"] for r in selected))
        by_key = {(r["group"], r["variant"]): r for r in selected}
        rows = [
            {
                "group": group,
                "n": next(r["n"] for r in selected if r["group"] == group),
                "small": next(r["small"] for r in selected if r["group"] == group),
                "cells": [by_key.get((group, variant)) for variant in variants],
            }
            for group in groups
        ]
        anchor = _anchor(taxonomy, probe, slice_id, metric)
        tables.append(SensitivityTable(anchor, probe, slice_id, metric, variants, rows, _heatmap(anchor, probe, slice_id, metric, variants, rows)))
    return tables


def render_sweep_report(document: Mapping[str, Any]) -> str:
    return environment().get_template("sweep.html.j2").render(
        sweep=document,
        manifest=document["manifest"],
        tables=build_tables(document),
        class_changes=[entry for entry in document["class_changes"] if entry["n_changed"]],
        clip_table_7=clip_table_7_from_sweep(document),
    )


def _heatmap(anchor: str, probe: str, slice_id: str, metric: str, variants: list[str], rows: list[dict]):
    """Change from the base in points: diverging, colour-blind-safe (PuOr), centred on zero."""
    changed = [v for v in variants if v != "base"]
    if not changed or not rows:
        return None
    values = np.array([[_points(row["cells"][variants.index(v)]) for v in changed] for row in rows], dtype=float)
    limit = max(1.0, float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0)
    figure = Figure(figsize=(1.4 + 0.9 * len(changed), 0.9 + 0.32 * len(rows)))
    axes = figure.add_subplot()
    image = axes.imshow(np.ma.masked_invalid(values), cmap="PuOr_r", vmin=-limit, vmax=limit, aspect="auto")
    axes.set_xticks(range(len(changed)), labels=changed, rotation=30, ha="right")
    axes.set_yticks(range(len(rows)), labels=[row["group"] for row in rows])
    for (i, j), value in np.ndenumerate(values):
        if np.isfinite(value):
            cell = rows[i]["cells"][variants.index(changed[j])]
            mark = "*" if cell and cell["significant"] else ""
            axes.text(j, i, f"{format.points_number(cell['difference'])}{mark}", ha="center", va="center", fontsize=7,
                      color="white" if abs(value) > 0.6 * limit else "black")
    colorbar = figure.colorbar(image, ax=axes, fraction=0.05)
    colorbar.set_label("change from base (points)")
    axes.set_title(f"{probe}: {metric_words(metric)} by {slice_id}", fontsize=9)
    alt = (
        f"Heatmap of the change in {metric_words(metric)} from the base taxonomy, for each {slice_id} group "
        f"(rows) and variant (columns) of probe {probe}; * marks a significant change."
    )
    return make_inline(figure_to_svg(figure), alt=alt, element_id=f"chart-{anchor}")


def _points(cell) -> float:
    """The change on the colour scale (points); NaN leaves the cell blank."""
    return float("nan") if cell is None else cell["difference"] * 100


def _anchor(*parts: str) -> str:
    return "sweep-" + "--".join(slugify(part) for part in parts)
