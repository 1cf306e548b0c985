"""Charts for the report: matplotlib figures rendered to inline SVG (see :mod:`.svg`).

Figures are built with the object-oriented API (``matplotlib.figure.Figure``), never
pyplot, so rendering touches no global backend state and works headless. Alt text rounds
numbers with :mod:`clipaudit.format`, as the tables do.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib
from markupsafe import Markup
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import PercentFormatter

from clipaudit import format
from clipaudit.vocabulary import GROUP_SEPARATOR, group_label, metric_words

from .svg import INK, RC, figure_to_svg, make_inline, tight_layout
from .view_model import Confusion, GroupRow, MetricTable

# Okabe & Ito (2008), "Color Universal Design": distinguishable with all common colour-vision deficiencies.
OKABE_ITO_BLUE = "#0072B2"
OKABE_ITO_VERMILLION = "#D55E00"
SMALL_GROUP_FILL = "#E3E3E3"
SMALL_GROUP_EDGE = "#6E6E6E"
GRID = "#D9D9D9"
#: How the legend names each rate interval method (manifest.statistics.interval).
INTERVAL_NAMES = {"wilson": "Wilson", "clopper-pearson": "Clopper-Pearson", "jeffreys": "Jeffreys"}


@dataclass(frozen=True)
class Chart:
    """An inline SVG (trusted markup, already escaped) and a text alternative for it."""

    svg: Markup
    alt: str


def rate_chart(
    table: MetricTable,
    *,
    confidence_level: float,
    min_n: int,
    interval: str | None = None,
) -> Chart | None:
    """Horizontal bars per group with interval whiskers and the overall rate as a line.

    Small groups (``small`` in the results) are drawn hatched and grey; ``None`` when the
    slice has no group with images. ``interval`` names the rate interval's method in the legend.
    """
    if not table.rows:
        return None
    alt = rate_chart_alt_text(table, confidence_level=confidence_level)
    with matplotlib.rc_context(RC):
        figure = _draw_rate_chart(table, confidence_level=confidence_level, min_n=min_n, interval=interval)
        svg = figure_to_svg(figure)
    return Chart(svg=make_inline(svg, alt=alt, element_id=f"chart_{table.anchor}"), alt=alt)


def rate_chart_alt_text(table: MetricTable, *, confidence_level: float) -> str:
    """A sentence a screen reader can read instead of the chart; same rounding as the table."""
    described = "; ".join(
        f"{row.group} {_rate_phrase(row, confidence_level)}{', small group' if row.small else ''})"
        for row in table.rows
    )
    overall = f" Overall rate {format.percent(table.overall.value)}." if table.overall.value is not None else ""
    return (
        f"Horizontal bar chart of {metric_words(table.metric)} by {table.slice_id} "
        f"for probe {table.probe_id}: {described}.{overall}"
    )


def _rate_phrase(row: GroupRow, confidence_level: float) -> str:
    """'11.7% (95% CI 8.2–16.5%, n = 230' (the caller closes the bracket)."""
    return (f"{format.percent(row.rate.value)} ({format.ci_label(confidence_level)} "
            f"{format.percent_range(row.rate.ci_low, row.rate.ci_high)}, n = {row.rate.n}")


def _draw_rate_chart(table: MetricTable, *, confidence_level: float, min_n: int, interval: str | None) -> Figure:
    drawable = table.rows
    values = [_percent(row.rate.value) for row in drawable]
    lows = [_percent(row.rate.ci_low) for row in drawable]
    highs = [_percent(row.rate.ci_high) for row in drawable]
    positions = list(range(len(drawable)))

    figure = Figure(figsize=(6.4, 0.9 + 0.28 * len(drawable)))
    axes = figure.subplots()
    bars = axes.barh(
        positions,
        values,
        height=0.62,
        color=[SMALL_GROUP_FILL if row.small else OKABE_ITO_BLUE for row in drawable],
        edgecolor=[SMALL_GROUP_EDGE if row.small else OKABE_ITO_BLUE for row in drawable],
        linewidth=0.8,
    )
    for bar, row in zip(bars, drawable):
        if row.small:
            bar.set_hatch("////")
    axes.errorbar(
        values,
        positions,
        xerr=[[v - lo for v, lo in zip(values, lows)], [hi - v for v, hi in zip(values, highs)]],
        fmt="none",
        ecolor=INK,
        elinewidth=1.0,
        capsize=2.5,
    )
    overall_value = table.overall.value
    if overall_value is not None:
        axes.axvline(_percent(overall_value), color=OKABE_ITO_VERMILLION, linestyle=(0, (4, 2)), linewidth=1.4)

    axes.set_yticks(positions, [row.group for row in drawable])
    axes.invert_yaxis()  # first group at the top, as in the table
    axes.set_xlim(0, _axis_limit(highs + ([_percent(overall_value)] if overall_value is not None else [])))
    axes.xaxis.set_major_formatter(PercentFormatter(xmax=100, decimals=None))
    axes.set_xlabel(table.metric_label)
    axes.grid(axis="x", color=GRID, linewidth=0.6)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    axes.tick_params(axis="y", length=0)

    handles = _legend_handles(
        confidence_level=confidence_level,
        interval=interval,
        show_small=any(row.small for row in drawable),
        min_n=min_n,
        show_overall=overall_value is not None,
    )
    axes.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.7 / figure.get_figheight()),
        ncols=len(handles),
        frameon=False,
        fontsize=8,
        handlelength=1.6,
    )
    tight_layout(figure)
    return figure


def _legend_handles(*, confidence_level: float, interval: str | None, show_small: bool, min_n: int,
                    show_overall: bool) -> list:
    method = f" {INTERVAL_NAMES[interval]}" if interval is not None else ""
    handles: list = [
        Patch(facecolor=OKABE_ITO_BLUE, edgecolor=OKABE_ITO_BLUE, label="group rate"),
        Line2D([], [], color=INK, marker="|", markersize=7, linewidth=1.0,
               label=f"{format.confidence(confidence_level)}{method} interval"),
    ]
    if show_small:
        handles.append(Patch(facecolor=SMALL_GROUP_FILL, edgecolor=SMALL_GROUP_EDGE, hatch="////",
                             label=f"small group (n < {min_n})"))
    if show_overall:
        handles.append(Line2D([], [], color=OKABE_ITO_VERMILLION, linestyle=(0, (4, 2)), linewidth=1.4, label="overall"))
    return handles


def _axis_limit(upper_values: Sequence[float]) -> float:
    """Room to the right of the longest whisker; never past 100% nor below 1%."""
    return min(100.0, max(1.0, max(upper_values, default=0.0) * 1.1))


def _percent(proportion: float) -> float:
    """A proportion on the charts' 0-100 axis."""
    return proportion * 100.0


