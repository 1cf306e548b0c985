"""The one jinja2 environment of every page (report.html, compare.html, sweep.html).

Autoescape is on for every template, whatever its name: every string from results, taxonomies
and thresholds is untrusted input. The filters are the only way a template turns a number into
text, and each is a :mod:`clipaudit.format` function (or a :mod:`clipaudit.vocabulary` word).

Compiling the templates takes longer than rendering them (about 0.2 s against 0.03 s for the demo's
report), so their compiled code is kept where Python keeps the package's own: ``__pycache__`` beside
the templates, written when that folder is writable, with the same trust as a ``.pyc``. A template
is compiled again when its source changed, on another Python version, and under other options or
another jinja2 version (they name the files).
"""
from __future__ import annotations

import pickle
import sys
from functools import lru_cache
from pathlib import Path

import jinja2
from jinja2 import Environment, FileSystemBytecodeCache, FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.bccache import Bucket

from clipaudit import format
from clipaudit.files import cache_key, shown_location
from clipaudit.stats.multiple import CORRECTION_LABELS, CORRECTION_NAMES
from clipaudit.vocabulary import metric_label, metric_words

from .summary_view import decided_by

TEMPLATES_DIR = Path(__file__).parent / "templates"
COMPILED_TEMPLATES_DIR = TEMPLATES_DIR / "__pycache__"

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
    "decided_by": decided_by,
}


@lru_cache(maxsize=1)
def environment() -> Environment:
    return build_environment(COMPILED_TEMPLATES_DIR)


# Everything that changes what a template compiles to, besides its source (which jinja2 checks
# itself): the compiled templates kept from one run are used only under the same options.
ESCAPED_EXTENSIONS = ("html", "htm", "xml", "j2")
SYNTAX_OPTIONS = {"trim_blocks": True, "lstrip_blocks": True, "keep_trailing_newline": True}


def build_environment(compiled_templates_dir: Path) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(enabled_extensions=ESCAPED_EXTENSIONS, default_for_string=True, default=True),
        undefined=StrictUndefined,
        bytecode_cache=CompiledTemplates(compiled_templates_dir),
        **SYNTAX_OPTIONS,
    )
    env.filters.update(FILTERS)
    return env


class CompiledTemplates(FileSystemBytecodeCache):
    """jinja2's bytecode cache in a folder that may be read-only or absent: then templates are
    compiled on every run, as without a cache; a truncated file is compiled afresh; a render never
    fails because of the cache. The files are named after the environment's options and jinja2's
    version, so other options never read code compiled under these."""

    def __init__(self, directory: Path) -> None:
        options = cache_key(jinja2=jinja2.__version__, escaped=ESCAPED_EXTENSIONS, **SYNTAX_OPTIONS)[:16]
        super().__init__(str(directory), pattern=f"__clipaudit_{options}_%s.cache")
        self._directory = directory

    def load_bytecode(self, bucket: Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except (OSError, EOFError, ValueError, pickle.UnpicklingError):  # unreadable or cut short
            bucket.reset()

    def dump_bytecode(self, bucket: Bucket) -> None:
        if sys.dont_write_bytecode:  # PYTHONDONTWRITEBYTECODE: no .pyc, and no compiled templates either
            return
        try:
            self._directory.mkdir(exist_ok=True)
            super().dump_bytecode(bucket)
        except OSError:
            pass
