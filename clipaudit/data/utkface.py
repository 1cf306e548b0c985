"""``utkface:DIR`` — UTKFace (Zhang, Song & Qi, CVPR 2017), labelled by its file names.

Names are ``age_gender_race_date.jpg`` (the aligned crops add ``.chip.jpg``), with gender
0 = male, 1 = female and race 0..4 = White, Black, Asian, Indian, Others. Ages are binned
into FairFace's bins. Race is *not* mapped: UTKFace's 'Asian' spans FairFace's East and
Southeast Asian and 'Others' has no counterpart, so the column keeps UTKFace's five
groups and a note explains this whenever a taxonomy expects FairFace's seven.

A few files in the public release lack a field (e.g. ``39_1_20170116174525125.jpg.chip.jpg``);
such files are skipped and listed in ``ImageDataset.skipped`` rather than guessed at.
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from clipaudit.data.base import FolderImageDataset, require_distinct_files
from clipaudit.data.vocab import UTKFACE_GENDERS, UTKFACE_RACE_NOTE, UTKFACE_RACES, age_bin
from clipaudit.errors import DataError

_LABELLED_NAME = re.compile(
    r"^(?P<age>\d{1,3})_(?P<gender>[01])_(?P<race>[0-4])_(?P<date>\d+)\.(?:jpe?g|png)(?:\.chip\.jpg)?$",
    re.IGNORECASE,
)
NAME_PATTERN = "age_gender_race_date.jpg"


def load_utkface_dataset(folder: Path, *, spec: str) -> FolderImageDataset:
    """Load every labelled image under ``folder`` (sub-folders too: part1/, part2/, ...)."""
    if not folder.is_dir():
        raise DataError(f"{spec}: {folder} is not a folder")
    rows: list[dict[str, str]] = []
    skipped: list[str] = []
    for path in sorted(_visible_files(folder)):
        image_id = path.relative_to(folder).as_posix()
        labels = parse_utkface_name(path.name)
        if labels is None:
            skipped.append(image_id)
        else:
            rows.append({"image_id": image_id, **labels})
    if not rows:
        raise DataError(
            f"{spec}: no file in {folder} is named like {NAME_PATTERN} "
            f"(age, gender 0/1, race 0-4, date; {len(skipped)} other files)"
        )
    frame = pd.DataFrame(rows, columns=["image_id", "age", "gender", "race"])
    require_distinct_files(frame, folder.absolute(), source=spec)
    return FolderImageDataset(
        frame, spec=spec, root=folder.absolute(), notes={"race": UTKFACE_RACE_NOTE}, skipped=skipped
    )


def parse_utkface_name(file_name: str) -> dict[str, str] | None:
    """Labels from a UTKFace file name, or None when it does not follow the pattern."""
    match = _LABELLED_NAME.match(file_name)
    if match is None:
        return None
    return {
        "age": age_bin(int(match["age"])),
        "gender": UTKFACE_GENDERS[int(match["gender"])],
        "race": UTKFACE_RACES[int(match["race"])],
    }


def _visible_files(folder: Path) -> list[Path]:
    # Hidden files (.DS_Store, ._ resource forks) are OS litter, not skipped images.
    return [
        path
        for path in folder.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    ]
