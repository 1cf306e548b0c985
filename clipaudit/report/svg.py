"""matplotlib figures -> inline SVG elements, ids namespaced per chart.

The audit report's charts are written as SVG directly (:mod:`clipaudit.report.svg_canvas`);
this module serves the sweep page's heatmaps, which matplotlib draws. Ids are prefixed per
chart, so two charts in one page never share an element id.

Text in the SVG is escaped by matplotlib's XML writer; mathtext is switched off so a
group called ``$x$`` is drawn as written.
"""
from __future__ import annotations

import io
import re
from html import escape

import matplotlib
from markupsafe import Markup
from matplotlib.figure import Figure

_METADATA_OFF = {"Date": None, "Creator": None, "Format": None, "Type": None}
# matplotlib salts its SVG ids (clip paths, markers, images) at random unless given a salt: with one,
# the same figure gives the same bytes, so a sweep page is reproducible.
_FIXED_ID_SALT = {"svg.hashsalt": "clipaudit"}

_ROOT_TAG = re.compile(r"<svg\b[^>]*>")
# Inside a tag: matplotlib escapes quotes and angle brackets in attribute values, so a tag
# ends at the first '>' and text content (which may hold a raw '"') is never touched.
_TAG = re.compile(r"<[^>]*>")
_ID_ATTRIBUTE = re.compile(r'(\sid=")([^"]*")')
_ID_REFERENCE = re.compile(r'(url\(#|href="#)')
_UNIVERSAL_STYLE_RULE = re.compile(r"(<style\b[^>]*>)\s*\*\s*\{")
_SIZE_ATTRIBUTE = re.compile(r'\s(?:width|height)="[^"]*"')


def figure_to_svg(figure: Figure) -> str:
    buffer = io.StringIO()
    with matplotlib.rc_context(_FIXED_ID_SALT):
        figure.savefig(buffer, format="svg", metadata=_METADATA_OFF, bbox_inches="tight", pad_inches=0.05)
    return buffer.getvalue()


def _prefix_ids(tag: str, *, prefix: str) -> str:
    """Namespace matplotlib's ids ('figure_1', 'axes_1', ...) so charts can share a page."""
    tag = _ID_ATTRIBUTE.sub(lambda m: f"{m.group(1)}{prefix}-{m.group(2)}", tag)
    return _ID_REFERENCE.sub(lambda m: f"{m.group(1)}{prefix}-", tag)


def make_inline(svg_document: str, *, alt: str, element_id: str) -> Markup:
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
