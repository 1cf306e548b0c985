"""The invented appearance behind each synthetic label: a look per "race" and per age bin.

These drawing parameters are made up so that a small model can learn the labels of the demo's
cartoon faces (see :mod:`clipaudit.data.faces`); they say nothing about how real people look.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

RGB = tuple[int, int, int]
EyeShape = Literal["round", "almond", "narrow"]


@dataclass(frozen=True)
class RaceLook:
    """Invented per-group appearance: a skin tone and one more cue so tone is not alone."""

    skin: RGB
    hair: RGB
    eye_shape: EyeShape
    nose_width: float  # nostril span as a share of face width
    curly_hair: bool
    brow_weight: float  # multiplies eyebrow thickness
    light_eyes: bool  # iris sometimes blue/green instead of brown


@dataclass(frozen=True)
class AgeLook:
    """Per-bin proportions and marks; younger faces are smaller, rounder, larger-eyed."""

    face_scale: float  # face width relative to an adult's
    aspect: float  # face height / width
    eye_scale: float
    eye_drop: float  # eye line below the face centre, as a share of face height
    forehead_lines: int
    crow_feet: bool
    cheek_lines: bool
    grey: float  # share of grey mixed into the hair colour
    hair_fullness: float  # 0..1; babies have little hair


RACE_LOOKS: dict[str, RaceLook] = {
    "White": RaceLook((244, 214, 198), (176, 132, 70), "round", 0.10, False, 0.8, True),
    "East Asian": RaceLook((236, 204, 156), (22, 18, 16), "narrow", 0.11, False, 0.8, False),
    "Middle Eastern": RaceLook((212, 168, 126), (34, 24, 18), "almond", 0.12, False, 1.6, False),
    "Latino_Hispanic": RaceLook((196, 145, 102), (78, 48, 26), "almond", 0.12, False, 1.0, False),
    "Southeast Asian": RaceLook((176, 126, 84), (28, 22, 18), "narrow", 0.16, False, 0.8, False),
    "Indian": RaceLook((146, 98, 62), (16, 12, 10), "round", 0.13, False, 1.3, False),
    "Black": RaceLook((94, 60, 38), (14, 10, 8), "round", 0.18, True, 1.0, False),
}

AGE_LOOKS: dict[str, AgeLook] = {
    "0-2": AgeLook(0.70, 1.00, 1.40, 0.10, 0, False, False, 0.0, 0.55),
    "3-9": AgeLook(0.80, 1.08, 1.22, 0.06, 0, False, False, 0.0, 0.90),
    "10-19": AgeLook(0.91, 1.18, 1.08, 0.02, 0, False, False, 0.0, 1.0),
    "20-29": AgeLook(1.00, 1.26, 1.00, 0.00, 0, False, False, 0.0, 1.0),
    "30-39": AgeLook(1.00, 1.27, 1.00, 0.00, 1, False, False, 0.0, 1.0),
    "40-49": AgeLook(1.00, 1.28, 0.98, 0.00, 2, False, True, 0.12, 1.0),
    "50-59": AgeLook(0.99, 1.29, 0.96, 0.00, 3, True, True, 0.40, 0.95),
    "60-69": AgeLook(0.98, 1.30, 0.94, 0.00, 3, True, True, 0.70, 0.85),
    "more than 70": AgeLook(0.96, 1.32, 0.92, 0.00, 4, True, True, 0.92, 0.75),
}
