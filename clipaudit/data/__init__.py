"""Dataset adapters: every supported source becomes one :class:`ImageDataset`.

``load_dataset(spec)`` reads a data SPEC:

* ``fairface:DIR[:val|train]`` — the original FairFace release (val by default);
* ``hf:NAME[:CONFIG]:SPLIT`` — a Hugging Face dataset, from the Hub or a ``save_to_disk`` folder;
* ``utkface:DIR`` — UTKFace, labelled by file name;
* ``csv:FILE`` — a CSV with a ``file`` column plus attribute columns;
* ``synthetic[:N[:SEED]]`` — the demo's drawn faces (cartoon stand-ins, not people).
"""
from __future__ import annotations

from pathlib import Path

from clipaudit.data.base import (
    FolderImageDataset,
    ImageDataset,
    UnreadableImage,
    describe_bad_images,
)
from clipaudit.data.vocab import UTKFACE_RACE_NOTE, UTKFACE_RACES, age_bin, to_fairface_value
from clipaudit.errors import DataError
from clipaudit.vocabulary import FAIRFACE_AGES, FAIRFACE_GENDERS, FAIRFACE_RACES, FAIRFACE_VOCABULARY

# The forms load_dataset accepts, in the order error messages list them.
SPEC_FORMS: dict[str, str] = {
    "fairface": "fairface:DIR[:val|train]",
    "hf": "hf:NAME[:CONFIG]:SPLIT",
    "utkface": "utkface:DIR",
    "csv": "csv:FILE",
    "synthetic": "synthetic[:N[:SEED]]",
}


def load_dataset(spec: str, *, cache_dir: Path | None = None) -> ImageDataset:
    """The dataset a SPEC names; raises DataError (one line) for anything unusable.

    ``cache_dir`` is where ``synthetic`` renders its images (default
    ``$CLIPAUDIT_CACHE_DIR`` or ``~/.cache/clipaudit``) and where image folders and ``hf:`` tables
    keep the digests of their images, so that the fingerprint of an unchanged dataset reads no
    image again.
    """
    dataset = _load_dataset(spec, cache_dir=cache_dir)
    if cache_dir is not None:
        dataset.memoise_digests(cache_dir)
    return dataset


def _load_dataset(spec: str, *, cache_dir: Path | None) -> ImageDataset:
    prefix, has_target, target = spec.partition(":")
    if prefix == "synthetic":
        from clipaudit.data.synthetic import load_synthetic_dataset, parse_synthetic_target

        count, seed = parse_synthetic_target(target if has_target else None, spec=spec)
        return load_synthetic_dataset(count, seed, spec=spec, cache_dir=cache_dir)
    if prefix not in SPEC_FORMS or not has_target:
        raise DataError(f"unknown dataset spec {spec!r}; expected one of {', '.join(SPEC_FORMS.values())}")
    if not target:
        raise DataError(f"dataset spec {spec!r} is missing its target; expected {SPEC_FORMS[prefix]}")
    if prefix == "fairface":
        from clipaudit.data.fairface import load_fairface_dataset, parse_fairface_target

        folder, split = parse_fairface_target(target)
        return load_fairface_dataset(folder, split, spec=spec)
    if prefix == "hf":
        from clipaudit.data.hub import load_hub_dataset

        return load_hub_dataset(target, spec=spec)
    if prefix == "utkface":
        from clipaudit.data.utkface import load_utkface_dataset

        return load_utkface_dataset(Path(target).expanduser(), spec=spec)
    from clipaudit.data.csvfile import load_csv_dataset

    return load_csv_dataset(Path(target).expanduser(), spec=spec)


__all__ = [
    "FAIRFACE_AGES",
    "FAIRFACE_GENDERS",
    "FAIRFACE_RACES",
    "FAIRFACE_VOCABULARY",
    "SPEC_FORMS",
    "UTKFACE_RACES",
    "UTKFACE_RACE_NOTE",
    "DataError",
    "FolderImageDataset",
    "ImageDataset",
    "UnreadableImage",
    "age_bin",
    "describe_bad_images",
    "load_dataset",
    "to_fairface_value",
]
