"""Charts for the report, written as inline SVG (:mod:`.svg_canvas`): rate bars, heatmaps, confusion.

Each chart is laid out in pixels from estimated text widths: labels get a column of their own
(too long ones end with an ellipsis; the table beside the chart has them in full), axis
ticks are spaced wider than their labels, and the legend wraps below the axis title, so no
two labels overlap at any width (the browser test measures the drawn text). Alt text rounds
numbers with :mod:`clipaudit.format`, as the tables do.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup

from clipaudit import format
from clipaudit.vocabulary import GROUP_SEPARATOR, group_label, metric_words

from .svg_canvas import INK, Canvas, fit_text, text_width
from .view_model import Confusion, GroupRow, MetricTable

# Okabe & Ito (2008), "Color Universal Design": distinguishable with all common colour-vision deficiencies.
OKABE_ITO_BLUE = "#0072B2"
OKABE_ITO_VERMILLION = "#D55E00"
SMALL_GROUP_FILL = "#E3E3E3"
SMALL_GROUP_EDGE = "#6E6E6E"
GRID = "#D9D9D9"
#: How the legend names each rate interval method (manifest.statistics.interval).
INTERVAL_NAMES = {"wilson": "Wilson", "clopper-pearson": "Clopper-Pearson", "jeffreys": "Jeffreys"}

CHART_WIDTH = 640.0
FONT = 12.0
SMALL_FONT = 11.0
ROW_HEIGHT = 22.0
BAR_HEIGHT = 14.0
LABEL_SHARE = 0.4  # at most this share of the width for group labels
GAP = 8.0


@dataclass(frozen=True)
class Chart:
    """An inline SVG (trusted markup, already escaped) and a text alternative for it."""

    svg: Markup
    alt: str


# --------------------------------------------------------------------------- rate bars


def rate_chart(
    table: MetricTable,
    *,
    confidence_level: float,
    min_n: int,
    interval: str | None = None,
) -> Chart | None:
    """Horizontal bars per group with interval whiskers and the overall rate as a dashed line.

    Small groups (``small`` in the results) are drawn hatched and grey; ``None`` when the
    slice has no group with images. ``interval`` names the rate interval's method in the legend.
    """
    if not table.rows:
        return None
    alt = rate_chart_alt_text(table, confidence_level=confidence_level)
    canvas = Canvas(CHART_WIDTH, element_id=f"chart_{table.anchor}")
    height = _draw_rate_chart(canvas, table, confidence_level=confidence_level, min_n=min_n, interval=interval)
    return Chart(svg=canvas.to_markup(height, alt=alt), alt=alt)


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


def _draw_rate_chart(canvas: Canvas, table: MetricTable, *, confidence_level: float, min_n: int,
                     interval: str | None) -> float:
    """Draw on ``canvas``; returns the height used."""
    rows = table.rows
    label_width = min(CHART_WIDTH * LABEL_SHARE, max(text_width(row.group, FONT) for row in rows))
    left = label_width + 2 * GAP
    right = CHART_WIDTH - 3 * GAP  # room for the last tick label's right half
    top = 6.0
    plot_bottom = top + ROW_HEIGHT * len(rows)
    overall = table.overall.value
    uppers = [_percent(row.rate.ci_high) for row in rows if row.rate.ci_high is not None]
    limit = _axis_limit(uppers + ([_percent(overall)] if overall is not None else []))

    def x_of(percent: float) -> float:
        return left + (right - left) * min(percent, limit) / limit

    ticks = _ticks(limit, right - left)
    for tick in ticks:
        canvas.line(x_of(tick), top, x_of(tick), plot_bottom, stroke=GRID, width=0.8)
    small_fill = canvas.hatch_pattern("small", background=SMALL_GROUP_FILL, stroke=SMALL_GROUP_EDGE)
    for index, row in enumerate(rows):
        middle = top + ROW_HEIGHT * (index + 0.5)
        canvas.text(label_width + GAP, middle + FONT * 0.35, fit_text(row.group, FONT, label_width),
                    size=FONT, anchor="end")
        if row.rate.value is None:
            continue
        value = _percent(row.rate.value)
        canvas.rect(left, middle - BAR_HEIGHT / 2, x_of(value) - left, BAR_HEIGHT,
                    fill=small_fill if row.small else OKABE_ITO_BLUE,
                    stroke=SMALL_GROUP_EDGE if row.small else OKABE_ITO_BLUE, stroke_width=0.8)
        if row.rate.ci_low is not None and row.rate.ci_high is not None:
            low, high = x_of(_percent(row.rate.ci_low)), x_of(_percent(row.rate.ci_high))
            canvas.line(low, middle, high, middle, width=1.2)
            for end in (low, high):
                canvas.line(end, middle - 4, end, middle + 4, width=1.2)
    if overall is not None:
        canvas.line(x_of(_percent(overall)), top - 2, x_of(_percent(overall)), plot_bottom + 2,
                    stroke=OKABE_ITO_VERMILLION, width=1.6, dash="5 3")
    canvas.line(left, plot_bottom, right, plot_bottom, width=0.8)
    tick_baseline = plot_bottom + 4 + SMALL_FONT
    for tick in ticks:
        canvas.line(x_of(tick), plot_bottom, x_of(tick), plot_bottom + 4, width=0.8)
        canvas.text(x_of(tick), tick_baseline, _tick_label(tick), size=SMALL_FONT, anchor="middle")
    title_baseline = tick_baseline + GAP + FONT
    canvas.text((left + right) / 2, title_baseline, table.metric_label, size=FONT, anchor="middle")
    legend = _rate_legend(confidence_level=confidence_level, interval=interval,
                          show_small=any(row.small for row in rows), min_n=min_n, show_overall=overall is not None)
    return _draw_legend(canvas, legend, top=title_baseline + GAP, small_fill=small_fill)


def _rate_legend(*, confidence_level: float, interval: str | None, show_small: bool, min_n: int,
                 show_overall: bool) -> list[tuple[str, str]]:
    """(kind of swatch, label) for each legend entry."""
    method = f" {INTERVAL_NAMES[interval]}" if interval is not None else ""
    entries = [("bar", "group rate"), ("whisker", f"{format.confidence(confidence_level)}{method} interval")]
    if show_small:
        entries.append(("small", f"small group (n < {min_n})"))
    if show_overall:
        entries.append(("overall", "overall"))
    return entries


def _draw_legend(canvas: Canvas, entries: Sequence[tuple[str, str]], *, top: float, small_fill: str) -> float:
    """Legend entries left to right, wrapping to a new line when the width runs out; returns the bottom."""
    swatch, line_height = 16.0, SMALL_FONT + 8
    x, y = 0.0, top
    for kind, label in entries:
        entry_width = swatch + 5 + text_width(label, SMALL_FONT)
        if x > 0 and x + entry_width > canvas.width:
            x, y = 0.0, y + line_height
        middle = y + line_height / 2
        if kind in ("bar", "small"):
            canvas.rect(x, middle - 5, swatch, 10, fill=small_fill if kind == "small" else OKABE_ITO_BLUE,
                        stroke=SMALL_GROUP_EDGE if kind == "small" else OKABE_ITO_BLUE, stroke_width=0.8)
        elif kind == "whisker":
            canvas.line(x, middle, x + swatch, middle, width=1.2)
            for end in (x, x + swatch):
                canvas.line(end, middle - 4, end, middle + 4, width=1.2)
        else:
            canvas.line(x, middle, x + swatch, middle, stroke=OKABE_ITO_VERMILLION, width=1.6, dash="5 3")
        canvas.text(x + swatch + 5, middle + SMALL_FONT * 0.35, label, size=SMALL_FONT)
        x += entry_width + 2 * GAP
    return y + line_height + 2


def _ticks(limit: float, width: float) -> list[float]:
    """Round percentages from 0 to ``limit``, at least 60 px apart (wider than any '100%' label)."""
    for step in (1, 2, 5, 10, 20, 25, 50):
        if width * step / limit >= 60:
            break
    count = int(limit // step)
    return [step * i for i in range(count + 1)]


def _tick_label(percent: float) -> str:
    return f"{percent:g}%"


def _axis_limit(upper_values: Sequence[float]) -> float:
    """Room to the right of the longest whisker; never past 100% nor below 1%."""
    return min(100.0, max(1.0, max(upper_values, default=0.0) * 1.1))


def _percent(proportion: float) -> float:
    """A proportion on the charts' 0-100 axis."""
    return proportion * 100.0


