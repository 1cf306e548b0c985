"""Synthetic FairFace-style face drawings for the offline demo.

These are cartoon stand-ins drawn from geometric shapes, not people and not derived
from any photograph. Their "race", "gender" and "age" are labels we attach to drawing
parameters so that the demo pipeline has FairFace-shaped data to audit with no download
and no real faces. The mapping from label to appearance is invented; it says nothing
about how real people look.

What makes the labels learnable (a small CLIP is trained on these images):

* race   -> one of 7 clearly separated skin tones, plus a second invented cue per
            group (hair colour, eye shape, nose width, hair texture, brow weight);
* gender -> hair length and shape (long hair over the shoulders, hidden ears) and jaw
            shape (square vs tapered), lips, stubble on some adult "Male" faces;
* age    -> face size and proportions (round, large-eyed faces for children), forehead
            and cheek lines that accumulate with age, crow's feet and greying hair.

Nuisance that is *not* tied to any label keeps the task from being trivial: background
and shirt colours, position and size jitter, small rotations, directional lighting,
colour cast and sensor noise.

Drawing uses only PIL.ImageDraw (at 2x, then downsampled for smooth edges) and numpy.
Everything random comes from the ``rng`` passed in, so a seed fixes every pixel.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from clipaudit.data.face_looks import AGE_LOOKS, RACE_LOOKS, RGB, AgeLook, RaceLook
from clipaudit.vocabulary import FAIRFACE_AGES, FAIRFACE_GENDERS, FAIRFACE_RACES

__all__ = ["RACE_LOOKS", "AGE_LOOKS", "RENDERER_VERSION", "balanced_labels", "render_dataset", "render_face"]

# Bump whenever a drawing change alters pixels: the synthetic cache is keyed on it.
RENDERER_VERSION = 1

IMAGE_SIZE = 224
_SUPERSAMPLE = 2
_CANVAS = IMAGE_SIZE * _SUPERSAMPLE
JPEG_QUALITY = 92

_ADULT_FACE_WIDTH = 100 * _SUPERSAMPLE
_GREY_HAIR: RGB = (205, 205, 200)
_LIP_COLOUR: RGB = (186, 72, 86)


@dataclass(frozen=True)
class _Face:
    """Where this face sits on the canvas and the colours it is drawn with."""

    cx: float
    cy: float
    width: float
    height: float
    skin: RGB
    hair: RGB
    female: bool
    race: RaceLook
    age: AgeLook
    age_index: int


def render_face(race: str, gender: str, age: str, *, rng: np.random.Generator) -> Image.Image:
    """One 224x224 RGB drawing with the given FairFace labels, random in everything else."""
    _require_value("race", race, FAIRFACE_RACES)
    _require_value("gender", gender, FAIRFACE_GENDERS)
    _require_value("age", age, FAIRFACE_AGES)
    background = _random_colour(rng, low=35, high=235)
    canvas = Image.new("RGB", (_CANVAS, _CANVAS), background)
    draw = ImageDraw.Draw(canvas, "RGBA")
    face = _place_face(race, gender, age, rng)

    _draw_back_hair(draw, face)
    _draw_neck(draw, face)
    _draw_shoulders(draw, face, rng)
    if not face.female:
        _draw_ears(draw, face)
    draw.polygon(_face_outline(face), fill=face.skin)
    _draw_fringe(draw, face)
    _draw_wrinkles(draw, face)
    if not face.female and face.age_index >= 3 and rng.random() < 0.4:
        _draw_stubble(draw, face)
    _draw_eyes(draw, face, rng)
    _draw_nose(draw, face)
    _draw_mouth(draw, face, rng)

    tilt_degrees = float(rng.uniform(-9, 9))
    # Nearest-neighbour rotation is ~30x cheaper than bicubic; the 2x box reduction that
    # follows smooths its stair-steps, which keeps 630 faces to a few seconds.
    canvas = canvas.rotate(
        tilt_degrees, resample=Image.Resampling.NEAREST, center=(face.cx, face.cy), fillcolor=background
    )
    small = canvas.reduce(_SUPERSAMPLE)
    return _relight(small, rng)


def render_dataset(out_dir: Path, n: int, seed: int) -> pd.DataFrame:
    """Render ``n`` faces balanced over race x gender x age into ``out_dir``.

    Writes ``images/00000.jpg`` ... and ``labels.csv`` (``file,race,gender,age``) and
    returns that table. Each full round of 126 label combinations is shuffled by the
    seed, so every race x gender cell gets n/14 images (45 for n = 630), and image k
    depends only on (seed, k): a smaller n renders a prefix of a larger one.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, str]] = []
    for index, (race, gender, age) in enumerate(balanced_labels(n, seed)):
        rng = np.random.default_rng([seed, index])
        file_name = f"images/{index:05d}.jpg"
        image = render_face(race, gender, age, rng=rng)
        image.save(out_dir / file_name, format="JPEG", quality=JPEG_QUALITY)
        rows.append({"file": file_name, "race": race, "gender": gender, "age": age})
    labels = pd.DataFrame(rows, columns=["file", "race", "gender", "age"])
    labels.to_csv(out_dir / "labels.csv", index=False)
    return labels


