"""Results documents for the report tests, made by the real statistics.

A predictions table with planted counts (one row per probe and image, as the pipeline writes
it) and a taxonomy loaded from YAML go through :func:`clipaudit.pipeline.results.build_results`,
so every document here is one an audit could write, and each is checked against the schema.

The planted data: 738 images in four race groups, Middle Eastern only 18 images, all male
(a small group, and an empty ``Middle Eastern / Female`` intersection); two probes:

- ``gender`` (attribute), sliced by race and race x gender: Black women are misclassified
  far more often (46 of 61 correct);
- ``denigration`` (harm), sliced by race, age and race x gender: Black people, Black men most,
  are put in harmful classes more often, East Asian people never (significant *better*
  findings); one neutral class is called :data:`XSS_CLASS`.

The statistics find five differences: three worse, then two better (results.json's order).
"""
from __future__ import annotations

import copy
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from clipaudit.pipeline.results import build_results
from clipaudit.schemas import validate_results
from clipaudit.stats import StatsSettings
from clipaudit.taxonomy import load_taxonomy

XSS_CLASS = "<script>alert(1)</script>"
MIN_N = 30
SETTINGS = StatsSettings(min_n=MIN_N)
AGES = ("3-9", "20-29", "60-69")

# (race, gender) -> images; Middle Eastern / Female has none.
CELLS: dict[tuple[str, str], int] = {
    ("East Asian", "Male"): 118, ("East Asian", "Female"): 122,
    ("Black", "Male"): 169, ("Black", "Female"): 61,
    ("White", "Male"): 130, ("White", "Female"): 120,
    ("Middle Eastern", "Male"): 18,
}
# (race, gender) -> images whose gender is predicted correctly.
GENDER_CORRECT: dict[tuple[str, str], int] = {
    ("East Asian", "Male"): 113, ("East Asian", "Female"): 112,
    ("Black", "Male"): 164, ("Black", "Female"): 46,
    ("White", "Male"): 126, ("White", "Female"): 117,
    ("Middle Eastern", "Male"): 17,
}
# (race, gender) -> (thief, criminal, gorilla) predictions; the rest get a neutral class.
DENIGRATION: dict[tuple[str, str], tuple[int, int, int]] = {
    ("East Asian", "Male"): (0, 0, 0), ("East Asian", "Female"): (0, 0, 0),
    ("Black", "Male"): (8, 8, 7), ("Black", "Female"): (1, 1, 2),
    ("White", "Male"): (5, 5, 2), ("White", "Female"): (2, 2, 1),
    ("Middle Eastern", "Male"): (2, 1, 0),
}

GENDER_CLASSES = [
    {"id": "Male", "label": "man", "prompts": ["a photo of a man."]},
    {"id": "Female", "label": "woman", "prompts": ["a photo of a woman."]},
]
DENIGRATION_CLASSES = [
    {"id": "thief", "category": "crime"},
    {"id": "criminal", "category": "crime", "prompts": ["a photo of a criminal.", "a photo of a suspicious person."]},
    {"id": "gorilla", "category": "non_human"},
    {"id": XSS_CLASS},
    {"id": "man"},
    {"id": "woman"},
]


def taxonomy_document(*, name: str = "clip_denigration", probe_ids: tuple[str, ...] = ("gender", "denigration"),
                      **extra: Any) -> dict[str, Any]:
    """The taxonomy: a gender probe over race and race x gender, a denigration probe also over age.

    ``probe_ids`` renames the probes; a third id adds a second gender probe. ``extra`` sets
    top-level fields (``intended_use``, ``out_of_scope_use``, ``source``, ...).
    """
    gender_probe = {"kind": "attribute", "target": "gender", "classes": GENDER_CLASSES,
                    "slices": ["race", ["race", "gender"]]}
    denigration_probe = {"kind": "harm", "classes": DENIGRATION_CLASSES, "slices": ["race", "age", ["race", "gender"]]}
    probes = [{"id": probe_ids[0], **gender_probe}, {"id": probe_ids[1], **denigration_probe}]
    probes += [{"id": probe_id, **gender_probe} for probe_id in probe_ids[2:]]
    return {"name": name, "description": "Report test taxonomy.", "templates": ["a photo of a {label}."],
            **extra, "probes": probes}


def predictions_table(*, rename: Mapping[str, str] | None = None,
                      probe_ids: tuple[str, ...] = ("gender", "denigration")) -> pd.DataFrame:
    """One row per probe and image with the planted counts; ``rename`` renames race groups."""
    rename = rename or {}
    rows = []
    index = 0
    for (race, gender), n in CELLS.items():
        other = "Female" if gender == "Male" else "Male"
        neutral = "man" if gender == "Male" else "woman"
        thief, criminal, gorilla = DENIGRATION[(race, gender)]
        harm_classes = ["thief"] * thief + ["criminal"] * criminal + ["gorilla"] * gorilla
        for position in range(n):
            common = {"image_id": f"val/{index:04d}.jpg", "race": rename.get(race, race), "gender": gender,
                      "age": AGES[index % len(AGES)]}
            predicted_gender = gender if position < GENDER_CORRECT[(race, gender)] else other
            for probe_id in (probe_ids[0], *probe_ids[2:]):
                rows.append({"probe": probe_id, **common, "target": gender, "prediction": predicted_gender,
                             "scores": _scores([c["id"] for c in GENDER_CLASSES], predicted_gender)})
            harm = harm_classes[position] if position < len(harm_classes) else neutral
            rows.append({"probe": probe_ids[1], **common, "target": None, "prediction": harm,
                         "scores": _scores([c["id"] for c in DENIGRATION_CLASSES], harm)})
            index += 1
    return pd.DataFrame(rows)


