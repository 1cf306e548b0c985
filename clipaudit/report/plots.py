"""Charts for the report: matplotlib figures rendered to inline SVG strings.

Figures are built with the object-oriented API (``matplotlib.figure.Figure``), never
pyplot, so rendering touches no global backend state and works headless. Every setting
that affects the bytes of the SVG is pinned in :data:`_RC` and applied with
``rc_context`` (the user's matplotlibrc does not leak in), and ids are salted per chart,
so the same results give the same report byte for byte; ids are prefixed per chart, so
two charts in one page never share an element id.

Text in the SVG is escaped by matplotlib's XML writer; mathtext is switched off so a
group called ``$x$`` is drawn as written.
"""
from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

import matplotlib
from markupsafe import Markup
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import PercentFormatter

from .view import Confusion, GroupRow, MetricTable, format_confidence, format_interval, format_percent

# Okabe & Ito (2008), "Color Universal Design": distinguishable with all common colour-vision deficiencies.
OKABE_ITO_BLUE = "#0072B2"
OKABE_ITO_VERMILLION = "#D55E00"
SMALL_GROUP_FILL = "#E3E3E3"
SMALL_GROUP_EDGE = "#6E6E6E"
INK = "#1A1A1A"
GRID = "#D9D9D9"

_RC: dict[str, object] = {
    "svg.hashsalt": "clipaudit",  # the default is random per run; ids must not change
    "svg.fonttype": "none",  # text stays text: selectable, searchable, smaller, deterministic
    "svg.image_inline": True,
    "text.parse_math": False,
    "font.family": "sans-serif",
    # DejaVu Sans ships with matplotlib, so layout never depends on the fonts a machine has.
    "font.sans-serif": ["DejaVu Sans", "Helvetica", "Arial", "sans-serif"],
    "font.size": 9,
    "axes.edgecolor": INK,
    "axes.labelcolor": INK,
    "xtick.color": INK,
    "ytick.color": INK,
    "hatch.linewidth": 0.8,
    "path.simplify": True,
}
_METADATA_OFF = {"Date": None, "Creator": None, "Format": None, "Type": None}


@dataclass(frozen=True)
class Chart:
    """An inline SVG (trusted markup, already escaped) and a text alternative for it."""

    svg: Markup
    alt: str


def rate_chart(
    table: MetricTable,
    *,
    confidence_level: float,
    min_n: int | None,
) -> Chart | None:
    """Horizontal bars per group with interval whiskers and the overall rate as a line.

    Small groups (``small`` in the results) are drawn hatched and grey. Groups without a
    value (nothing to draw) are left out; ``None`` when no group has one.
    """
    drawable = [row for row in table.rows if row.rate.value is not None]
    if not drawable:
        return None
    alt = rate_chart_alt_text(table, drawable, confidence_level=confidence_level)
    with matplotlib.rc_context(_RC):
        figure = _draw_rate_chart(table, drawable, confidence_level=confidence_level, min_n=min_n)
        svg = _figure_to_svg(figure)
    return Chart(svg=_make_inline(svg, alt=alt, element_id=f"chart_{table.anchor}"), alt=alt)


def rate_chart_alt_text(
    table: MetricTable, drawable: Sequence[GroupRow], *, confidence_level: float
) -> str:
    """A sentence a screen reader can read instead of the chart; same rounding as the table."""
    described = "; ".join(
        f"{row.group} {format_percent(row.rate.value)} "
        f"({format_confidence(confidence_level)} CI {format_interval(row.rate.ci_low, row.rate.ci_high)}, "
        f"n = {row.rate.n}{', small group' if row.small else ''})"
        for row in drawable
    )
    overall = (
        f" Overall rate {format_percent(table.overall.value)}."
        if table.overall is not None and table.overall.value is not None
        else ""
    )
    return (
        f"Horizontal bar chart of {table.metric_label.lower()} by {table.slice_id} "
        f"for probe {table.probe_id}: {described}.{overall}"
    )