def balanced_labels(n: int, seed: int) -> list[tuple[str, str, str]]:
    """``n`` (race, gender, age) triples: whole shuffled rounds of all combinations, cut at n."""
    combinations = list(itertools.product(FAIRFACE_RACES, FAIRFACE_GENDERS, FAIRFACE_AGES))
    order_rng = np.random.default_rng([seed, 2**31])  # apart from the per-image streams
    labels: list[tuple[str, str, str]] = []
    while len(labels) < n:
        labels.extend(combinations[i] for i in order_rng.permutation(len(combinations)))
    return labels[:n]


# -- placement and colour --------------------------------------------------------------


def _place_face(race: str, gender: str, age: str, rng: np.random.Generator) -> _Face:
    race_look, age_look = RACE_LOOKS[race], AGE_LOOKS[age]
    width = _ADULT_FACE_WIDTH * age_look.face_scale * rng.uniform(0.92, 1.08)
    # Children's faces sit a little lower: the frame still holds shoulders below them.
    centre_y = _CANVAS * (0.46 + 0.05 * (1 - age_look.face_scale)) + rng.uniform(-18, 18)
    skin = _jitter(race_look.skin, rng, spread=6)
    hair = _mix(_jitter(race_look.hair, rng, spread=10), _GREY_HAIR, age_look.grey)
    return _Face(
        cx=_CANVAS / 2 + rng.uniform(-26, 26),
        cy=centre_y,
        width=width,
        height=width * age_look.aspect,
        skin=skin,
        hair=hair,
        female=gender == "Female",
        race=race_look,
        age=age_look,
        age_index=FAIRFACE_AGES.index(age),
    )


def _random_colour(rng: np.random.Generator, *, low: int, high: int) -> RGB:
    red, green, blue = (int(value) for value in rng.integers(low, high, size=3))
    return (red, green, blue)


def _jitter(colour: RGB, rng: np.random.Generator, *, spread: int) -> RGB:
    shifted = np.clip(np.array(colour) + rng.integers(-spread, spread + 1, size=3), 0, 255)
    return (int(shifted[0]), int(shifted[1]), int(shifted[2]))


def _mix(colour: RGB, other: RGB, share_of_other: float) -> RGB:
    mixed = [round(a * (1 - share_of_other) + b * share_of_other) for a, b in zip(colour, other)]
    return (mixed[0], mixed[1], mixed[2])


def _shade(colour: RGB, factor: float, alpha: int = 255) -> tuple[int, int, int, int]:
    return (*(min(255, round(channel * factor)) for channel in colour), alpha)  # type: ignore[return-value]


# -- parts, drawn back to front --------------------------------------------------------


def _face_outline(face: _Face, points: int = 96) -> list[tuple[float, float]]:
    """A superellipse: rounder crown, squarer jaw for 'Male', tapered chin for 'Female'.

    Children get a plain ellipse, so jaw shape only separates gender from the teens up.
    """
    if face.age_index <= 1:
        jaw_exponent = 2.0
    else:
        jaw_exponent = 1.75 if face.female else 3.2
    outline = []
    for step in range(points):
        angle = 2 * math.pi * step / points
        exponent = jaw_exponent if math.sin(angle) > 0 else 2.2  # image y grows downwards
        cos_a, sin_a = math.cos(angle), math.sin(angle)
        x = math.copysign(abs(cos_a) ** (2 / exponent), cos_a) * face.width / 2
        y = math.copysign(abs(sin_a) ** (2 / exponent), sin_a) * face.height / 2
        outline.append((face.cx + x, face.cy + y))
    return outline


def _draw_shoulders(draw: ImageDraw.ImageDraw, face: _Face, rng: np.random.Generator) -> None:
    shirt = _random_colour(rng, low=20, high=240)
    half_span = face.width * (1.05 if not face.female else 0.88) / max(face.age.face_scale, 0.8)
    top = face.cy + face.height * 0.62
    draw.ellipse((face.cx - half_span, top, face.cx + half_span, top + face.height * 1.3), fill=shirt)


def _draw_neck(draw: ImageDraw.ImageDraw, face: _Face) -> None:
    half_width = face.width * (0.21 if not face.female else 0.16)
    draw.rectangle(
        (face.cx - half_width, face.cy + face.height * 0.25, face.cx + half_width, face.cy + face.height * 0.78),
        fill=_shade(face.skin, 0.88),
    )


