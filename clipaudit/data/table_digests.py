"""The image digests of a table dataset (``hf:``) whose image bytes live in its Arrow files,
memoised in the cache under what ``stat`` says of those files, so that fingerprinting an unchanged
table, or checking cached shards against it, reads no image again.

Any change to one of the files (size, modification or change time, inode) gives another key, so a
stale digest is never served; a file changed shortly before the table was opened, or since, is not
memoised (what was mapped may not be what the key describes). Only a table whose rows are its files'
rows, whole and in order, is memoised (not a slice such as ``train[2:4]``, nor a filtered or
reordered one), and only when its images are stored in those files: cells that point to image files
elsewhere are not covered by the key.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from clipaudit.data.safe_files import MAX_IMAGE_BYTES
from clipaudit.files import RACY_WINDOW_S, atomic_write_bytes, cache_key

if TYPE_CHECKING:
    import datasets

TABLE_DIGEST_MEMO_FORMAT = 1


class TableDigestMemo:
    """Every row's (digest, problem) of one table, stored once all rows are known."""

    def __init__(self, path: Path | None, rows: int):
        self.path = path
        self.rows = rows
        self._stored = False  # the memo on disk is known to be whole: nothing to write

    @classmethod
    def for_files(cls, cache_dir: Path | None, files: Sequence[str], *, column: str, rows: int,
                  unchanged_since: float | None = None) -> TableDigestMemo:
        """The memo of the table made of ``files`` (its Arrow files, whole, in order); none without a
        cache folder, without files (a table in memory, a slice) or when a file cannot be looked at or
        changed (contents, or replaced by a rename: the change time moves) within
        :data:`~clipaudit.files.RACY_WINDOW_S` of ``unchanged_since`` (when the table was opened) or after."""
        if cache_dir is None or not files:
            return cls(None, rows)
        settled_before = (time.time() if unchanged_since is None else unchanged_since) - RACY_WINDOW_S
        signatures = []
        for name in files:
            try:
                status = os.stat(name)
            except OSError:
                return cls(None, rows)
            if max(status.st_mtime, status.st_ctime) >= settled_before:
                return cls(None, rows)
            signatures.append([str(Path(name).resolve()), status.st_size, status.st_mtime_ns, status.st_ctime_ns,
                               status.st_ino, status.st_dev])
        key = cache_key(format=TABLE_DIGEST_MEMO_FORMAT, files=signatures, column=column, rows=rows,
                        image_limit=MAX_IMAGE_BYTES)  # what counts as too large is part of a row's verdict
        return cls(Path(cache_dir) / "digests" / f"table-{key}.json", rows)

    def __getstate__(self) -> dict:  # pickled into DataLoader workers: they never memoise
        return {"path": None, "rows": self.rows, "_stored": True}

    def load(self) -> list[tuple[bytes, str | None]] | None:
        """Every row's (digest, problem), or None when not memoised (or the memo is damaged)."""
        if self.path is None:
            return None
        try:
            stored = json.loads(self.path.read_bytes())
            digests = bytes.fromhex(stored["digests"])
            problems = {int(row): str(problem) for row, problem in stored["problems"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        if stored.get("format") != TABLE_DIGEST_MEMO_FORMAT or len(digests) != 32 * self.rows:
            return None
        self._stored = True
        return [(digests[32 * row:32 * (row + 1)], problems.get(row)) for row in range(self.rows)]

    def save(self, known: dict[int, tuple[bytes, str | None]]) -> None:
        """Store the rows' digests once every row is known; a cache that cannot be written is skipped."""
        if self.path is None or self._stored or len(known) != self.rows or self.load() is not None:
            return  # incomplete, or stored already (a damaged memo is written again)
        document = {"format": TABLE_DIGEST_MEMO_FORMAT, "rows": self.rows,
                    "digests": b"".join(known[row][0] for row in range(self.rows)).hex(),
                    "problems": {str(row): problem for row, (_, problem) in known.items() if problem}}
        try:
            atomic_write_bytes(self.path, json.dumps(document).encode())
            self._stored = True
        except OSError:
            pass  # a memo only saves time; the digests themselves are right either way


# Operations datasets replays on a memory-mapped file that keep its rows as they are.
_ROW_PRESERVING_REPLAYS = frozenset({"replace_schema_metadata", "cast", "rename_columns", "select", "drop"})


def whole_mapped_files(dataset: datasets.Dataset) -> list[str]:
    """The Arrow files whose rows, whole and in order, are the table's rows; none when the table is
    (partly) in memory, a slice of a file (``split="train[2:4]"``), filtered, or reordered by an
    indices mapping: then the files alone do not say which images the rows hold."""
    from datasets.table import ConcatenationTable, MemoryMappedTable

    if getattr(dataset, "_indices", None) is not None:
        return []
    table = dataset.data
    blocks = table.blocks if isinstance(table, ConcatenationTable) else [[table]]
    files = []
    for row_blocks in blocks:
        if len(row_blocks) != 1 or not isinstance(row_blocks[0], MemoryMappedTable):
            return []
        block = row_blocks[0]
        if any(replay[0] not in _ROW_PRESERVING_REPLAYS for replay in block.replays or ()):
            return []
        files.append(block.path)
    return files


def images_embedded(images: datasets.Dataset, image_column: str) -> bool:
    """Whether every image cell holds its bytes (a raw-bytes column, or Image cells with bytes), so
    the table's own files hold every image; a cell with a path only reads a file outside them."""
    import pyarrow as pa

    column = images.data.column(image_column)
    if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
        return True
    if not pa.types.is_struct(column.type) or column.type.get_field_index("bytes") < 0:
        return False
    return all(chunk.field("bytes").null_count == 0 for chunk in column.chunks)
