"""Checks every label table passes before it becomes a dataset: no empty cell, no image listed
twice, no two rows naming one file."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from clipaudit.data.safe_files import first_shared_file
from clipaudit.errors import DataError


def require_complete(frame: pd.DataFrame, *, source: str, row_label: str = "row", first_row: int = 0) -> None:
    """Raise DataError naming the first empty cell: labels are never silently dropped.

    ``first_row`` is the number the first data row carries in ``source`` (2 for a CSV
    line under its header), so messages point where the user will look.
    """
    for column in frame.columns:
        values = frame[column]
        empty = values.isna() | (values.astype(str).str.strip() == "")
        if empty.any():
            position = int(empty.to_numpy().nonzero()[0][0])
            raise DataError(f"{source}: {row_label} {position + first_row}: column {column!r} is empty")


def require_unique_ids(frame: pd.DataFrame, *, source: str, row_label: str = "row", first_row: int = 0) -> None:
    """Raise DataError on a repeated image id, which would merge two rows downstream."""
    duplicated = frame["image_id"].duplicated(keep=False)
    if duplicated.any():
        positions = duplicated.to_numpy().nonzero()[0]
        image_id = frame["image_id"].iloc[positions[0]]
        rows = [str(p + first_row) for p in positions if frame["image_id"].iloc[p] == image_id]
        raise DataError(f"{source}: image {image_id!r} appears more than once ({row_label}s {', '.join(rows)})")


def require_distinct_files(
    frame: pd.DataFrame, root: Path, *, source: str, row_label: str | None = None, first_row: int = 0
) -> None:
    """Raise DataError when two rows name one file ('x.jpg' and './x.jpg', or through a symlink).

    Such a table counts one image twice in every statistic; paths are compared resolved.
    Rows are named by ``row_label`` and number when given (CSV lines), else by image id only.
    """
    image_ids = frame["image_id"].astype(str).tolist()
    shared = first_shared_file([root / image_id for image_id in image_ids])
    if shared is None:
        return
    first, second, resolved = shared
    named = [repr(image_ids[position]) for position in (first, second)]
    if row_label is not None:
        named = [f"{row_label} {position + first_row} ({name})" for position, name in zip((first, second), named)]
    raise DataError(f"{source}: {named[0]} and {named[1]} are the same file, {resolved}; list each image once")
