"""``hf:NAME[:CONFIG]:SPLIT`` — a Hugging Face ``datasets`` dataset, from the Hub or from disk.

NAME is a Hub id (``HuggingFaceM4/FairFace``) or a folder written by ``save_to_disk``.
The image column is the first ``Image`` feature; attributes are the ClassLabel and
string columns (ClassLabel ints become their names), and an integer ``age`` column is
binned into FairFace's bins. Columns called race, gender or age are respelled into
FairFace's vocabulary when every value has a known spelling ('Latino Hispanic' ->
'Latino_Hispanic'). Image ids are row indices as strings.

Remote code is never run: ``trust_remote_code`` is not passed, so script-based
datasets fail with the library's own message instead of executing.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from clipaudit.data.base import FINGERPRINT_FORMAT, MISSING, ImageDataset, require_complete
from clipaudit.data.vocab import age_bin, fairface_mapping
from clipaudit.vocabulary import FAIRFACE_VOCABULARY
from clipaudit.errors import DataError, UnreadableImage

if TYPE_CHECKING:  # importing datasets costs about a second; only hf: specs pay it
    import datasets

# Columns that are bookkeeping in known releases, not demographic attributes.
_NOT_ATTRIBUTES: frozenset[str] = frozenset({"service_test"})
_STRING_DTYPES: frozenset[str] = frozenset({"string", "large_string"})


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
    dataset = _open_dataset(name, config, split, spec=spec)
    return HubImageDataset(dataset, spec=spec, config=config, split=split)


class HubImageDataset(ImageDataset):
    """Rows of a ``datasets.Dataset``; images read from its first Image column."""

    def __init__(
        self, dataset: datasets.Dataset, *, spec: str, config: str | None, split: str | None
    ) -> None:
        image_column = _image_column(dataset, spec=spec)
        frame = _label_frame(dataset, image_column, spec=spec)
        super().__init__(frame, spec=spec, root=None)
        self.config = config
        self.split = split
        self.image_column = image_column
        self._source_fingerprint: str = dataset._fingerprint
        self._images = _undecoded_images(dataset, image_column)

    def _image_location(self, index: int) -> str:
        return f"{self.spec}: row {index}"

    def _read_image_bytes(self, index: int) -> bytes:
        cell = self._images[index][self.image_column]
        encoded = _bytes_of(cell)
        if encoded is None:
            raise UnreadableImage(self.image_id(index), self._image_location(index), MISSING)
        return encoded

    def _compute_fingerprint(self) -> str:
        # Hashing every image of an 87k-row Hub split would cost minutes; the library's own
        # fingerprint already identifies the prepared data, and split/config pick the rows.
        identity = f"clipaudit-hub-v{FINGERPRINT_FORMAT}|{self._source_fingerprint}|{self.config}|{self.split}"
        return hashlib.sha256(identity.encode("utf-8")).hexdigest()


def _open_dataset(name: str, config: str | None, split: str | None, *, spec: str) -> datasets.Dataset:
    import datasets

    folder = Path(name).expanduser()
    if folder.is_dir():
        return _open_saved(folder, config, split, spec=spec)
    if split is None:
        raise DataError(f"{spec}: no split; expected hf:{name}:SPLIT (e.g. hf:{name}:train)")
    try:
        loaded = datasets.load_dataset(name, config, split=split)
    except Exception as error:  # network, auth, not found, bad split: all one line for the user
        raise DataError(f"{spec}: cannot load dataset {name!r}: {_first_line(error)}") from None
    if not isinstance(loaded, datasets.Dataset):
        raise DataError(f"{spec}: {name!r} did not load as one table (streaming datasets are not supported)")
    return loaded


def _open_saved(folder: Path, config: str | None, split: str | None, *, spec: str) -> datasets.Dataset:
    import datasets

    if config is not None:
        raise DataError(f"{spec}: a dataset saved to disk has no configs; use hf:{folder}:SPLIT")
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


def _bytes_of(cell: Any) -> bytes | None:
    """Encoded bytes of one Image cell ({'bytes', 'path'}) or raw-bytes cell."""
    if cell is None:
        return None
    if isinstance(cell, (bytes, bytearray)):
        return bytes(cell)
    if cell.get("bytes") is not None:
        return bytes(cell["bytes"])
    path = cell.get("path")
    if path and Path(path).is_file():
        return Path(path).read_bytes()
    return None


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
