"""The encoding loop: the uint8 worker path gives the predictions the per-image processor path gave,
bad images are still named, workers work, reduced precision stays close to fp32, and the choices
made for the user (batch size, workers, attention, torch.compile) are the documented ones."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from clipaudit.data import load_dataset
from clipaudit.embed.batching import choose_batching
from clipaudit.embed.encoder import encode_rows, normalised
from clipaudit.models import load_model
from clipaudit.models.demo import DEMO_MODEL_SPEC
from clipaudit.vocabulary import FAIRFACE_VOCABULARY

PROMPTS = [f"a photo of a {race.replace('_', ' ')} person." for race in FAIRFACE_VOCABULARY["race"]]
# bf16 keeps 8 bits of mantissa: the demo model's logits (logit scale 14.2 on unit vectors) move by a
# few hundredths (0.064 at most on 200 synthetic faces, every prediction the same), and predictions
# flip only where two classes are within that of each other.
BF16_MAX_LOGIT_DIFFERENCE = 0.15
BF16_MIN_SAME_PREDICTIONS = 0.95


@pytest.fixture(scope="module")
def faces(face_folder, tmp_path_factory):
    return load_dataset(f"csv:{face_folder / 'labels.csv'}", cache_dir=tmp_path_factory.mktemp("cache"))


def _logits(model, embeddings: np.ndarray) -> np.ndarray:
    texts = normalised(model.encode_texts(PROMPTS).numpy())
    return model.info.logit_scale * embeddings @ texts.T + model.info.logit_bias


def _processor_path(model, dataset, rows, batch_size: int) -> np.ndarray:
    """The path before the split: the image processor on each image, then the tower per batch."""
    chunks = []
    for start in range(0, len(rows), batch_size):
        pixels = torch.stack([model.preprocess(dataset.open_image(row)) for row in rows[start : start + batch_size]])
        chunks.append(normalised(model.encode_images(pixels).numpy()))
    return np.concatenate(chunks)


@pytest.mark.parametrize("spec", ["tiny", DEMO_MODEL_SPEC])
def test_predictions_equal_the_processor_path(spec, tiny_clip_dir, faces, cache_dir):
    model = load_model(str(tiny_clip_dir) if spec == "tiny" else spec, device="cpu", dtype="fp32", cache_dir=cache_dir)
    assert model.pixel_spec is not None
    rows = list(range(len(faces)))
    read, embeddings, bad, _ = encode_rows(model, faces, rows, batch_size=32, num_workers=0, progress=False)
    expected = _processor_path(model, faces, rows, batch_size=32)
    assert read.tolist() == rows and bad == []
    np.testing.assert_allclose(embeddings, expected, atol=1e-6)
    ours, theirs = _logits(model, embeddings), _logits(model, expected)
    assert (ours.argmax(1) == theirs.argmax(1)).all()


def test_workers_give_the_same_embeddings_across_chunk_boundaries(tiny_clip_dir, faces, cache_dir):
    model = load_model(str(tiny_clip_dir), device="cpu", dtype="fp32", cache_dir=cache_dir)
    rows = list(range(3, len(faces), 2))  # a subset, as a shard of the cache asks for
    in_process = encode_rows(model, faces, rows, batch_size=7, num_workers=0, progress=False)
    in_workers = encode_rows(model, faces, rows, batch_size=7, num_workers=2, progress=False)
    assert in_process[0].tolist() == in_workers[0].tolist() == rows
    np.testing.assert_allclose(in_process[1], in_workers[1], atol=1e-6)
    assert in_process.digests == in_workers.digests, "the workers hash the bytes they decode"


def test_the_cpu_threads_lent_to_workers_are_given_back(tiny_clip_dir, faces, cache_dir):
    model = load_model(str(tiny_clip_dir), device="cpu", dtype="fp32", cache_dir=cache_dir)
    threads = torch.get_num_threads()
    encode_rows(model, faces, range(8), batch_size=4, num_workers=1, progress=False)
    assert torch.get_num_threads() == threads


@pytest.mark.parametrize("num_workers", [0, 1])
def test_unreadable_images_are_reported_each_with_its_reason(num_workers, tiny_clip_dir, cache_dir, tmp_path):
    names = ["a.png", "broken.jpg", "b.png", "missing.png", "c.png"]
    for name in ("a.png", "b.png", "c.png"):
        Image.new("RGB", (40, 30), (len(name) * 20, 90, 150)).save(tmp_path / name)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 64)
    (tmp_path / "labels.csv").write_text("file,kind\n" + "".join(f"{name},x\n" for name in names))
    dataset = load_dataset(f"csv:{tmp_path / 'labels.csv'}", cache_dir=cache_dir)
    model = load_model(str(tiny_clip_dir), device="cpu", dtype="fp32", cache_dir=cache_dir)
    read, embeddings, bad, _ = encode_rows(model, dataset, range(5), batch_size=2, num_workers=num_workers, progress=False)
    assert read.tolist() == [0, 2, 4] and embeddings.shape[0] == 3
    assert [image_id for image_id, _ in bad] == ["broken.jpg", "missing.png"]
    assert bad[1][1] == "missing"
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1, atol=1e-5)


def test_no_readable_image_gives_an_empty_result(tiny_clip_dir, cache_dir, tmp_path):
    (tmp_path / "labels.csv").write_text("file,kind\nmissing.png,x\n")
    dataset = load_dataset(f"csv:{tmp_path / 'labels.csv'}", cache_dir=cache_dir)
    model = load_model(str(tiny_clip_dir), device="cpu", dtype="fp32", cache_dir=cache_dir)
    read, embeddings, bad, _ = encode_rows(model, dataset, [0], batch_size=4, num_workers=0, progress=False)
    assert read.dtype == np.int64 and len(read) == 0 and embeddings.shape[0] == 0 and bad == [("missing.png", "missing")]


def test_bf16_logits_stay_close_to_fp32(faces, cache_dir):
    rows = list(range(len(faces)))
    logits = {}
    for dtype in ("fp32", "bf16"):
        model = load_model(DEMO_MODEL_SPEC, device="cpu", dtype=dtype, cache_dir=cache_dir)
        _, embeddings, _, _ = encode_rows(model, faces, rows, batch_size=64, num_workers=0, progress=False)
        logits[dtype] = _logits(model, embeddings)
    difference = np.abs(logits["bf16"] - logits["fp32"]).max()
    same = np.mean(logits["bf16"].argmax(1) == logits["fp32"].argmax(1))
    assert difference <= BF16_MAX_LOGIT_DIFFERENCE, difference
    assert same >= BF16_MIN_SAME_PREDICTIONS, same


def test_models_load_with_scaled_dot_product_attention(tiny_clip_dir, cache_dir):
    model = load_model(str(tiny_clip_dir), device="cpu", dtype="fp32", cache_dir=cache_dir)
    assert model.info.attention == "sdpa" and model.model.config._attn_implementation == "sdpa"


def test_compile_runs_the_tower_through_torch_compile_with_one_batch_shape(tiny_clip_dir, faces, cache_dir, monkeypatch):
    shapes = []

    def fake_compile(function, **options):
        assert options == {"dynamic": False}

        def compiled(pixel_values):
            shapes.append(tuple(pixel_values.shape))
            return function(pixel_values)
        return compiled

    monkeypatch.setattr(torch, "compile", fake_compile)
    model = load_model(str(tiny_clip_dir), device="cpu", dtype="fp32", cache_dir=cache_dir, compile=True)
    assert model.compiled
    rows = list(range(20))
    read, embeddings, _, _ = encode_rows(model, faces, rows, batch_size=8, num_workers=0, progress=False)
    assert {shape[0] for shape in shapes} == {8}  # the last batch of 4 was padded, not recompiled
    np.testing.assert_allclose(embeddings, _processor_path(model, faces, rows, batch_size=8), atol=1e-6)


class _FakeGpuModel:
    """Only the model's info is read, so a model whose embeddings are all cached is never loaded for this."""

    def __init__(self, image_tokens):
        from types import SimpleNamespace

        self.info = SimpleNamespace(device="cuda", image_tokens=image_tokens)


