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


class UnreadableImage(DataError):
    """One image that cannot be used; carries its id and the short reason for listings."""

    def __init__(self, image_id: str, location: str, reason: str, detail: str = "") -> None:
        self.image_id = image_id
        self.reason = reason
        suffix = f" ({detail})" if detail else ""
        super().__init__(f"{location}: {reason}{suffix}")

    def __reduce__(self):  # keep picklable across DataLoader workers despite the custom __init__
        return (_rebuild_unreadable, (self.image_id, self.reason, self.args[0]))


def _rebuild_unreadable(image_id: str, reason: str, message: str) -> UnreadableImage:
    error = UnreadableImage.__new__(UnreadableImage)
    DataError.__init__(error, message)
    error.image_id, error.reason = image_id, reason
    return error


class ModelError(ClipauditError):
    """A model spec that cannot be loaded or lacks an image or text tower."""


class DocumentError(ClipauditError):
    """An output document (results.json, sweep.json, compare.json) of another kind or schema version."""


class ThresholdsError(ClipauditError):
    """A thresholds file that cannot be read or does not follow the schema."""


class CompareError(ClipauditError):
    """Two audits, or an audit and a rule, that cannot be compared."""
