"""predictions.parquet: the one table between scoring and statistics (DESIGN.md contract).

Reading checks the contract so that `clipaudit stats` can take any parquet that follows it and
say precisely what is wrong with one that does not.
"""
from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from clipaudit.errors import DataError

REQUIRED_COLUMNS = ("probe", "image_id", "target", "prediction", "scores")


def predictions_to_parquet_bytes(predictions: pd.DataFrame) -> bytes:
    """Serialise with explicit types: strings for labels, list<float32> for scores."""
    attribute_columns = [c for c in predictions.columns if c not in REQUIRED_COLUMNS]
    fields = [pa.field("probe", pa.string()), pa.field("image_id", pa.string())]
    fields += [pa.field(column, pa.string()) for column in attribute_columns]
    fields += [
        pa.field("target", pa.string()),
        pa.field("prediction", pa.string()),
        pa.field("scores", pa.list_(pa.float32())),
    ]
    schema = pa.schema(fields)
    ordered = predictions[[field.name for field in fields]]
    table = pa.Table.from_pandas(ordered, schema=schema, preserve_index=False)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def read_predictions(path: Path) -> pd.DataFrame:
    """Read and check a predictions parquet; DataError names the file and the column that is wrong."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such predictions file")
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as error:
        raise DataError(f"{path}: not a readable parquet file ({str(error).splitlines()[0]})") from None
    missing = [column for column in REQUIRED_COLUMNS if column not in table.column_names]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)}; a predictions file needs "
            f"{', '.join(REQUIRED_COLUMNS)} plus the dataset's attribute columns (found: {', '.join(table.column_names)})"
        )
    check_predictions_schema(table, source=path)
    frame = table.to_pandas()
    for column in frame.columns:
        if column != "scores":
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    _check_unique_rows(frame, source=path)
    return frame


def check_predictions_schema(table: pa.Table, *, source: Path) -> None:
    """The declared types: strings for ids and labels, a list of floats for scores; no empty probe, id or scores."""
    if len(set(table.column_names)) != len(table.column_names):
        repeated = sorted({name for name in table.column_names if table.column_names.count(name) > 1})
        raise DataError(f"{source}: column {repeated[0]!r} appears more than once")
    for name in table.column_names:
        column_type = table.schema.field(name).type
        if name == "scores":
            if not _is_float_list(column_type):
                raise DataError(f"{source}: column 'scores' must be a list of floats (the logits of each class), "
                                f"got {column_type}")
        elif not _is_text(column_type):
            raise DataError(f"{source}: column {name!r} must hold strings, got {column_type}"
                            + (" (image ids are paths or row numbers written as text)" if name == "image_id" else ""))
    for name in ("probe", "image_id", "scores"):
        empty = table.column(name).null_count
        if empty:
            raise DataError(f"{source}: column {name!r} is empty in {empty} row(s); every row needs one")


def _is_text(column_type: pa.DataType) -> bool:
    if pa.types.is_dictionary(column_type):
        column_type = column_type.value_type
    return pa.types.is_string(column_type) or pa.types.is_large_string(column_type) or pa.types.is_null(column_type)


def _is_float_list(column_type: pa.DataType) -> bool:
    is_list = (pa.types.is_list(column_type) or pa.types.is_large_list(column_type)
               or pa.types.is_fixed_size_list(column_type))
    return is_list and pa.types.is_floating(column_type.value_type)


def _check_unique_rows(frame: pd.DataFrame, *, source: Path) -> None:
    """One row per (probe, image): a repeated row would count an image twice in every rate."""
    repeated = frame.duplicated(subset=["probe", "image_id"], keep="first")
    if repeated.any():
        first = frame.loc[repeated.idxmax()]
        raise DataError(f"{source}: {int(repeated.sum())} row(s) repeat a (probe, image_id) pair, e.g. "
                        f"({first['probe']!r}, {first['image_id']!r}); columns probe and image_id must name "
                        "each row once")
