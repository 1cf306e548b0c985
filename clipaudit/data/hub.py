"""``hf:NAME[:CONFIG]:SPLIT`` — a Hugging Face ``datasets`` dataset, from the Hub or from disk.

NAME is a Hub id (``HuggingFaceM4/FairFace``) or a folder written by ``save_to_disk``.
The image column is the first ``Image`` feature; attributes are the ClassLabel and
string columns (ClassLabel ints become their names), and an integer ``age`` column is
binned into FairFace's bins. Columns called race, gender or age are respelled into
FairFace's vocabulary when every value has a known spelling ('Latino Hispanic' ->
'Latino_Hispanic'). Image ids are row indices as strings.

Images are the bytes stored in each cell. A cell that holds only a path (older
``save_to_disk`` folders, files the library downloaded or extracted) is read like a folder
dataset's file: relative to the saved folder and only inside it; for Hub datasets, only
inside the ``datasets`` and Hub caches. The fingerprint hashes every image's bytes, as for
file datasets.

Remote code is never run: ``trust_remote_code`` is not passed, so script-based
datasets fail with the library's own message instead of executing.
"""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from clipaudit.data.base import (MISSING, ImageDataset, digest_and_check, header_problem, note_unreadable,
                                 require_complete)
from clipaudit.data.table_digests import TableDigestMemo, images_embedded, whole_mapped_files
from clipaudit.data.safe_files import (
    MAX_IMAGE_BYTES,
    MAX_TABLE_BYTES,
    FileRefused,
    FileTooLarge,
    first_shared_file,
    first_unsafe_entry,
    read_file_inside,
    real_folder,
)
from clipaudit.data.vocab import age_bin, fairface_mapping
from clipaudit.vocabulary import FAIRFACE_VOCABULARY
from clipaudit.errors import DataError, UnreadableImage

if TYPE_CHECKING:  # importing datasets costs about a second; only hf: specs pay it
    import datasets

# Columns that are bookkeeping in known releases, not demographic attributes.
_NOT_ATTRIBUTES: frozenset[str] = frozenset({"service_test"})
_STRING_DTYPES: frozenset[str] = frozenset({"string", "large_string"})
_DIGEST_BATCH_ROWS = 512


def parse_hub_target(target: str, *, spec: str) -> tuple[str, str | None, str | None]:
    """Split 'NAME:SPLIT' or 'NAME:CONFIG:SPLIT'; ':' inside a slice like 'train[:100]' is kept.

    SPLIT may be left out only for a folder holding a single saved Dataset.
    """
    parts = _split_outside_brackets(target)
    if len(parts) == 1:
        return parts[0], None, None
    if len(parts) == 2:
        return parts[0], None, parts[1]
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    raise DataError(f"{spec}: expected hf:NAME:SPLIT or hf:NAME:CONFIG:SPLIT")


def load_hub_dataset(target: str, *, spec: str) -> HubImageDataset:
    name, config, split = parse_hub_target(target, spec=spec)
    if not name:
        raise DataError(f"{spec}: no dataset name; expected hf:NAME:SPLIT or hf:NAME:CONFIG:SPLIT")
    opened_at = time.time()  # a table file changed after this may not match what was mapped: not memoised
    dataset, path_roots = _open_dataset(name, config, split, spec=spec)
    return HubImageDataset(dataset, spec=spec, config=config, split=split, path_roots=path_roots,
                           opened_at=opened_at)