def _draw_ears(draw: ImageDraw.ImageDraw, face: _Face) -> None:
    ear_width, ear_height = face.width * 0.13, face.height * 0.2
    for side in (-1, 1):
        ear_x = face.cx + side * face.width * 0.48
        draw.ellipse(
            (ear_x - ear_width / 2, face.cy - ear_height * 0.55, ear_x + ear_width / 2, face.cy + ear_height * 0.45),
            fill=_shade(face.skin, 0.92),
        )


def _draw_back_hair(draw: ImageDraw.ImageDraw, face: _Face) -> None:
    """Hair behind the face: long over the shoulders for 'Female', a close crown for 'Male'."""
    fullness = face.age.hair_fullness
    crown_top = face.cy - face.height * (0.5 + 0.1 * fullness)
    if face.female and face.race.curly_hair:
        span = face.width * (0.55 + 0.25 * fullness)
        bottom = face.cy + face.height * 0.35 * fullness
        draw.ellipse((face.cx - span, crown_top - face.height * 0.08, face.cx + span, bottom), fill=face.hair)
    elif face.female:
        span = face.width * (0.55 + 0.1 * fullness)
        length = face.height * (0.1 + 0.75 * fullness ** 2)
        draw.rounded_rectangle(
            (face.cx - span, crown_top, face.cx + span, face.cy + length), radius=face.width * 0.45, fill=face.hair
        )
    else:
        span = face.width * (0.5 + 0.04 * fullness)
        draw.ellipse((face.cx - span, crown_top, face.cx + span, face.cy + face.height * 0.05), fill=face.hair)
    if face.race.curly_hair:
        _draw_curls(draw, face, crown_top)


def _draw_curls(draw: ImageDraw.ImageDraw, face: _Face, crown_top: float) -> None:
    radius = face.width * (0.09 if face.female else 0.06)
    reach = face.width * (0.62 if face.female else 0.5)
    for step in range(11):
        angle = math.pi * (1.05 + 0.9 * step / 10)
        x = face.cx + reach * math.cos(angle)
        y = crown_top + face.height * 0.45 + face.height * 0.45 * math.sin(angle)
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=face.hair)


def _draw_fringe(draw: ImageDraw.ImageDraw, face: _Face) -> None:
    """Hair over the top of the forehead (shallow for babies), side locks for 'Female'."""
    depth = face.height * (0.08 + 0.2 * face.age.hair_fullness)
    top = face.cy - face.height * 0.56
    span = face.width * 0.53
    draw.chord((face.cx - span, top, face.cx + span, top + 2 * depth), 180, 360, fill=face.hair)
    if face.female and face.age.hair_fullness > 0.5:
        lock_width = face.width * 0.09
        for side in (-1, 1):
            lock_x = face.cx + side * face.width * 0.46
            draw.rounded_rectangle(
                (lock_x - lock_width, top + depth * 0.6, lock_x + lock_width, face.cy + face.height * 0.3),
                radius=lock_width,
                fill=face.hair,
            )


