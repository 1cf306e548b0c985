"""``csv:FILE`` — any labelled image folder described by a CSV with a ``file`` column.

Every other column is an attribute, kept exactly as written: clipaudit does not guess
what a user's own labels mean. Paths are relative to the CSV's folder, so a dataset can
be moved or copied as one folder.
"""
from __future__ import annotations

import csv
from pathlib import Path, PurePosixPath

import pandas as pd

from clipaudit.data.base import FolderImageDataset, require_complete, require_unique_ids
from clipaudit.errors import DataError

FILE_COLUMN = "file"
# Data rows start on line 2 of a CSV (line 1 is the header), which is what editors show.
FIRST_DATA_LINE = 2


def load_csv_dataset(csv_path: Path, *, spec: str) -> FolderImageDataset:
    """Load ``csv:FILE``: image ids are the ``file`` values, with forward slashes."""
    frame = read_label_table(csv_path)
    return FolderImageDataset(frame, spec=spec, root=csv_path.absolute().parent)


def read_label_table(
    csv_path: Path, *, required: tuple[str, ...] = (), drop: tuple[str, ...] = ()
) -> pd.DataFrame:
    """A checked label table from a CSV: ``image_id`` then the attribute columns, all str.

    ``required`` names attribute columns that must be present besides ``file``; ``drop``
    names columns that are not attributes (FairFace's ``service_test``).
    """
    raw = _read_csv_as_text(csv_path)
    columns = [str(name) for name in raw.columns]
    missing = [name for name in (FILE_COLUMN, *required) if name not in columns]
    if missing:
        found = ", ".join(repr(name) for name in columns) or "none"
        raise DataError(
            f"{csv_path}: no {', '.join(repr(name) for name in missing)} column "
            f"(found columns: {found}); the CSV needs a 'file' column of image paths "
            "relative to its folder, plus one column per attribute"
        )
    attributes = [name for name in columns if name != FILE_COLUMN and name not in drop]
    if not attributes:
        raise DataError(f"{csv_path}: no attribute columns besides 'file'")
    frame = raw[[FILE_COLUMN, *attributes]].rename(columns={FILE_COLUMN: "image_id"})
    frame = frame.apply(lambda column: column.str.strip())
    require_complete(frame, source=str(csv_path), row_label="line", first_row=FIRST_DATA_LINE)
    frame["image_id"] = frame["image_id"].str.replace("\\", "/", regex=False)
    _require_inside_folder(frame["image_id"], csv_path)
    require_unique_ids(frame, source=str(csv_path), row_label="line", first_row=FIRST_DATA_LINE)
    if frame.empty:
        raise DataError(f"{csv_path}: no rows under the header")
    return frame


def _require_inside_folder(image_ids: pd.Series, csv_path: Path) -> None:
    """Image paths stay inside the CSV's folder: image ids are paths relative to the dataset root."""
    for position, image_id in enumerate(image_ids):
        parts = PurePosixPath(image_id).parts
        if PurePosixPath(image_id).is_absolute() or ".." in parts or (parts and ":" in parts[0]):
            raise DataError(
                f"{csv_path}: line {position + FIRST_DATA_LINE}: file {image_id!r} is outside the CSV's folder; "
                "image paths must be relative to the folder that holds the CSV"
            )


def _read_csv_as_text(csv_path: Path) -> pd.DataFrame:
    """Every cell as text, empty cells as '' (so 'NA' stays a label, not a missing value)."""
    if not csv_path.is_file():
        raise DataError(f"{csv_path}: CSV file not found")
    try:
        return pd.read_csv(
            csv_path, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8-sig"
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, csv.Error) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(f"{csv_path}: not a readable CSV ({first_line})") from None