class HubImageDataset(ImageDataset):
    """Rows of a ``datasets.Dataset``; images read from its first Image column.

    Cells that hold a path instead of bytes must resolve inside one of ``path_roots``;
    a relative path is relative to the first.
    """

    def __init__(
        self,
        dataset: datasets.Dataset,
        *,
        spec: str,
        config: str | None,
        split: str | None,
        path_roots: tuple[Path, ...],
        opened_at: float | None = None,
    ) -> None:
        image_column = _image_column(dataset, spec=spec)
        frame = _label_frame(dataset, image_column, spec=spec)
        super().__init__(frame, spec=spec, root=None)
        self.config = config
        self.split = split
        self.image_column = image_column
        self._images = _undecoded_images(dataset, image_column)
        self._path_roots = tuple(real_folder(root) for root in path_roots)
        _require_distinct_paths(self._images, image_column, self._path_roots[0], spec=spec)
        self._table_files = whole_mapped_files(dataset)
        self._opened_at = opened_at
        self._digest_memo = TableDigestMemo(None, len(self))
        self._seen: dict[int, tuple[bytes, str | None]] = {}

    def __getstate__(self) -> dict:  # pickled into DataLoader workers: they need no digests seen so far
        return {**self.__dict__, "_seen": {}}

    def memoise_digests(self, cache_dir: Path | None) -> None:
        """Keep every row's digest in ``cache_dir`` under what ``stat`` says of the table's files,
        when the images are stored in them (:mod:`clipaudit.data.table_digests`)."""
        files = self._table_files if images_embedded(self._images, self.image_column) else []
        self._digest_memo = TableDigestMemo.for_files(cache_dir, files, column=self.image_column, rows=len(self),
                                                      unchanged_since=self._opened_at)

    def known_digests(self) -> dict[int, bytes]:
        """Every row's memoised digest when the table is unchanged (no image read); else none."""
        remembered = self._digest_memo.load()
        if remembered is None:
            return {}
        for row, (digest, problem) in enumerate(remembered):
            self._seen[row] = (digest, problem)
            if problem:
                self.unreadable_found.add(f"{self.image_id(row)} ({problem})")
        return {row: digest for row, (digest, _) in enumerate(remembered)}

    def remember_digests(self, hashed) -> None:
        for entry in hashed:
            self._seen[entry.row] = (entry.digest, entry.problem)
        self.save_digests()

    def save_digests(self) -> None:
        self._digest_memo.save(self._seen)

    def _image_location(self, index: int) -> str:
        return f"{self.spec}: row {index}"

    def _read_image_bytes(self, index: int) -> bytes:
        return self._cell_bytes(index, self._images[index][self.image_column])

    def _image_digests(self) -> Iterator[bytes]:
        known = self.known_digests()
        if len(known) == len(self):
            return iter([known[row] for row in range(len(self))])
        return self._digests_in_batches(self._images, range(len(self)))

    def digests_of(self, rows) -> dict[int, bytes]:
        rows = list(rows)
        digests = dict(zip(rows, self._digests_in_batches(self._images.select(rows), rows)))
        self.save_digests()
        return digests

    def _digests_in_batches(self, images, rows) -> Iterator[bytes]:
        # Reading rows in batches is ~50x faster than one by one through the thread pool.
        indices = iter(rows)
        for batch in images.iter(batch_size=_DIGEST_BATCH_ROWS):
            for cell in batch[self.image_column]:
                index = next(indices)
                try:
                    encoded = self._cell_bytes(index, cell)
                    digest, problem = digest_and_check(self, index, encoded), header_problem(encoded)
                except UnreadableImage as error:
                    digest, problem = note_unreadable(self, error), error.reason
                self._seen[index] = (digest, problem)
                yield digest

    def _cell_bytes(self, index: int, cell: Any) -> bytes:
        try:
            encoded = _bytes_of(cell, self._path_roots)
        except FileNotFoundError:
            encoded = None
        except FileRefused as refused:
            raise UnreadableImage(self.image_id(index), self._image_location(index), refused.reason, refused.detail) from None
        except OSError as error:
            raise UnreadableImage(self.image_id(index), self._image_location(index), "unreadable", _first_line(error)) from None
        if encoded is None:
            raise UnreadableImage(self.image_id(index), self._image_location(index), MISSING)
        return encoded


