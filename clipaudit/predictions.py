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
    """Read and check a predictions parquet; DataError names the file and what is missing."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such predictions file")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise DataError(f"{path}: not a readable parquet file ({str(error).splitlines()[0]})") from None
    missing = [column for column in REQUIRED_COLUMNS if column not in table.column_names]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)}; a predictions file needs "
            f"{', '.join(REQUIRED_COLUMNS)} plus the dataset's attribute columns (found: {', '.join(table.column_names)})"
        )
    frame = table.to_pandas()
    for column in frame.columns:
        if column != "scores":
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame
