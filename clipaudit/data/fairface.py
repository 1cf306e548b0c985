"""``fairface:DIR[:SPLIT]`` — the original FairFace release (Kärkkäinen & Joo, WACV 2021).

The release ships ``fairface_label_{train,val}.csv`` (``file,age,gender,race,service_test``)
and a zip of ``train/`` and ``val/`` images. Users unzip the images either next to the
CSVs or into the zip's own folder, so both layouts are found.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from clipaudit.data.base import FolderImageDataset, require_distinct_files
from clipaudit.data.csvfile import FIRST_DATA_LINE, read_label_table
from clipaudit.data.vocab import to_fairface_value
from clipaudit.vocabulary import FAIRFACE_VOCABULARY
from clipaudit.errors import DataError

SPLITS: tuple[str, ...] = ("val", "train")
DEFAULT_SPLIT = "val"
ATTRIBUTES: tuple[str, ...] = ("age", "gender", "race")
# Folder names of the official image zips (margin 0.25 and 1.25 around the face).
_IMAGE_FOLDERS: tuple[str, ...] = ("fairface-img-margin025-trainval", "fairface-img-margin125-trainval")


def parse_fairface_target(target: str) -> tuple[Path, str]:
    """Split 'DIR' or 'DIR:SPLIT' (only a known split counts, so 'C:\\data' stays a folder)."""
    folder, _, maybe_split = target.rpartition(":")
    if folder and maybe_split in SPLITS:
        return Path(folder).expanduser(), maybe_split
    return Path(target).expanduser(), DEFAULT_SPLIT


def load_fairface_dataset(folder: Path, split: str, *, spec: str) -> FolderImageDataset:
    """Load one split; attributes age, gender, race in FairFace's spelling."""
    if split not in SPLITS:
        raise DataError(f"{spec}: unknown FairFace split {split!r}; expected one of {', '.join(SPLITS)}")
    if not folder.is_dir():
        raise DataError(f"{spec}: {folder} is not a folder")
    label_path = folder / f"fairface_label_{split}.csv"
    if not label_path.is_file():
        found = sorted(path.name for path in folder.glob("fairface_label_*.csv"))
        hint = f"found {', '.join(found)}" if found else "found no fairface_label_*.csv"
        raise DataError(f"{spec}: {label_path} not found ({hint})")
    frame = read_label_table(label_path, required=ATTRIBUTES, drop=("service_test",))
    frame = frame[["image_id", *ATTRIBUTES]]
    _check_vocabulary(frame, label_path)
    root = _image_root(folder.absolute(), frame["image_id"].iloc[0])
    require_distinct_files(frame, root, source=str(label_path), row_label="line", first_row=FIRST_DATA_LINE)
    return FolderImageDataset(frame, spec=spec, root=root)


def _check_vocabulary(frame: pd.DataFrame, label_path: Path) -> None:
    """Rewrite labels into FairFace's spelling in place; an unknown value means a wrong file."""
    for attribute in ATTRIBUTES:
        column = frame[attribute]
        mapped = column.map(lambda value, name=attribute: to_fairface_value(name, value))
        unknown = mapped.isna()
        if unknown.any():
            position = int(unknown.to_numpy().nonzero()[0][0])
            allowed = ", ".join(FAIRFACE_VOCABULARY[attribute])
            raise DataError(
                f"{label_path}: line {position + FIRST_DATA_LINE}: {attribute} {column.iloc[position]!r} "
                f"is not a FairFace {attribute} ({allowed})"
            )
        frame[attribute] = mapped.astype(str)


def _image_root(folder: Path, first_image_id: str) -> Path:
    """The folder the ``file`` paths are relative to: DIR itself, or the unzipped image folder."""
    for candidate in (folder, *(folder / name for name in _IMAGE_FOLDERS)):
        if (candidate / first_image_id).exists():
            return candidate
    # Nothing found: keep DIR so find_bad_images reports paths where the user expects them.
    return folder