def _open_dataset(
    name: str, config: str | None, split: str | None, *, spec: str
) -> tuple[datasets.Dataset, tuple[Path, ...]]:
    """The dataset, and the folders its image paths (if any) must stay in."""
    import datasets

    folder = Path(name).expanduser()
    if folder.is_dir():
        return _open_saved(folder, config, split, spec=spec), (folder,)
    if split is None:
        raise DataError(f"{spec}: no split; expected hf:{name}:SPLIT (e.g. hf:{name}:train)")
    try:
        loaded = datasets.load_dataset(name, config, split=split)
    except Exception as error:  # network, auth, not found, bad split: all one line for the user
        raise DataError(f"{spec}: cannot load dataset {name!r}: {_first_line(error)}") from None
    if not isinstance(loaded, datasets.Dataset):
        raise DataError(f"{spec}: {name!r} did not load as one table (streaming datasets are not supported)")
    # Files the library downloaded (Hub cache) or extracted from archives (datasets cache).
    from huggingface_hub.constants import HF_HUB_CACHE

    return loaded, (Path(datasets.config.HF_DATASETS_CACHE), Path(HF_HUB_CACHE))


def _open_saved(folder: Path, config: str | None, split: str | None, *, spec: str) -> datasets.Dataset:
    import datasets

    if config is not None:
        raise DataError(f"{spec}: a dataset saved to disk has no configs; use hf:{folder}:SPLIT")
    _require_plain_saved_folder(folder, spec=spec)
    try:
        loaded = datasets.load_from_disk(str(folder))
    except Exception as error:  # not a save_to_disk folder, or a damaged one
        raise DataError(f"{spec}: cannot load saved dataset {folder}: {_first_line(error)}") from None
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            wanted = "no split given" if split is None else f"no split {split!r}"
            raise DataError(f"{spec}: {wanted}; {folder} has {', '.join(loaded)}")
        return loaded[split]
    recorded_split = str(loaded.split) if loaded.split is not None else None
    if split is not None and recorded_split is not None and split != recorded_split:
        raise DataError(f"{spec}: {folder} holds split {recorded_split!r}, not {split!r}")
    return loaded


def _require_plain_saved_folder(folder: Path, *, spec: str) -> None:
    """Refuse a saved folder holding a pipe, device, outside link or outsized JSON: the library would open it."""
    unsafe = first_unsafe_entry(folder, limit_for=_saved_file_limit)
    if unsafe is not None:
        path, refused = unsafe
        raise DataError(f"{spec}: {path}: {refused}; a save_to_disk folder holds only its own regular files")


def _saved_file_limit(name: str) -> int:
    # Arrow shards are the data and may be large (the library memory-maps them); its JSON
    # files are a few kilobytes of metadata that it reads whole.
    return MAX_TABLE_BYTES if name.endswith(".json") else sys.maxsize


def _image_column(dataset: datasets.Dataset, *, spec: str) -> str:
    """The first Image feature; a raw-bytes column when a release stores images that way."""
    import datasets

    for column, feature in dataset.features.items():
        if isinstance(feature, datasets.Image):
            return column
    for column, feature in dataset.features.items():
        if isinstance(feature, datasets.Value) and feature.dtype in ("binary", "large_binary"):
            return column
    described = ", ".join(f"{column} ({type(feature).__name__})" for column, feature in dataset.features.items())
    raise DataError(f"{spec}: no Image column (columns: {described})")


def _attribute_columns(dataset: datasets.Dataset, image_column: str) -> list[str]:
    import datasets

    chosen: list[str] = []
    for column, feature in dataset.features.items():
        if column == image_column or column in _NOT_ATTRIBUTES:
            continue
        is_label = isinstance(feature, datasets.ClassLabel)
        is_text = isinstance(feature, datasets.Value) and feature.dtype in _STRING_DTYPES
        is_integer = isinstance(feature, datasets.Value) and feature.dtype.startswith(("int", "uint"))
        is_age_years = column == "age" and is_integer
        if is_label or is_text or is_age_years:
            chosen.append(column)
    return chosen


def _label_frame(dataset: datasets.Dataset, image_column: str, *, spec: str) -> pd.DataFrame:
    """``image_id`` (row index) plus each attribute as str, in FairFace spelling where possible."""
    import datasets

    columns = _attribute_columns(dataset, image_column)
    if not columns:
        raise DataError(f"{spec}: no label columns (ClassLabel or string) besides the image column")
    raw = dataset.select_columns(columns).to_pandas()
    frame = pd.DataFrame({"image_id": [str(index) for index in range(len(raw))]})
    for column in columns:
        feature = dataset.features[column]
        if isinstance(feature, datasets.ClassLabel):
            frame[column] = _class_names(raw[column], feature.names, column=column, spec=spec)
        elif column == "age" and feature.dtype != "string":
            frame[column] = _age_bins(raw[column], spec=spec)
        else:
            frame[column] = raw[column].astype(object).where(raw[column].notna(), None)
    require_complete(frame, source=spec, row_label="row")
    for column in columns:
        frame[column] = _in_fairface_spelling(column, frame[column].astype(str))
    return frame