def _draw_wrinkles(draw: ImageDraw.ImageDraw, face: _Face) -> None:
    line_colour = _shade(face.skin, 0.62, alpha=110 + 25 * face.age_index // 2)
    line_width = max(2, round(face.width * 0.018))
    half_span = face.width * 0.2
    for line in range(face.age.forehead_lines):
        y = face.cy - face.height * (0.28 - 0.045 * line)
        box = (face.cx - half_span, y, face.cx + half_span, y + face.height * 0.08)
        draw.arc(box, 200, 340, fill=line_colour, width=line_width)
    eye_y = face.cy + face.height * (face.age.eye_drop - 0.02)
    if face.age.crow_feet:
        for side in (-1, 1):
            corner_x = face.cx + side * face.width * 0.36
            for spread in (-1, 0, 1):
                end = (corner_x + side * face.width * 0.08, eye_y + spread * face.height * 0.035)
                draw.line((corner_x, eye_y, *end), fill=line_colour, width=line_width)
    if face.age.cheek_lines:
        for side in (-1, 1):
            top = (face.cx + side * face.width * 0.12, face.cy + face.height * 0.12)
            bottom = (face.cx + side * face.width * 0.2, face.cy + face.height * 0.32)
            draw.line((*top, *bottom), fill=line_colour, width=line_width)


def _draw_stubble(draw: ImageDraw.ImageDraw, face: _Face) -> None:
    half_width = face.width * 0.47
    box = (face.cx - half_width, face.cy - face.height * 0.32, face.cx + half_width, face.cy + face.height * 0.5)
    draw.chord(box, 15, 165, fill=(*face.hair, 120))


def _draw_eyes(draw: ImageDraw.ImageDraw, face: _Face, rng: np.random.Generator) -> None:
    eye_width = face.width * 0.17 * face.age.eye_scale
    openness = {"round": 0.62, "almond": 0.42, "narrow": 0.24}[face.race.eye_shape]
    eye_height = eye_width * openness
    eye_y = face.cy + face.height * (face.age.eye_drop - 0.02)
    iris = (60, 110, 170) if face.race.light_eyes and rng.random() < 0.5 else (70, 45, 25)
    outline_width = max(2, round(face.width * 0.015))
    brow_width = max(2, round(face.width * 0.028 * face.race.brow_weight * (0.85 if face.female else 1.35)))
    brow_colour = _shade(face.hair, 0.8)
    for side in (-1, 1):
        eye_x = face.cx + side * face.width * 0.21
        box = (eye_x - eye_width / 2, eye_y - eye_height / 2, eye_x + eye_width / 2, eye_y + eye_height / 2)
        draw.ellipse(box, fill=(245, 245, 240), outline=(40, 30, 25), width=outline_width)
        iris_radius = min(eye_height * 0.48, eye_width * 0.24)
        draw.ellipse((eye_x - iris_radius, eye_y - iris_radius, eye_x + iris_radius, eye_y + iris_radius), fill=iris)
        pupil = iris_radius * 0.45
        draw.ellipse((eye_x - pupil, eye_y - pupil, eye_x + pupil, eye_y + pupil), fill=(10, 10, 10))
        if face.race.eye_shape == "narrow":
            # A heavy upper lid line is the drawn cue for this invented eye shape.
            lid_y = box[1] + eye_height * 0.2
            draw.line((box[0], lid_y, box[2], lid_y), fill=_shade(face.skin, 0.55), width=outline_width + 1)
        brow_y = eye_y - eye_height / 2 - face.height * 0.055
        inner, outer = eye_x - side * eye_width * 0.55, eye_x + side * eye_width * 0.65
        brow = (inner, brow_y + 2, eye_x, brow_y - 3, outer, brow_y + 3)
        draw.line(brow, fill=brow_colour, width=brow_width, joint="curve")


def _draw_nose(draw: ImageDraw.ImageDraw, face: _Face) -> None:
    colour = _shade(face.skin, 0.7)
    line_width = max(2, round(face.width * 0.016))
    tip_y = face.cy + face.height * (0.15 + face.age.eye_drop * 0.5)
    bridge_top = face.cy + face.height * face.age.eye_drop
    draw.line((face.cx, bridge_top, face.cx - face.width * 0.02, tip_y), fill=colour, width=line_width)
    half_span = face.width * face.race.nose_width / 2
    nostrils = (face.cx - half_span, tip_y - face.height * 0.03, face.cx + half_span, tip_y + face.height * 0.04)
    draw.arc(nostrils, 10, 170, fill=colour, width=line_width)


def _draw_mouth(draw: ImageDraw.ImageDraw, face: _Face, rng: np.random.Generator) -> None:
    mouth_y = face.cy + face.height * (0.3 + face.age.eye_drop * 0.3)
    half_span = face.width * 0.16
    smile = face.height * float(rng.uniform(0.0, 0.05))
    if face.female:
        lip_height = face.height * 0.032
        lips = (face.cx - half_span, mouth_y - lip_height, face.cx + half_span, mouth_y + lip_height)
        draw.ellipse(lips, fill=_mix(_LIP_COLOUR, face.skin, 0.35))
    line_width = max(2, round(face.width * 0.02))
    box = (face.cx - half_span, mouth_y - smile - 1, face.cx + half_span, mouth_y + smile + 1)
    draw.arc(box, 0, 180, fill=_shade(face.skin, 0.5), width=line_width)


# -- the camera ------------------------------------------------------------------------


def _relight(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Exposure, a light gradient from a random side, a slight colour cast and noise."""
    pixels = np.asarray(image, dtype=np.float32)
    size = pixels.shape[0]
    coords = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    # Python floats, not numpy float64 scalars, so the arithmetic stays in float32.
    light_angle = float(rng.uniform(0, 2 * math.pi))
    gradient = math.cos(light_angle) * coords[None, :] + math.sin(light_angle) * coords[:, None]
    gain = float(rng.uniform(0.85, 1.12)) * (1.0 + float(rng.uniform(0.0, 0.14)) * gradient)
    cast = rng.uniform(0.95, 1.05, size=3).astype(np.float32)
    # Luminance noise (one value per pixel, shared by the channels) is half the cost of
    # per-channel noise and looks the same after JPEG.
    noise = rng.standard_normal((size, size, 1), dtype=np.float32) * 3.0
    lit = pixels * (gain[..., None] * cast) + noise
    return Image.fromarray(np.clip(lit, 0, 255).astype(np.uint8), mode="RGB")


def _require_value(attribute: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {attribute} {value!r}; expected one of {', '.join(allowed)}")
