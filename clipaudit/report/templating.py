"""The one jinja2 environment of every page (report.html, compare.html, sweep.html).

Autoescape is on for every template, whatever its name: every string from results, taxonomies
and thresholds is untrusted input. The filters are the only way a template turns a number into
text, and each is a :mod:`clipaudit.format` function (or a :mod:`clipaudit.vocabulary` word).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from clipaudit import format
from clipaudit.files import shown_location
from clipaudit.stats.multiple import CORRECTION_LABELS, CORRECTION_NAMES
from clipaudit.vocabulary import metric_label, metric_words

TEMPLATES_DIR = Path(__file__).parent / "templates"

FILTERS = {
    "percent": format.percent,
    "interval": format.percent_range,
    "points": format.points_size,
    "change": format.points,
    "signed_points": format.points_number,
    "points_number": format.points_size_number,
    "signed_interval": format.points_range,
    "ratio": format.ratio,
    "statistic": format.statistic,
    "p_value": format.p_value,
    "count": format.count,
    "yes_no": format.yes_no,
    "confidence": format.confidence,
    "ci_label": format.ci_label,
    "or_dash": format.or_dash,
    "alpha": format.alpha,
    "seconds": format.seconds,
    "correction_name": CORRECTION_NAMES.__getitem__,
    "correction_label": CORRECTION_LABELS.__getitem__,
    "metric_label": metric_label,
    "metric_words": metric_words,
    "location": shown_location,
}


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(
            enabled_extensions=("html", "htm", "xml", "j2"), default_for_string=True, default=True
        ),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(FILTERS)
    return env