def _draw_rate_chart(
    table: MetricTable,
    drawable: Sequence[GroupRow],
    *,
    confidence_level: float,
    min_n: int | None,
) -> Figure:
    values = [_percent(row.rate.value) for row in drawable]
    lows = [_percent(row.rate.ci_low if row.rate.ci_low is not None else row.rate.value) for row in drawable]
    highs = [_percent(row.rate.ci_high if row.rate.ci_high is not None else row.rate.value) for row in drawable]
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
    overall_value = table.overall.value if table.overall is not None else None
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
    _tight_layout(figure)
    return figure


def _legend_handles(*, confidence_level: float, show_small: bool, min_n: int | None, show_overall: bool) -> list:
    handles: list = [
        Patch(facecolor=OKABE_ITO_BLUE, edgecolor=OKABE_ITO_BLUE, label="group rate"),
        Line2D([], [], color=INK, marker="|", markersize=7, linewidth=1.0,
               label=f"{format_confidence(confidence_level)} Wilson interval"),
    ]
    if show_small:
        small_label = f"small group (n < {min_n})" if min_n is not None else "small group"
        handles.append(Patch(facecolor=SMALL_GROUP_FILL, edgecolor=SMALL_GROUP_EDGE, hatch="////", label=small_label))
    if show_overall:
        handles.append(Line2D([], [], color=OKABE_ITO_VERMILLION, linestyle=(0, (4, 2)), linewidth=1.4, label="overall"))
    return handles


def _axis_limit(upper_values: Sequence[float]) -> float:
    """Room to the right of the longest whisker; never past 100% nor below 1%."""
    return min(100.0, max(1.0, max(upper_values, default=0.0) * 1.1))


def _percent(proportion: float | None) -> float:
    return 0.0 if proportion is None else proportion * 100.0


def _figure_to_svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata=_METADATA_OFF, bbox_inches="tight", pad_inches=0.05)
    return buffer.getvalue()


_ROOT_TAG = re.compile(r"<svg\b[^>]*>")
# Inside a tag: matplotlib escapes quotes and angle brackets in attribute values, so a tag
# ends at the first '>' and text content (which may hold a raw '"') is never touched.
_TAG = re.compile(r"<[^>]*>")
_ID_ATTRIBUTE = re.compile(r'(\sid=")([^"]*")')
_ID_REFERENCE = re.compile(r'(url\(#|href="#)')
_UNIVERSAL_STYLE_RULE = re.compile(r"(<style\b[^>]*>)\s*\*\s*\{")
_SIZE_ATTRIBUTE = re.compile(r'\s(?:width|height)="[^"]*"')


def _prefix_ids(tag: str, *, prefix: str) -> str:
    """Namespace matplotlib's ids ('figure_1', 'axes_1', ...) so charts can share a page."""
    tag = _ID_ATTRIBUTE.sub(lambda m: f"{m.group(1)}{prefix}-{m.group(2)}", tag)
    return _ID_REFERENCE.sub(lambda m: f"{m.group(1)}{prefix}-", tag)


