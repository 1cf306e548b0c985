"""Demographic vocabularies and the helpers that map other spellings onto them.

FairFace's label set (:mod:`clipaudit.vocabulary`) is the common language of clipaudit: taxonomies name FairFace
values as class ids and slices group by them, so every adapter that *can* speak it
does. Datasets whose labels do not map (UTKFace's five race groups) keep their own
values and say why through :data:`UTKFACE_RACE_NOTE`.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

from clipaudit.vocabulary import FAIRFACE_AGES, FAIRFACE_VOCABULARY

# UTKFace codes race as 0..4 and gender as 0/1 in its file names.
UTKFACE_RACES: tuple[str, ...] = ("White", "Black", "Asian", "Indian", "Others")
UTKFACE_GENDERS: tuple[str, ...] = ("Male", "Female")
UTKFACE_RACE_NOTE = (
    "UTKFace has 5 race groups (White, Black, Asian, Indian, Others) which do not map "
    "onto FairFace's 7; use a taxonomy whose race classes are those 5"
)

# Lower bounds of FairFace's age bins, in FAIRFACE_AGES order.
_AGE_BIN_STARTS: tuple[int, ...] = (0, 3, 10, 20, 30, 40, 50, 60, 70)

# Spellings seen in re-releases (Hub copies, CSV exports) beyond the canonical ones,
# keyed by _spelling_key(). The canonical values are added below.
_EXTRA_SPELLINGS: dict[str, dict[str, str]] = {
    "race": {
        "latino": "Latino_Hispanic",
        "hispanic": "Latino_Hispanic",
        "latinx": "Latino_Hispanic",
        "middleeast": "Middle Eastern",
        "southeastasian": "Southeast Asian",
        "seasian": "Southeast Asian",
    },
    "gender": {"m": "Male", "man": "Male", "f": "Female", "woman": "Female"},
    "age": {
        "70+": "more than 70",
        "70plus": "more than 70",
        ">70": "more than 70",
        "over70": "more than 70",
        "morethan70": "more than 70",
    },
}


def _spelling_key(value: str) -> str:
    """Collapse case, spaces, underscores, hyphens and slashes, which re-releases vary.

    Age bins keep their digits separated ('10-19' -> '10to19') so '0-2' and '02' stay apart.
    """
    lowered = value.strip().casefold()
    lowered = re.sub(r"(\d)\s*[-–]\s*(\d)", r"\1to\2", lowered)
    return re.sub(r"[\s_\-/]+", "", lowered)


def _spellings_for(attribute: str) -> dict[str, str]:
    canonical = {_spelling_key(value): value for value in FAIRFACE_VOCABULARY[attribute]}
    return {**_EXTRA_SPELLINGS.get(attribute, {}), **canonical}


_SPELLINGS: dict[str, dict[str, str]] = {name: _spellings_for(name) for name in FAIRFACE_VOCABULARY}


def to_fairface_value(attribute: str, value: str) -> str | None:
    """FairFace's spelling of ``value`` for ``attribute`` ('race', 'gender', 'age'), or None.

    None means the value is not a FairFace value under any known spelling (or the
    attribute is not one FairFace labels), so the caller decides whether that is an error.
    """
    spellings = _SPELLINGS.get(attribute)
    if spellings is None:
        return None
    return spellings.get(_spelling_key(value))


def fairface_mapping(attribute: str, values: Iterable[str]) -> dict[str, str] | None:
    """A value -> FairFace value map covering every distinct value, or None if any is unknown.

    All or nothing on purpose: half-renamed columns would mix two vocabularies.
    """
    mapping: dict[str, str] = {}
    for value in set(values):
        fairface_value = to_fairface_value(attribute, value)
        if fairface_value is None:
            return None
        mapping[value] = fairface_value
    return mapping


def age_bin(age_years: int) -> str:
    """The FairFace age bin holding an age in whole years (70 and over -> 'more than 70')."""
    if age_years < 0:
        raise ValueError(f"age must be >= 0 years, got {age_years}")
    bin_index = sum(1 for start in _AGE_BIN_STARTS if age_years >= start) - 1
    return FAIRFACE_AGES[bin_index]