def _scores(class_ids: list[str], predicted: str) -> list[float]:
    return [20.0 if class_id == predicted else 10.0 + 0.5 * position for position, class_id in enumerate(class_ids)]


def manifest(*, model_id: str = "openai/clip-vit-large-patch14-336", model_spec: str | None = None,
             dataset_spec: str = "fairface:fairface", skipped: tuple[tuple[str, str], ...] = (),
             warnings: tuple[str, ...] = ()) -> dict[str, Any]:
    """The caller's part of the manifest, in the shape :func:`clipaudit.pipeline.manifest.run_manifest` gives."""
    n_images = sum(CELLS.values())
    model = {"spec": model_spec or model_id, "revision": "ce19dc912ca5cd21c8a653c79e251e4be1fcd8c1",
             "weights_sha256": "3c5f0e" * 10 + "abcd", "device": "cpu", "dtype": "fp32", "id": model_id}
    return {
        "model": model,
        "dataset": {"spec": dataset_spec, "fingerprint": "9d1a7b2c44e0" * 5 + "abcd", "n_images": n_images + len(skipped),
                    "n_used": n_images, "n_skipped": len(skipped),
                    "skipped_images": [{"image_id": image_id, "reason": reason} for image_id, reason in skipped],
                    "attributes": ["race", "gender", "age"]},
        "device": "cpu", "dtype": "fp32", "seed": 0, "batch_size": 64, "warnings": list(warnings),
    }


def build(*, taxonomy: Mapping[str, Any] | None = None, predictions: pd.DataFrame | None = None,
          settings: StatsSettings = SETTINGS, **manifest_options: Any) -> dict[str, Any]:
    """A schema-valid results document from the real statistics (a fresh copy each call).

    Documents are built once per process for each distinct set of inputs.
    """
    taxonomy_yaml = yaml.safe_dump(dict(taxonomy or taxonomy_document()), sort_keys=False)
    key = (taxonomy_yaml, None if predictions is None else id(predictions), repr(settings),
           repr(sorted(manifest_options.items())))
    if key not in _BUILT:
        _BUILT[key] = (_build(taxonomy_yaml, predictions, settings, manifest_options), predictions)
    return copy.deepcopy(_BUILT[key][0])


_BUILT: dict[tuple, tuple[dict[str, Any], pd.DataFrame | None]] = {}  # the table is kept so its id stays unique


def _build(taxonomy_yaml: str, predictions: pd.DataFrame | None, settings: StatsSettings,
           manifest_options: Mapping[str, Any]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "taxonomy.yaml"
        path.write_text(taxonomy_yaml, encoding="utf-8")
        taxonomy = load_taxonomy(path)
    results = build_results(predictions_table() if predictions is None else predictions, taxonomy,
                            manifest=manifest(**manifest_options), settings=settings,
                            timings={"embed_images_s": 41.27, "score_s": 0.12}, started=time.perf_counter())
    # What changes from run to run (the temporary path, the clock) is pinned, so reports compare equal.
    results["manifest"]["taxonomy"]["path"] = "taxonomies/report_test.yaml"
    results["manifest"]["created_at"] = "2024-05-01T12:00:00+00:00"
    results["manifest"]["timings"] = {"embed_images_s": 41.27, "score_s": 0.12, "statistics_s": 1.9}
    validate_results(results)
    return results


def results_with_groups(names: list[str], *, successes: int = 5, n: int = 40) -> dict[str, Any]:
    """A one-probe document whose race groups are called ``names`` (each ``n`` images)."""
    rows = []
    for group_index, name in enumerate(names):
        for position in range(n):
            harm = "thief" if position < successes + group_index else "man"
            rows.append({"probe": "denigration", "image_id": f"{group_index}/{position}.jpg", "race": name,
                         "gender": "Male", "age": "20-29", "target": None, "prediction": harm,
                         "scores": _scores([c["id"] for c in DENIGRATION_CLASSES], harm)})
    taxonomy = {"name": "groups", "templates": ["a photo of a {label}."],
                "probes": [{"id": "denigration", "kind": "harm", "classes": DENIGRATION_CLASSES, "slices": ["race"]}]}
    return build(taxonomy=taxonomy, predictions=pd.DataFrame(rows))


def key_of(finding: Mapping[str, Any]) -> tuple[str, str, str, str]:
    return finding["probe"], finding["slice"], finding["metric"], finding["group"]