# --------------------------------------------------------------------------- heatmaps

# cividis (Nuñez et al. 2018) is perceptually uniform and readable with colour-vision deficiencies.
HEATMAP_COLORMAP = "cividis"
EMPTY_CELL = "#FFFFFF"


def heatmap_chart(table: MetricTable, *, confidence_level: float) -> Chart | None:
    """A two-attribute slice (race x gender) as a grid of rates; None for other slices.

    Rows are the first attribute's values, columns the second's, each in first-seen order.
    Empty intersections are left blank and labelled; small groups are marked with an asterisk.
    """
    if len(table.attributes) != 2:
        return None
    row_attribute, column_attribute = table.attributes
    cells = {(row.values[row_attribute], row.values[column_attribute]): row for row in table.rows}
    if not cells:
        return None
    row_labels = list(dict.fromkeys(key[0] for key in cells))
    column_labels = list(dict.fromkeys(key[1] for key in cells))
    for empty in table.empty_groups:
        parts = empty.split(GROUP_SEPARATOR)
        if len(parts) == 2:
            row_labels += [parts[0]] if parts[0] not in row_labels else []
            column_labels += [parts[1]] if parts[1] not in column_labels else []
    values = [[_percent(cells[(r, c)].rate.value) if (r, c) in cells else None for c in column_labels] for r in row_labels]
    annotations = [
        [
            f"{format.percent(cells[(r, c)].rate.value)}{'*' if cells[(r, c)].small else ''}\nn={cells[(r, c)].rate.n}"
            if (r, c) in cells else "no images"
            for c in column_labels
        ]
        for r in row_labels
    ]
    described = "; ".join(
        f"{group_label((r, c))} {_rate_phrase(cells[(r, c)], confidence_level)})" if (r, c) in cells
        else f"{group_label((r, c))} no images"
        for r in row_labels for c in column_labels
    )
    alt = (f"Heatmap of {metric_words(table.metric)} by {row_attribute} (rows) and {column_attribute} (columns) "
           f"for probe {table.probe_id}: {described}.")
    with matplotlib.rc_context(RC):
        figure = _draw_grid(values, annotations, row_labels, column_labels,
                            xlabel=column_attribute, ylabel=row_attribute,
                            colorbar_label=table.metric_label, vmax=100.0, percent=True)
        svg = figure_to_svg(figure)
    return Chart(svg=make_inline(svg, alt=alt, element_id=f"heatmap_{table.anchor}"), alt=alt)


