"""The one Markdown escaper of every Markdown output (summary.md, compare.md).

Names in a Markdown table come from users (class ids, group names, paths, rule ids); each is
escaped here so it can neither break the table nor render as markup or raw HTML.
"""
from __future__ import annotations

import re

from clipaudit.format import inert

# Markdown characters that change a table cell's structure or formatting; '\' first.
_MARKDOWN_SPECIAL = re.compile(r"([\\|`*\[\]])")
# '_' emphasises only where a letter or digit is not on both sides ('harm_rate' stays as it is).
_EMPHASIS_UNDERSCORE = re.compile(r"(?<![^\W_])_|_(?![^\W_])")


def escape_markdown_cell(text: object) -> str:
    """Plain text for one Markdown table cell (or list item): no line breaks, pipes and markup escaped.

    '<' and '>' become entities so that raw HTML in a class or group name is shown, not
    interpreted, by renderers that allow HTML (GitHub, GitLab). None is an empty cell.
    """
    flat = "" if text is None else inert(" ".join(str(text).split()))
    flat = _MARKDOWN_SPECIAL.sub(r"\\\1", flat)
    flat = _EMPHASIS_UNDERSCORE.sub(r"\\_", flat)
    return flat.replace("<", "&lt;").replace(">", "&gt;")


def code_span(text: object) -> str:
    """Text inside a Markdown code span: nothing can be escaped there, so backticks are replaced
    and line breaks folded (the caller writes the surrounding backticks)."""
    return inert(" ".join(str(text).split())).replace("`", "\u02cb")
