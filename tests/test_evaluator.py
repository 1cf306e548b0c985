"""The zero-shot evaluator: our logits are the model's, the cache never re-encodes, bad images
are named."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from clipaudit.data import load_dataset
from clipaudit.embed import embed_images, embed_texts, image_cache_folder
from clipaudit.errors import DataError, ModelError
from clipaudit.models import load_model
from clipaudit.score import class_embeddings, predictions_frame, taxonomy_prompts
from clipaudit.taxonomy import load_taxonomy
from small_taxonomies import TWO_PROBES

TAXONOMY = TWO_PROBES


@pytest.fixture()
def taxonomy(tmp_path):
    path = tmp_path / "two.yaml"
    path.write_text(TAXONOMY)
    return load_taxonomy(path)


@pytest.fixture()
def model(tiny_clip_dir, cache_dir):
    return load_model(str(tiny_clip_dir), device="cpu", dtype="fp32", cache_dir=cache_dir)


def test_scores_equal_transformers_logits_per_image(taxonomy, model, tiny_clip_dir, face_folder, cache_dir):
    from PIL import Image
    from transformers import AutoModel, AutoProcessor

    dataset = load_dataset(f"csv:{face_folder / 'labels.csv'}", cache_dir=cache_dir)
    images = embed_images(model, dataset, cache_dir=cache_dir, batch_size=16, progress=False)
    prompts = [p for probe in taxonomy.probes for c in probe.classes for p in taxonomy.prompts_for(probe, c)]
    texts = embed_texts(model, prompts, cache_dir=cache_dir)
    attributes = dataset.frame.iloc[images.rows][["image_id", *dataset.attributes]]
    predictions = predictions_frame(taxonomy, attributes, images.embeddings, texts, model.info)

    reference_model = AutoModel.from_pretrained(tiny_clip_dir).eval()
    processor = AutoProcessor.from_pretrained(tiny_clip_dir)
    pictures = [Image.open(face_folder / image_id).convert("RGB") for image_id in dataset.frame["image_id"][:12]]
    for probe in taxonomy.probes:
        probe_prompts = [taxonomy.prompts_for(probe, c)[0] for c in probe.classes]
        inputs = processor(text=probe_prompts, images=pictures, return_tensors="pt", padding=True)
        with torch.no_grad():
            expected = reference_model(**inputs).logits_per_image.numpy()
        ours = np.stack(predictions[predictions["probe"] == probe.id]["scores"].to_numpy()[:12])
        np.testing.assert_allclose(ours, expected, atol=1e-5, rtol=0)
        rows = predictions[predictions["probe"] == probe.id][:12]
        assert list(rows["prediction"]) == [probe.class_ids()[i] for i in expected.argmax(axis=1)]


def test_several_prompts_average_normalised_embeddings(taxonomy, model, cache_dir):
    probe = taxonomy.probe("gender")
    texts = {
        "a photo of a man.": np.array([1.0, 0.0], np.float32),
        "a photo of a woman.": np.array([0.6, 0.8], np.float32),
    }
    vectors = class_embeddings(taxonomy, probe, texts)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)

    from dataclasses import replace

    ensemble_class = replace(probe.classes[0], prompts=("a photo of a man.", "a photo of a woman."))
    ensemble_probe = replace(probe, classes=(ensemble_class, probe.classes[1]))
    averaged = class_embeddings(taxonomy, ensemble_probe, texts)[0]
    mean = (texts["a photo of a man."] + texts["a photo of a woman."]) / 2
    np.testing.assert_allclose(averaged, mean / np.linalg.norm(mean), atol=1e-6)


def test_second_run_reads_images_from_cache(model, face_folder, cache_dir, monkeypatch):
    dataset = load_dataset(f"csv:{face_folder / 'labels.csv'}", cache_dir=cache_dir)
    first = embed_images(model, dataset, cache_dir=cache_dir, progress=False)
    assert not first.from_cache
    assert list(image_cache_folder(cache_dir, model.info, dataset.image_ids_key).glob("rows-*.npz"))

    def no_encoding(*args, **kwargs):
        raise AssertionError("an image was encoded although the cache holds it")

    monkeypatch.setattr(model, "image_features", no_encoding)  # every image path goes through it
    second = embed_images(model, dataset, cache_dir=cache_dir, progress=False)
    assert second.from_cache
    np.testing.assert_array_equal(first.embeddings, second.embeddings)


def test_text_embeddings_are_cached_per_prompt(model, cache_dir, monkeypatch):
    first = embed_texts(model, ["a photo of a man.", "a photo of a cat."], cache_dir=cache_dir)
    encoded: list[list[str]] = []
    original = model.encode_texts
    monkeypatch.setattr(model, "encode_texts", lambda prompts: encoded.append(prompts) or original(prompts))
    second = embed_texts(model, ["a photo of a cat.", "a photo of a dog."], cache_dir=cache_dir)
    assert encoded == [["a photo of a dog."]]
    np.testing.assert_array_equal(first["a photo of a cat."], second["a photo of a cat."])


def test_changed_weights_change_the_cache_key(tiny_clip_dir, tmp_path, cache_dir):
    from clipaudit.demo.tiny_clip import build_tiny_clip

    other_dir = build_tiny_clip(tmp_path / "other", seed=2)
    first = load_model(str(tiny_clip_dir), device="cpu", dtype="fp32", cache_dir=cache_dir)
    second = load_model(str(other_dir), device="cpu", dtype="fp32", cache_dir=cache_dir)
    assert first.info.weights_sha256 != second.info.weights_sha256
    assert image_cache_folder(cache_dir, first.info, "d") != image_cache_folder(cache_dir, second.info, "d")


class _NotToBeCalled:
    """A model whose encoders must not run (the check happens before encoding)."""

    def __init__(self, model):
        self.info = model.info

    def __getattr__(self, name):
        raise AssertionError(f"the model's {name} was used before the bad images were reported")


def test_unreadable_images_are_named_or_skipped(model, face_folder, tmp_path, cache_dir):
    import shutil

    root = tmp_path / "broken"
    shutil.copytree(face_folder, root)
    (root / "img" / "0000.jpg").unlink()
    (root / "img" / "0001.jpg").write_text("not an image")
    spec = f"csv:{root / 'labels.csv'}"
    # A missing file is seen by its stat, before encoding anything (and before any other image is read).
    with pytest.raises(DataError, match=r"1 image cannot be read: img/0000\.jpg \(missing\); fix them"):
        embed_images(_NotToBeCalled(model), load_dataset(spec, cache_dir=cache_dir), cache_dir=cache_dir,
                     progress=False)
    skipped = embed_images(model, load_dataset(spec, cache_dir=cache_dir), cache_dir=cache_dir,
                           skip_bad_images=True, progress=False)
    assert sorted(skipped.bad_images) == [("img/0000.jpg", "missing"), ("img/0001.jpg", "not an image")]
    assert len(skipped.rows) == 84 - 2
    # Cached: every bad image is named again from the shards, each with its reason.
    with pytest.raises(DataError, match=r"2 images cannot be read: img/0000\.jpg \(missing\), img/0001\.jpg "
                                        r"\(not an image\)"):
        embed_images(_NotToBeCalled(model), load_dataset(spec, cache_dir=cache_dir), cache_dir=cache_dir,
                     progress=False)


def test_a_cold_run_finds_a_file_that_is_no_image_while_encoding(model, face_folder, tmp_path):
    import shutil

    root, cache_dir = tmp_path / "broken", tmp_path / "cache"
    shutil.copytree(face_folder, root)
    (root / "img" / "0001.jpg").write_bytes(b"\xff\xd8\xff truncated")
    dataset = load_dataset(f"csv:{root / 'labels.csv'}", cache_dir=cache_dir)
    with pytest.raises(DataError, match=r"1 image cannot be read: img/0001\.jpg \(not an image\); fix them"):
        embed_images(model, dataset, cache_dir=cache_dir, progress=False)


def test_missing_model_folder_is_a_model_error(tmp_path, cache_dir):
    with pytest.raises(ModelError, match="does not exist"):
        load_model(str(tmp_path / "no-such-model"), device="cpu", cache_dir=cache_dir)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="cannot load model"):
        load_model(str(tmp_path / "empty"), device="cpu", cache_dir=cache_dir)


def test_cuda_without_a_gpu_is_refused(tiny_clip_dir, cache_dir):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ModelError, match="no CUDA GPU"):
        load_model(str(tiny_clip_dir), device="cuda", cache_dir=cache_dir)


def test_decoding_in_dataloader_workers_gives_the_same_embeddings(model, face_folder, tmp_path):
    dataset = load_dataset(f"csv:{face_folder / 'labels.csv'}", cache_dir=tmp_path / "a")
    in_process = embed_images(model, dataset, cache_dir=tmp_path / "a", num_workers=0, batch_size=32, progress=False)
    in_workers = embed_images(model, dataset, cache_dir=tmp_path / "b", num_workers=2, batch_size=32, progress=False)
    np.testing.assert_array_equal(in_process.rows, in_workers.rows)
    np.testing.assert_allclose(in_process.embeddings, in_workers.embeddings, atol=1e-6)


def test_siglip_models_keep_their_bias_and_sigmoid(tiny_siglip_dir, face_folder, cache_dir, taxonomy):
    from PIL import Image
    from transformers import AutoModel, AutoProcessor

    siglip = load_model(str(tiny_siglip_dir), device="cpu", dtype="fp32", cache_dir=cache_dir)
    assert siglip.info.activation == "sigmoid"
    assert siglip.info.logit_bias == pytest.approx(-2.5)
    dataset = load_dataset(f"csv:{face_folder / 'labels.csv'}", cache_dir=cache_dir)
    images = embed_images(siglip, dataset, cache_dir=cache_dir, progress=False)
    probe = taxonomy.probe("denigration")
    prompts = [taxonomy.prompts_for(probe, c)[0] for c in probe.classes]
    texts = embed_texts(siglip, taxonomy_prompts(taxonomy), cache_dir=cache_dir)
    attributes = dataset.frame.iloc[images.rows][["image_id", *dataset.attributes]]
    predictions = predictions_frame(taxonomy, attributes, images.embeddings, texts, siglip.info)
    ours = np.stack(predictions[predictions["probe"] == "denigration"]["scores"].to_numpy()[:6])

    reference = AutoModel.from_pretrained(tiny_siglip_dir).eval()
    processor = AutoProcessor.from_pretrained(tiny_siglip_dir)
    pictures = [Image.open(face_folder / image_id).convert("RGB") for image_id in dataset.frame["image_id"][:6]]
    inputs = processor(text=prompts, images=pictures, return_tensors="pt", padding="max_length", max_length=16)
    with torch.no_grad():
        expected = reference(**inputs).logits_per_image.numpy()
    np.testing.assert_allclose(ours, expected, atol=1e-5, rtol=0)