# --------------------------------------------------------------------------- heatmaps

#: cividis (Nuñez et al. 2018; perceptually uniform, readable with colour-vision deficiencies),
#: sampled at 0%, 10%, ..., 100% from matplotlib's table and interpolated linearly between.
CIVIDIS = ("#00224e", "#083370", "#35456c", "#4f576c", "#666970", "#7d7c78",
           "#948e77", "#aea371", "#c8b866", "#e5cf52", "#fee838")
EMPTY_CELL = "#FFFFFF"
CELL_HEIGHT = 34.0
MIN_CELL_WIDTH = 58.0


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
    shares = [[cells[(r, c)].rate.value if (r, c) in cells else None for c in column_labels] for r in row_labels]
    annotations = [
        [
            (f"{format.percent(cells[(r, c)].rate.value)}{'*' if cells[(r, c)].small else ''}",
             f"n={cells[(r, c)].rate.n}")
            if (r, c) in cells else ("no images", "")
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
    canvas = Canvas(1.0, element_id=f"heatmap_{table.anchor}")
    height = _draw_grid(canvas, shares, annotations, row_labels, column_labels, xlabel=column_attribute,
                        ylabel=row_attribute, scale_label=table.metric_label)
    return Chart(svg=canvas.to_markup(height, alt=alt), alt=alt)


def confusion_chart(confusion: Confusion) -> Chart:
    """Counts per (target, prediction), coloured by the share of the target's row."""
    labels = list(confusion.labels)
    shares = [
        [count / total if (total := confusion.row_total(i)) else None for count in row]
        for i, row in enumerate(confusion.counts)
    ]
    annotations = [[(str(count), "") for count in row] for row in confusion.counts]
    described = "; ".join(
        f"{label}: {confusion.counts[i][i]} of {confusion.row_total(i)} correct"
        + (f" ({format.percent(confusion.counts[i][i] / confusion.row_total(i))})" if confusion.row_total(i) else "")
        for i, label in enumerate(labels)
    )
    alt = (f"Confusion matrix for probe {confusion.probe_id}, rows the dataset label, columns the predicted class, "
           f"cells the number of images: {described}.")
    canvas = Canvas(1.0, element_id=f"confusion_{confusion.anchor}")
    height = _draw_grid(canvas, shares, annotations, labels, labels, xlabel="predicted class",
                        ylabel="dataset label", scale_label="share of the row")
    return Chart(svg=canvas.to_markup(height, alt=alt), alt=alt)


def _draw_grid(
    canvas: Canvas,
    shares: Sequence[Sequence[float | None]],
    annotations: Sequence[Sequence[tuple[str, str]]],
    row_labels: Sequence[str],
    column_labels: Sequence[str],
    *,
    xlabel: str,
    ylabel: str,
    scale_label: str,
) -> float:
    """A labelled grid coloured on a 0-100% scale, with the scale below; sets the canvas width,
    returns the height. Column labels sit above their column, each fitted to the column's width."""
    row_label_width = min(220.0, max(text_width(label, FONT) for label in row_labels))
    cell_width = max(MIN_CELL_WIDTH, *(text_width(top, SMALL_FONT) + 8 for row in annotations for top, _ in row))
    cell_width = max(cell_width, min(140.0, max(text_width(label, SMALL_FONT) + 8 for label in column_labels)))
    left = row_label_width + 2 * GAP
    axis_title_top = 0.0
    header_baseline = axis_title_top + FONT + GAP + SMALL_FONT
    top = header_baseline + 6
    grid_width = cell_width * len(column_labels)
    canvas.width = max(left + grid_width + GAP, left + text_width(xlabel, FONT), 300.0)
    canvas.text(left + grid_width / 2, axis_title_top + FONT, xlabel, size=FONT, anchor="middle", weight="600")
    for j, label in enumerate(column_labels):
        canvas.text(left + cell_width * (j + 0.5), header_baseline, fit_text(label, SMALL_FONT, cell_width - 8),
                    size=SMALL_FONT, anchor="middle")
    for i, label in enumerate(row_labels):
        y = top + CELL_HEIGHT * i
        canvas.text(row_label_width + GAP, y + CELL_HEIGHT / 2 + FONT * 0.35,
                    fit_text(label, FONT, row_label_width), size=FONT, anchor="end")
        for j, share in enumerate(shares[i]):
            x = left + cell_width * j
            fill = EMPTY_CELL if share is None else _cividis(share)
            canvas.rect(x, y, cell_width, CELL_HEIGHT, fill=fill, stroke="#FFFFFF" if share is not None else GRID)
            ink = SMALL_GROUP_EDGE if share is None else _ink_on(share)
            first, second = annotations[i][j]
            if second:
                canvas.text(x + cell_width / 2, y + CELL_HEIGHT / 2 - 2, first, size=SMALL_FONT, anchor="middle", fill=ink)
                canvas.text(x + cell_width / 2, y + CELL_HEIGHT / 2 + SMALL_FONT - 1, second, size=SMALL_FONT - 1,
                            anchor="middle", fill=ink)
            else:
                canvas.text(x + cell_width / 2, y + CELL_HEIGHT / 2 + SMALL_FONT * 0.35, first, size=SMALL_FONT,
                            anchor="middle", fill=ink)
    bottom = top + CELL_HEIGHT * len(row_labels)
    # The row attribute's name under the row labels, so it never collides with the column header.
    canvas.text(0, bottom + GAP + FONT, f"rows: {ylabel}", size=SMALL_FONT, fill=INK)
    scale_top = bottom + 2 * GAP + FONT
    scale_left = left
    scale_width = min(200.0, max(grid_width, 120.0))
    canvas.rect(scale_left, scale_top, scale_width, 10, fill=canvas.horizontal_gradient("scale", list(CIVIDIS)))
    for share, anchor in ((0.0, "start"), (0.5, "middle"), (1.0, "end")):
        canvas.text(scale_left + scale_width * share, scale_top + 10 + 4 + SMALL_FONT, _tick_label(100 * share),
                    size=SMALL_FONT, anchor=anchor)
    canvas.text(scale_left, scale_top + 10 + 2 * (4 + SMALL_FONT) + 2, f"colour: {scale_label}", size=SMALL_FONT)
    canvas.width = max(canvas.width, scale_left + text_width(f"colour: {scale_label}", SMALL_FONT) + GAP)
    return scale_top + 10 + 2 * (4 + SMALL_FONT) + 8


def _cividis(share: float) -> str:
    position = max(0.0, min(1.0, share)) * (len(CIVIDIS) - 1)
    index = min(int(position), len(CIVIDIS) - 2)
    fraction = position - index
    low, high = _rgb(CIVIDIS[index]), _rgb(CIVIDIS[index + 1])
    return "#" + "".join(f"{round(a + (b - a) * fraction):02x}" for a, b in zip(low, high))


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def _ink_on(share: float) -> str:
    """Dark ink on light cells, white on dark ones (WCAG 2 relative luminance, approximately)."""
    red, green, blue = (channel / 255 for channel in _rgb(_cividis(share)))
    return INK if 0.2126 * red + 0.7152 * green + 0.0722 * blue > 0.45 else "#FFFFFF"