@pytest.mark.parametrize("tokens, free_gib, expected", [(577, 100, 256), (50, 100, 1024), (197, 100, 512),
                                                        (577, 2, 32)])
def test_gpu_batch_size_follows_the_model_and_free_memory(tokens, free_gib, expected, monkeypatch):
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (free_gib * 2**30, 141 * 2**30))
    batching = choose_batching(_FakeGpuModel(tokens), batch_size=None, num_workers=None, cpus=16)
    assert batching.batch_size == expected and batching.num_workers == 14
    assert batching.batch_size_chosen and batching.num_workers_chosen


def test_cpu_batching_and_choices_given_by_the_user(tiny_clip_dir, cache_dir):
    model = load_model(str(tiny_clip_dir), device="cpu", dtype="fp32", cache_dir=cache_dir)
    for cpus, workers in ((2, 1), (1, 0), (32, 1)):
        chosen = choose_batching(model, batch_size=None, num_workers=None, cpus=cpus)
        assert (chosen.batch_size, chosen.num_workers) == (64, workers)
    given = choose_batching(model, batch_size=5, num_workers=0, cpus=8)
    assert (given.batch_size, given.num_workers, given.batch_size_chosen, given.num_workers_chosen) == (5, 0, False, False)


def test_the_command_line_leaves_batching_to_clipaudit_unless_told(tmp_path):
    from clipaudit.cli.commands import _run_options
    from clipaudit.cli.parser import build_parser

    common = ["audit", "--taxonomy", "clip_denigration", "--data", "synthetic", "--model", "demo", "--out", str(tmp_path)]
    default = _run_options(build_parser().parse_args(common))
    assert (default.batch_size, default.num_workers, default.compile) == (None, None, False)
    told = _run_options(build_parser().parse_args([*common, "--batch-size", "8", "--num-workers", "0", "--compile"]))
    assert (told.batch_size, told.num_workers, told.compile) == (8, 0, True)


def test_the_manifest_records_the_batching_that_ran(tiny_clip_dir, face_folder, tmp_path):
    from clipaudit.audit import AuditOptions, run_audit
    from clipaudit.pipeline.options import available_cpus
    from clipaudit.taxonomy import load_taxonomy

    run = run_audit(taxonomy=load_taxonomy("clip_denigration"), data=f"csv:{face_folder / 'labels.csv'}",
                    model=str(tiny_clip_dir), options=AuditOptions(device="cpu", cache_dir=tmp_path, progress=False))
    manifest = run.results["manifest"]
    assert (manifest["batch_size"], manifest["num_workers"]) == (64, 1 if available_cpus() > 1 else 0)
    assert manifest["model"]["attention"] == "sdpa" and manifest["compile"] is False
    assert manifest["model"]["image_tokens"] == (64 // 16) ** 2 + 1  # the tiny CLIP's 4 x 4 patches + class token