def _class_names(codes: pd.Series, names: list[str], *, column: str, spec: str) -> list[str | None]:
    """ClassLabel ints -> names; -1 (the library's 'no label') becomes a missing value."""
    labels: list[str | None] = []
    for row, code in enumerate(codes):
        if pd.isna(code) or int(code) < 0:
            labels.append(None)
        elif int(code) >= len(names):
            raise DataError(f"{spec}: row {row}: column {column!r} has label {int(code)} but only {len(names)} names")
        else:
            labels.append(names[int(code)])
    return labels


def _age_bins(ages: pd.Series, *, spec: str) -> list[str | None]:
    bins: list[str | None] = []
    for row, years in enumerate(ages):
        if pd.isna(years):
            bins.append(None)
        elif int(years) < 0:
            raise DataError(f"{spec}: row {row}: column 'age' is negative ({int(years)})")
        else:
            bins.append(age_bin(int(years)))
    return bins


def _in_fairface_spelling(column: str, values: pd.Series) -> pd.Series:
    if column not in FAIRFACE_VOCABULARY:
        return values
    mapping = fairface_mapping(column, values)
    return values if mapping is None else values.map(mapping)


def _undecoded_images(dataset: datasets.Dataset, image_column: str) -> datasets.Dataset:
    """Only the image column, left encoded: the bytes are hashed and decoded by us, once."""
    import datasets

    images = dataset.select_columns([image_column])
    if isinstance(images.features[image_column], datasets.Image):
        images = images.cast_column(image_column, datasets.Image(decode=False))
    return images


def _bytes_of(cell: Any, path_roots: tuple[str, ...]) -> bytes | None:
    """Encoded bytes of one Image cell ({'bytes', 'path'}) or raw-bytes cell; None if it has none.

    A path (relative to the first root) is read only inside ``path_roots``, and raises as
    safe_files does.
    """
    if cell is None:
        return None
    if isinstance(cell, (bytes, bytearray)):
        return _within_limit(bytes(cell))
    if cell.get("bytes") is not None:
        return _within_limit(bytes(cell["bytes"]))
    path = cell.get("path")
    if not path:
        return None
    return read_file_inside(os.path.join(path_roots[0], path), path_roots, limit=MAX_IMAGE_BYTES)


def _within_limit(encoded: bytes) -> bytes:
    if len(encoded) > MAX_IMAGE_BYTES:
        raise FileTooLarge(len(encoded), MAX_IMAGE_BYTES)
    return encoded


def _require_distinct_paths(images: datasets.Dataset, image_column: str, path_root: str, *, spec: str) -> None:
    """Raise DataError when two rows' cells name the same image file (bytes-only cells never do)."""
    rows, paths = _stored_paths(images, image_column)
    shared = first_shared_file([os.path.join(path_root, path) for path in paths])
    if shared is not None:
        first, second, resolved = shared
        raise DataError(
            f"{spec}: rows {rows[first]} and {rows[second]} are the same file, {resolved}; list each image once"
        )


def _stored_paths(images: datasets.Dataset, image_column: str) -> tuple[list[int], list[str]]:
    """Row numbers and paths of the cells that hold a path and no bytes (read without the bytes)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = images.with_format("arrow")[:][image_column]
    if not pa.types.is_struct(column.type) or column.type.get_field_index("path") < 0:
        return [], []
    has_bytes = pc.is_valid(pc.struct_field(column, "bytes")).to_pylist()
    paths = pc.struct_field(column, "path").to_pylist()
    rows = [row for row, path in enumerate(paths) if path and not has_bytes[row]]
    return rows, [paths[row] for row in rows]


def _split_outside_brackets(text: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    current = ""
    for char in text:
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == ":" and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
