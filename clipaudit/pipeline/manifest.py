"""The provenance of a run that encoded images: the same manifest for an audit and a sweep."""
from __future__ import annotations

from clipaudit.pipeline.inputs import AuditInputs
from clipaudit.pipeline.options import AuditOptions

SKIPPED_IMAGES_LISTED = 100


def run_manifest(inputs: AuditInputs, images, *, data: str, options: AuditOptions) -> dict:
    """Model, dataset (with the images skipped and why), device, dtype, seed, batching, cache, warnings."""
    dataset = inputs.dataset
    return {
        "model": inputs.model_manifest,
        "dataset": {
            "spec": data,
            "fingerprint": dataset.fingerprint,
            "n_images": len(dataset),
            "n_used": int(len(images.rows)),
            "n_skipped": len(images.bad_images),
            "skipped_images": [
                {"image_id": image_id, "reason": reason}
                for image_id, reason in images.bad_images[:SKIPPED_IMAGES_LISTED]
            ],
            "attributes": list(dataset.attributes),
        },
        "device": inputs.model.info.device,
        "dtype": inputs.model.info.dtype,
        "seed": options.seed,
        "batch_size": inputs.batching.batch_size,
        "num_workers": inputs.batching.num_workers,
        "compile": options.compile,
        "notes": list(options.notes),
        "image_embeddings_from_cache": images.from_cache,
        "images_encoded": images.images_encoded,
        "images_from_cache": images.images_from_cache,
        "model_loaded": inputs.model.loaded,
        "warnings": inputs.warnings,
        "alerts": inputs.alerts,
    }


def rounded_timings(timings: dict[str, float]) -> dict[str, float]:
    """Seconds per stage, to the millisecond, as every manifest records them."""
    return {name: round(seconds, 3) for name, seconds in timings.items()}
