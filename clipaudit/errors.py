"""The one exception family for errors a user can cause.

The CLI turns any :class:`ClipauditError` into one line on stderr and exit code 2.
Everything else that escapes is a bug and keeps its traceback.
"""
from __future__ import annotations


class ClipauditError(Exception):
    """Bad input or usage: a file, field or value the user can fix."""


class TaxonomyError(ClipauditError):
    """A taxonomy file that cannot be read or does not follow the schema."""


class DataError(ClipauditError):
    """A dataset spec, table or image that cannot be used."""


class ModelError(ClipauditError):
    """A model spec that cannot be loaded or lacks an image or text tower."""


class RegressionFound(Exception):
    """Not an error: a regression check failed (exit code 1)."""