def confusion_chart(confusion: Confusion) -> Chart:
    """Counts per (target, prediction), coloured by the share of the target's row."""
    labels = list(confusion.labels)
    shares = [
        [100.0 * count / total if (total := confusion.row_total(i)) else None for count in row]
        for i, row in enumerate(confusion.counts)
    ]
    annotations = [[str(count) for count in row] for row in confusion.counts]
    described = "; ".join(
        f"{label}: {confusion.counts[i][i]} of {confusion.row_total(i)} correct"
        + (f" ({format.percent(confusion.counts[i][i] / confusion.row_total(i))})" if confusion.row_total(i) else "")
        for i, label in enumerate(labels)
    )
    alt = (f"Confusion matrix for probe {confusion.probe_id}, rows the dataset label, columns the predicted class, "
           f"cells the number of images: {described}.")
    with matplotlib.rc_context(RC):
        figure = _draw_grid(shares, annotations, labels, labels, xlabel="predicted class", ylabel="dataset label",
                            colorbar_label="share of the row", vmax=100.0, percent=True)
        svg = figure_to_svg(figure)
    return Chart(svg=make_inline(svg, alt=alt, element_id=f"confusion_{confusion.anchor}"), alt=alt)


def _draw_grid(
    values: Sequence[Sequence[float | None]],
    annotations: Sequence[Sequence[str]],
    row_labels: Sequence[str],
    column_labels: Sequence[str],
    *,
    xlabel: str,
    ylabel: str,
    colorbar_label: str,
    vmax: float,
    percent: bool,
) -> Figure:
    import numpy as np

    grid = np.ma.masked_invalid(np.array([[np.nan if v is None else v for v in row] for row in values], dtype=float))
    colormap = matplotlib.colormaps[HEATMAP_COLORMAP].with_extremes(bad=EMPTY_CELL)
    width = min(11.0, 2.2 + 0.75 * len(column_labels))
    height = min(11.0, 1.2 + 0.42 * len(row_labels))
    figure = Figure(figsize=(width, height))
    axes = figure.subplots()
    image = axes.imshow(grid, cmap=colormap, vmin=0.0, vmax=vmax, aspect="auto")
    font_size = 7 if len(column_labels) > 6 else 8
    for i, row in enumerate(annotations):
        for j, text in enumerate(row):
            value = values[i][j]
            if value is None:
                color = SMALL_GROUP_EDGE
            else:
                red, green, blue, _ = colormap(value / vmax)
                # Relative luminance (WCAG 2): dark ink on light cells, white on dark ones.
                color = INK if 0.2126 * red + 0.7152 * green + 0.0722 * blue > 0.45 else "#FFFFFF"
            axes.text(j, i, text, ha="center", va="center", color=color, fontsize=font_size)
    axes.set_xticks(range(len(column_labels)), column_labels, rotation=30 if len(column_labels) > 4 else 0,
                    ha="right" if len(column_labels) > 4 else "center")
    axes.set_yticks(range(len(row_labels)), row_labels)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.tick_params(length=0)
    for side in axes.spines:
        axes.spines[side].set_visible(False)
    colorbar = figure.colorbar(image, ax=axes, fraction=0.04, pad=0.02)
    colorbar.set_label(colorbar_label)
    if percent:
        colorbar.ax.yaxis.set_major_formatter(PercentFormatter(xmax=100, decimals=None))
    tight_layout(figure)
    return figure
