"""A small SVG writer for the report's charts: shapes and text in pixel units, one inline element.

Charts are laid out here rather than by matplotlib: the layout is computed from estimated text
widths, so labels are placed where nothing else is (the browser test measures that), and a
report with two dozen charts renders in milliseconds instead of seconds. Every string is
escaped by :func:`html.escape`; the output is an ``<svg>`` element ready to inline in HTML,
with a ``viewBox`` and no fixed size (CSS scales it), an accessible name and a ``<title>``.
"""
from __future__ import annotations

from html import escape

from markupsafe import Markup

INK = "#1A1A1A"
#: DejaVu Sans ships with matplotlib and most Linux desktops; the estimates below are its widths.
FONT_FAMILY = "'DejaVu Sans', Verdana, 'Helvetica Neue', Arial, sans-serif"
_WIDE = set("mwMW%@")
_NARROW = set("iljtfrI.,:;'!|()[] ")
ELLIPSIS = "\u2026"


def text_width(text: str, size: float) -> float:
    """An upper estimate of the drawn width of ``text`` at ``size`` px (DejaVu Sans advances,
    rounded up per class of character), so that a layout built on it leaves room to spare."""
    units = 0.0
    for character in text:
        if character in _WIDE:
            units += 1.0
        elif character in _NARROW:
            units += 0.36
        elif character.isdigit():
            units += 0.64
        elif character.isupper():
            units += 0.74
        elif character.isascii():
            units += 0.6
        else:
            units += 1.0  # accents, CJK, symbols: assume a full em
    return units * size


def fit_text(text: str, size: float, width: float) -> str:
    """``text``, or its start with an ellipsis, so that it fits in ``width`` px."""
    if text_width(text, size) <= width:
        return text
    while text and text_width(text + ELLIPSIS, size) > width:
        text = text[:-1]
    return text + ELLIPSIS


def _number(value: float) -> str:
    rounded = round(value, 1)
    return str(int(rounded)) if rounded == int(rounded) else str(rounded)


class Canvas:
    """Collects SVG elements; :meth:`to_markup` wraps them in the root element."""

    def __init__(self, width: float, *, element_id: str) -> None:
        self.width = width
        self.element_id = element_id
        self._parts: list[str] = []
        self._definitions: list[str] = []

    def local_id(self, name: str) -> str:
        """An id unique in the page: prefixed with the chart's own id."""
        return f"{self.element_id}-{name}"

    def rect(self, x: float, y: float, width: float, height: float, *, fill: str, stroke: str | None = None,
             stroke_width: float = 1.0) -> None:
        attributes = f'x="{_number(x)}" y="{_number(y)}" width="{_number(width)}" height="{_number(height)}" fill="{fill}"'
        if stroke is not None:
            attributes += f' stroke="{stroke}" stroke-width="{_number(stroke_width)}"'
        self._parts.append(f"<rect {attributes}/>")

    def line(self, x1: float, y1: float, x2: float, y2: float, *, stroke: str = INK, width: float = 1.0,
             dash: str | None = None) -> None:
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        self._parts.append(f'<line x1="{_number(x1)}" y1="{_number(y1)}" x2="{_number(x2)}" y2="{_number(y2)}" '
                           f'stroke="{stroke}" stroke-width="{_number(width)}"{dashes}/>')

    def text(self, x: float, y: float, content: str, *, size: float, anchor: str = "start", fill: str = INK,
             weight: str | None = None) -> None:
        """Text whose baseline is at ``y``; ``anchor`` is start, middle or end."""
        bold = f' font-weight="{weight}"' if weight else ""
        self._parts.append(f'<text x="{_number(x)}" y="{_number(y)}" font-size="{_number(size)}" '
                           f'text-anchor="{anchor}" fill="{fill}"{bold}>{escape(content, quote=False)}</text>')

    def hatch_pattern(self, name: str, *, background: str, stroke: str) -> str:
        """Define a diagonal hatch; returns the ``fill`` value that uses it."""
        pattern_id = self.local_id(name)
        self._definitions.append(
            f'<pattern id="{pattern_id}" width="6" height="6" patternUnits="userSpaceOnUse" '
            f'patternTransform="rotate(45)"><rect width="6" height="6" fill="{background}"/>'
            f'<line x1="0" y1="0" x2="0" y2="6" stroke="{stroke}" stroke-width="1.2"/></pattern>')
        return f"url(#{pattern_id})"

    def horizontal_gradient(self, name: str, colors: list[str]) -> str:
        """Define a left-to-right gradient through ``colors``; returns the ``fill`` value that uses it."""
        gradient_id = self.local_id(name)
        stops = "".join(f'<stop offset="{_number(100 * i / (len(colors) - 1))}%" stop-color="{color}"/>'
                        for i, color in enumerate(colors))
        self._definitions.append(f'<linearGradient id="{gradient_id}">{stops}</linearGradient>')
        return f"url(#{gradient_id})"

    def to_markup(self, height: float, *, alt: str) -> Markup:
        safe_alt = escape(alt, quote=True)
        definitions = f"<defs>{''.join(self._definitions)}</defs>\n" if self._definitions else ""
        body = "\n".join(self._parts)
        return Markup(
            f'<svg id="{escape(self.element_id, quote=True)}" class="chart" role="img" aria-label="{safe_alt}" '
            f'style="max-width: {_number(self.width)}px" viewBox="0 0 {_number(self.width)} {_number(height)}" '
            f'xmlns="http://www.w3.org/2000/svg" font-family="{FONT_FAMILY}">\n <title>{safe_alt}</title>\n'
            f"{definitions}{body}\n</svg>\n"
        )
