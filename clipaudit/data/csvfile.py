"""``csv:FILE`` — any labelled image folder described by a CSV with a ``file`` column.

Every other column is an attribute, kept exactly as written: clipaudit does not guess
what a user's own labels mean. Paths are relative to the CSV's folder, so a dataset can
be moved or copied as one folder.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path, PurePosixPath

import pandas as pd

from clipaudit.data.base import FolderImageDataset, require_complete, require_distinct_files, require_unique_ids
from clipaudit.data.safe_files import MAX_TABLE_BYTES, FileRefused, FileTooLarge, read_regular_file
from clipaudit.errors import DataError

FILE_COLUMN = "file"
# Data rows start on line 2 of a CSV (line 1 is the header), which is what editors show.
FIRST_DATA_LINE = 2


def load_csv_dataset(csv_path: Path, *, spec: str) -> FolderImageDataset:
    """Load ``csv:FILE``: image ids are the ``file`` values, with forward slashes."""
    frame = read_label_table(csv_path)
    root = csv_path.absolute().parent
    require_distinct_files(frame, root, source=str(csv_path), row_label="line", first_row=FIRST_DATA_LINE)
    return FolderImageDataset(frame, spec=spec, root=root)


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
    text = _read_table_bytes(csv_path)
    try:
        return pd.read_csv(
            io.BytesIO(text), dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8-sig"
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, csv.Error) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(f"{csv_path}: not a readable CSV ({first_line})") from None


def _read_table_bytes(csv_path: Path) -> bytes:
    """The CSV's bytes: a regular file of at most MAX_TABLE_BYTES (never a pipe or a device)."""
    try:
        return read_regular_file(csv_path, limit=MAX_TABLE_BYTES)
    except FileNotFoundError:
        raise DataError(f"{csv_path}: CSV file not found") from None
    except FileRefused as refused:
        raise DataError(f"{csv_path}: {_table_refusal(refused)}") from None
    except OSError as error:
        raise DataError(f"{csv_path}: cannot read the CSV ({error.strerror or type(error).__name__})") from None


def _table_refusal(refused: FileRefused) -> str:
    if isinstance(refused, FileTooLarge):
        return f"CSV too large for a label table ({refused.detail}); a label table has one short row per image"
    return f"not a regular file ({refused.detail}); a label table must be a CSV file"
