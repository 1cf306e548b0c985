"""Every error clipaudit raises on purpose, in one place.

Errors a user can cause are one family, :class:`ClipauditError`: the CLI turns any of them into
one line on stderr and exit code 2. Anything else that escapes is a bug: the CLI prints one line
with the path of the full traceback and exits 3 (exit 1 is kept for "a group got worse").
"""
from __future__ import annotations


class ClipauditError(Exception):
    """Bad input or usage: a file, field or value the user can fix."""


class UsageError(ClipauditError):
    """Bad command-line usage (argparse's complaints, as one line)."""


class TaxonomyError(ClipauditError):
    """A taxonomy or sweep spec that cannot be read or does not follow its contract."""


class DataError(ClipauditError):
    """A dataset spec, table, image or predictions file that cannot be used."""


class ModelError(ClipauditError):
    """A model spec that cannot be loaded or lacks an image or text tower."""


class DocumentError(ClipauditError):
    """An output document (results.json, sweep.json, compare.json) of another kind or schema version."""


class ThresholdsError(ClipauditError):
    """A thresholds file that cannot be read or does not follow the schema."""


class CompareError(ClipauditError):
    """Two audits, or an audit and a rule, that cannot be compared."""
