"""The synthetic face renderer: determinism, shape, balance and visibly distinct labels."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clipaudit.vocabulary import FAIRFACE_AGES, FAIRFACE_GENDERS, FAIRFACE_RACES
from clipaudit.data.faces import RACE_LOOKS, balanced_labels, render_dataset, render_face


def _pixels(race: str, gender: str, age: str, seed: int) -> np.ndarray:
    return np.asarray(render_face(race, gender, age, rng=np.random.default_rng(seed)))


def test_render_face_is_224_rgb() -> None:
    image = render_face("Indian", "Female", "30-39", rng=np.random.default_rng(0))
    assert image.size == (224, 224) and image.mode == "RGB"


def test_same_seed_same_pixels_other_seed_other_pixels() -> None:
    assert np.array_equal(_pixels("Black", "Male", "3-9", 7), _pixels("Black", "Male", "3-9", 7))
    assert not np.array_equal(_pixels("Black", "Male", "3-9", 7), _pixels("Black", "Male", "3-9", 8))


def test_unknown_label_is_rejected() -> None:
    with pytest.raises(ValueError, match="East Asian"):
        render_face("Asian", "Male", "20-29", rng=np.random.default_rng(0))


def test_render_dataset_same_seed_same_bytes(tmp_path: Path) -> None:
    first = render_dataset(tmp_path / "a", 12, seed=4)
    second = render_dataset(tmp_path / "b", 12, seed=4)
    assert first.equals(second)
    assert list(first.columns) == ["file", "race", "gender", "age"]
    for file_name in first["file"]:
        assert (tmp_path / "a" / file_name).read_bytes() == (tmp_path / "b" / file_name).read_bytes()
    written = pd.read_csv(tmp_path / "a" / "labels.csv", dtype=str)
    assert written.equals(first)


def test_smaller_n_is_a_prefix_of_larger_n(tmp_path: Path) -> None:
    small = render_dataset(tmp_path / "small", 3, seed=1)
    large = render_dataset(tmp_path / "large", 6, seed=1)
    assert large.head(3).equals(small)
    assert (tmp_path / "small/images/00002.jpg").read_bytes() == (tmp_path / "large/images/00002.jpg").read_bytes()


def test_balanced_labels_cover_every_combination_per_round() -> None:
    labels = balanced_labels(126 * 2, seed=0)
    counts = pd.Series(labels).value_counts()
    assert len(counts) == len(FAIRFACE_RACES) * len(FAIRFACE_GENDERS) * len(FAIRFACE_AGES)
    assert set(counts) == {2}
    assert balanced_labels(126, seed=0) != balanced_labels(126, seed=1)


def test_skin_tones_are_distinct() -> None:
    tones = np.array([look.skin for look in RACE_LOOKS.values()], dtype=float)
    distances = np.linalg.norm(tones[:, None] - tones[None, :], axis=-1)
    assert distances[~np.eye(len(tones), dtype=bool)].min() > 20
    assert set(RACE_LOOKS) == set(FAIRFACE_RACES)


def _centre_patch_mean(pixels: np.ndarray) -> np.ndarray:
    # The cheeks: inside the face whatever the jitter, away from eyes, nose and mouth.
    return pixels[112:122, 70:80].reshape(-1, 3).mean(axis=0)


def test_skin_tone_is_visible_in_the_image() -> None:
    light = np.mean([_centre_patch_mean(_pixels("White", "Male", "20-29", seed)).mean() for seed in range(6)])
    dark = np.mean([_centre_patch_mean(_pixels("Black", "Male", "20-29", seed)).mean() for seed in range(6)])
    assert light - dark > 60


def test_gender_shows_as_long_hair_beside_the_neck() -> None:
    """Below the jaw line, beside the neck, 'Female' faces have hair; 'Male' ones background."""

    def hair_share(gender: str) -> float:
        darkish = []
        for seed in range(8):
            rng = np.random.default_rng(seed)
            image = np.asarray(render_face("East Asian", gender, "20-29", rng=rng)).astype(float)
            column = image[120:150, 45:60].reshape(-1, 3)
            darkish.append((column.max(axis=1) < 60).mean())  # East Asian hair is near black
        return float(np.mean(darkish))

    assert hair_share("Female") > hair_share("Male") + 0.3


def _grey_crown_share(age: str, seed: int) -> float:
    # Light, colourless pixels at the crown: grey hair on a black-haired group.
    crown = _pixels("Indian", "Male", age, seed)[20:70, 70:150].reshape(-1, 3).astype(float)
    return float(((crown.min(axis=1) > 140) & (np.ptp(crown, axis=1) < 30)).mean())


def test_older_faces_have_grey_hair() -> None:
    young = np.mean([_grey_crown_share("20-29", seed) for seed in range(6)])
    old = np.mean([_grey_crown_share("more than 70", seed) for seed in range(6)])
    assert old > young + 0.1


def test_older_faces_have_forehead_lines() -> None:
    """Forehead texture: line edges make the forehead's row-to-row differences larger."""

    def forehead_edges(age: str) -> float:
        edges = []
        for seed in range(6):
            forehead = _pixels("White", "Female", age, seed)[68:88, 95:130].astype(float).mean(axis=2)
            edges.append(np.abs(np.diff(forehead, axis=0)).mean())
        return float(np.mean(edges))

    assert forehead_edges("more than 70") > forehead_edges("20-29") * 1.5
