"""The one formatter: how a number reads in every output (HTML, Markdown, JUnit, terminal, findings).

Rates are proportions (0.066) shown as percentages ("6.6%"); differences of rates are shown in
percentage points, always written "pp" when a unit is printed. Every function takes None (or a
non-finite number) for "not available" and returns :data:`NOT_AVAILABLE`. What is displayed is
rounded here and nowhere else, so a value reads the same in a table, a sentence and a chart.
"""
from __future__ import annotations

import math
import unicodedata

NOT_AVAILABLE = "\u2014"  # em dash
EN_DASH = "\u2013"


def _missing(value: float | None) -> bool:
    return value is None or not math.isfinite(float(value))


def percent(proportion: float | None, digits: int = 1) -> str:
    """0.0656 -> '6.6%'."""
    if _missing(proportion):
        return NOT_AVAILABLE
    return f"{proportion * 100:.{digits}f}%"


def percent_range(low: float | None, high: float | None, digits: int = 1) -> str:
    """A rate's interval: (0.026, 0.157) -> '2.6–15.7%'."""
    if _missing(low) or _missing(high):
        return NOT_AVAILABLE
    return f"{low * 100:.{digits}f}{EN_DASH}{high * 100:.{digits}f}%"


def points(difference: float | None, digits: int = 1) -> str:
    """A change in percentage points, signed, with its unit: 0.095 -> '+9.5 pp'."""
    if _missing(difference):
        return NOT_AVAILABLE
    return f"{difference * 100:+.{digits}f} pp"


def points_size(difference: float | None, digits: int = 1) -> str:
    """A size in percentage points (a bound, a gap, a detectable difference): 0.05 -> '5.0 pp'."""
    if _missing(difference):
        return NOT_AVAILABLE
    return f"{difference * 100:.{digits}f} pp"


def points_number(difference: float | None, digits: int = 1) -> str:
    """A signed change in points without the unit, where a header or the sentence names it: '+9.5'."""
    if _missing(difference):
        return NOT_AVAILABLE
    return f"{difference * 100:+.{digits}f}"


def points_size_number(difference: float | None, digits: int = 1) -> str:
    """A size in points without the unit, where a header names it: 0.05 -> '5.0'."""
    if _missing(difference):
        return NOT_AVAILABLE
    return f"{difference * 100:.{digits}f}"


def points_range(low: float | None, high: float | None, digits: int = 1) -> str:
    """A change's interval in points, without the unit: (-0.356, -0.123) -> '-35.6 to -12.3'."""
    if _missing(low) or _missing(high):
        return NOT_AVAILABLE
    return f"{points_number(low, digits)} to {points_number(high, digits)}"


def p_value(p: float | None) -> str:
    """Three significant digits; below 0.001 only the bound: '0.012', '< 0.001'."""
    if _missing(p):
        return NOT_AVAILABLE
    return "< 0.001" if p < 0.001 else f"{p:.3g}"


def p_phrase(p: float | None) -> str:
    """Inside a sentence: 'p = 0.012', 'p < 0.001'."""
    text = p_value(p)
    if text == NOT_AVAILABLE:
        return f"p {NOT_AVAILABLE}"
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def confidence(level: float) -> str:
    """0.95 -> '95%'."""
    return f"{level * 100:g}%"


def ci_label(level: float) -> str:
    """The label of every interval at the confidence in force: 0.9 -> '90% CI'."""
    return f"{confidence(level)} CI"


def alpha(level: float) -> str:
    """A significance level as set: 0.05 -> '0.05'."""
    return f"{level:g}"


def seconds(value: float | None) -> str:
    """A duration: 41.27 -> '41.27 s'."""
    if _missing(value):
        return NOT_AVAILABLE
    return f"{value:.2f} s"


def number(value: float | None) -> str:
    """Any other number as written in a manifest: shortest form ('0.8', '1e-06')."""
    if _missing(value):
        return NOT_AVAILABLE
    return f"{value:g}"


def ratio(value: float | None) -> str:
    if _missing(value):
        return NOT_AVAILABLE
    return f"{value:.2f}"


def statistic(value: float | None) -> str:
    if _missing(value):
        return NOT_AVAILABLE
    return f"{value:.2f}"


def count(value: int | None) -> str:
    """10954 -> '10,954'."""
    if value is None:
        return NOT_AVAILABLE
    return f"{value:,}"


def yes_no(flag: bool | None) -> str:
    if flag is None:
        return NOT_AVAILABLE
    return "yes" if flag else "no"


def or_dash(value: object) -> object:
    return NOT_AVAILABLE if value is None else value


# --- text from inputs, made inert -------------------------------------------------------------
# A newline in a dataset value could forge a line of its own in a terminal or CI log (``::error
# title=...`` is a CI annotation) and an escape sequence could recolour or rewrite the terminal,
# so every channel that prints text shows control characters as escapes instead of sending them.

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Bidirectional overrides reorder what a reader sees (CVE-2021-42574, "Trojan Source").
_BIDI_CONTROLS = {*map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A))}


def inert(text: object) -> str:
    """``text`` with every control, line-separating or bidi-override character escaped (``\\n``, ``\\x1b``)."""
    return "".join(_escaped(character) for character in str(text))


def _escaped(character: str) -> str:
    if character in _NAMED:
        return _NAMED[character]
    if unicodedata.category(character) in ("Cc", "Zl", "Zp") or character in _BIDI_CONTROLS:
        code = ord(character)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    return character