def _make_inline(svg_document: str, *, alt: str, element_id: str) -> Markup:
    """A standalone SVG document -> an element to embed in HTML.

    Drops what only a standalone file needs (XML declaration, DOCTYPE with its w3.org URL,
    comments, metadata) and the fixed size, so CSS scales the chart; prefixes every id with
    ``element_id``; adds an accessible name.
    """
    start = svg_document.index("<svg")
    svg = svg_document[start:]
    svg = re.sub(r"<!--.*?-->\s*", "", svg, flags=re.S)
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    svg = _TAG.sub(lambda tag: _prefix_ids(tag.group(0), prefix=element_id), svg)
    # matplotlib's '*{stroke-...}' rule would apply to the whole HTML page once inlined.
    svg = _UNIVERSAL_STYLE_RULE.sub(lambda m: f"{m.group(1)}#{element_id} *{{", svg)
    root = _ROOT_TAG.search(svg)
    assert root is not None  # matplotlib's SVG writer always emits one root element
    width = re.search(r'\swidth="([0-9.]+)pt"', root.group(0))
    root_attributes = _SIZE_ATTRIBUTE.sub("", root.group(0)[len("<svg"):-1])
    safe_alt = escape(alt, quote=True)
    # Never wider than drawn, so text keeps the size it was drawn at; narrower screens scale it down.
    natural_width = f' style="max-width: {width.group(1)}pt"' if width else ""
    new_root = (
        f'<svg id="{escape(element_id, quote=True)}" class="chart" role="img" '
        f'aria-label="{safe_alt}"{natural_width}{root_attributes}>\n <title>{safe_alt}</title>'
    )
    return Markup(svg[: root.start()] + new_root + svg[root.end():].rstrip() + "\n")


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
    cells: dict[tuple[str, str], GroupRow] = {}
    for row in table.rows:
        if row.values and row_attribute in row.values and column_attribute in row.values and row.rate.value is not None:
            cells[(row.values[row_attribute], row.values[column_attribute])] = row
    if not cells:
        return None
    row_labels = list(dict.fromkeys(key[0] for key in cells))
    column_labels = list(dict.fromkeys(key[1] for key in cells))
    for empty in table.empty_groups:
        parts = empty.split(" / ")
        if len(parts) == 2:
            row_labels += [parts[0]] if parts[0] not in row_labels else []
            column_labels += [parts[1]] if parts[1] not in column_labels else []
    values = [[_percent(cells[(r, c)].rate.value) if (r, c) in cells else None for c in column_labels] for r in row_labels]
    annotations = [
        [
            f"{format_percent(cells[(r, c)].rate.value)}{'*' if cells[(r, c)].small else ''}\nn={cells[(r, c)].rate.n}"
            if (r, c) in cells else "no images"
            for c in column_labels
        ]
        for r in row_labels
    ]
    described = "; ".join(
        f"{r} / {c} {format_percent(cells[(r, c)].rate.value)} "
        f"({format_confidence(confidence_level)} CI {format_interval(cells[(r, c)].rate.ci_low, cells[(r, c)].rate.ci_high)}, "
        f"n = {cells[(r, c)].rate.n})" if (r, c) in cells else f"{r} / {c} no images"
        for r in row_labels for c in column_labels
    )
    alt = (f"Heatmap of {table.metric_label.lower()} by {row_attribute} (rows) and {column_attribute} (columns) "
           f"for probe {table.probe_id}: {described}.")
    with matplotlib.rc_context(_RC):
        figure = _draw_grid(values, annotations, row_labels, column_labels,
                            xlabel=column_attribute, ylabel=row_attribute,
                            colorbar_label=table.metric_label, vmax=100.0, percent=True)
        svg = _figure_to_svg(figure)
    return Chart(svg=_make_inline(svg, alt=alt, element_id=f"heatmap_{table.anchor}"), alt=alt)


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
        + (f" ({format_percent(confusion.counts[i][i] / confusion.row_total(i))})" if confusion.row_total(i) else "")
        for i, label in enumerate(labels)
    )
    alt = (f"Confusion matrix for probe {confusion.probe_id}, rows the dataset label, columns the predicted class, "
           f"cells the number of images: {described}.")
    with matplotlib.rc_context(_RC):
        figure = _draw_grid(shares, annotations, labels, labels, xlabel="predicted class", ylabel="dataset label",
                            colorbar_label="share of the row", vmax=100.0, percent=True)
        svg = _figure_to_svg(figure)
    return Chart(svg=_make_inline(svg, alt=alt, element_id=f"confusion_{confusion.anchor}"), alt=alt)


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
    _tight_layout(figure)
    return figure


def _tight_layout(figure: Figure) -> None:
    """Tighten the layout; very long labels can defeat it, which is harmless (bbox_inches="tight"
    still crops the figure), so matplotlib's warning about it is not shown to auditors."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Tight layout not applied")
        figure.tight_layout()
