"""open_clip checkpoints without open_clip: a ViT CLIP in the OpenAI layout, converted into transformers.

The checkpoint is made here from random tensors of the layout's shapes. Its embeddings are checked
against a forward pass written in this file from the layout's own definition (openai/CLIP
``model.py``): packed in-projection attention, pre-norm residual blocks, QuickGELU or GELU,
class token, ``ln_post`` then ``proj``; causal text tower pooled at the highest token id.
"""
from __future__ import annotations

import json
from pathlib import Path
import os
import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file

from clipaudit.cli import main
from clipaudit.errors import ModelError
from clipaudit.models import load_model

VISION = {"width": 64, "layers": 2, "patch_size": 8, "image_size": 32, "head_width": 32}
TEXT = {"width": 48, "layers": 2, "heads": 3}
EMBED_DIM = 24


def openai_layout_state(vocab_size: int, context_length: int, *, seed: int) -> dict[str, torch.Tensor]:
    """Random weights with every tensor of a ViT CLIP in the OpenAI layout, at a tiny size."""
    generator = torch.Generator().manual_seed(seed)

    def normal(*shape: int, scale: float = 0.05) -> torch.Tensor:
        return torch.randn(*shape, generator=generator) * scale

    def norm(prefix: str, width: int) -> dict[str, torch.Tensor]:
        return {f"{prefix}.weight": 1 + normal(width, scale=0.1), f"{prefix}.bias": normal(width, scale=0.1)}

    def blocks(prefix: str, width: int, layers: int) -> dict[str, torch.Tensor]:
        state = {}
        for index in range(layers):
            block = f"{prefix}.{index}"
            state.update({f"{block}.attn.in_proj_weight": normal(3 * width, width),
                          f"{block}.attn.in_proj_bias": normal(3 * width),
                          f"{block}.attn.out_proj.weight": normal(width, width),
                          f"{block}.attn.out_proj.bias": normal(width),
                          f"{block}.mlp.c_fc.weight": normal(4 * width, width), f"{block}.mlp.c_fc.bias": normal(4 * width),
                          f"{block}.mlp.c_proj.weight": normal(width, 4 * width), f"{block}.mlp.c_proj.bias": normal(width),
                          **norm(f"{block}.ln_1", width), **norm(f"{block}.ln_2", width)})
        return state

    width, patch, grid = VISION["width"], VISION["patch_size"], VISION["image_size"] // VISION["patch_size"]
    state = {"visual.conv1.weight": normal(width, 3, patch, patch), "visual.class_embedding": normal(width),
             "visual.positional_embedding": normal(grid * grid + 1, width), **norm("visual.ln_pre", width),
             **blocks("visual.transformer.resblocks", width, VISION["layers"]), **norm("visual.ln_post", width),
             "visual.proj": normal(width, EMBED_DIM, scale=0.2),
             "token_embedding.weight": normal(vocab_size, TEXT["width"]),
             "positional_embedding": normal(context_length, TEXT["width"]),
             **blocks("transformer.resblocks", TEXT["width"], TEXT["layers"]), **norm("ln_final", TEXT["width"]),
             "text_projection": normal(TEXT["width"], EMBED_DIM, scale=0.2),
             "logit_scale": torch.tensor(math.log(1 / 0.07))}
    return state


@pytest.fixture(scope="module", params=[True, False], ids=["quick_gelu", "gelu"])
def checkpoint(request, tmp_path_factory, tiny_clip_dir):
    """A folder as open_clip's Hub repositories lay it out: weights, open_clip_config.json, tokenizer."""
    from transformers import CLIPTokenizerFast

    folder = tmp_path_factory.mktemp("open_clip")
    tokenizer = CLIPTokenizerFast.from_pretrained(tiny_clip_dir)
    tokenizer.save_pretrained(folder)
    context_length = tokenizer.model_max_length
    state = openai_layout_state(len(tokenizer), context_length, seed=7)
    save_file(state, str(folder / "open_clip_model.safetensors"))
    config = {"model_cfg": {"embed_dim": EMBED_DIM, "quick_gelu": request.param,
                            "vision_cfg": {key: VISION[key] for key in ("image_size", "layers", "width", "patch_size",
                                                                         "head_width")},
                            "text_cfg": {"context_length": context_length, "vocab_size": len(tokenizer), **TEXT}},
              "preprocess_cfg": {"mean": [0.48145466, 0.4578275, 0.40821073],
                                 "std": [0.26862954, 0.26130258, 0.27577711]}}
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    return folder / "open_clip_model.safetensors", state, request.param, tokenizer


# --- the reference: the layout's own forward pass -------------------------------------------


def _block(x, state, prefix, heads, quick_gelu, mask=None):
    width = x.shape[-1]
    y = F.layer_norm(x, (width,), state[f"{prefix}.ln_1.weight"], state[f"{prefix}.ln_1.bias"], eps=1e-5)
    attended, _ = F.multi_head_attention_forward(
        y.transpose(0, 1), y.transpose(0, 1), y.transpose(0, 1), width, heads,
        state[f"{prefix}.attn.in_proj_weight"], state[f"{prefix}.attn.in_proj_bias"], None, None, False, 0.0,
        state[f"{prefix}.attn.out_proj.weight"], state[f"{prefix}.attn.out_proj.bias"], need_weights=False,
        attn_mask=mask)
    x = x + attended.transpose(0, 1)
    y = F.layer_norm(x, (width,), state[f"{prefix}.ln_2.weight"], state[f"{prefix}.ln_2.bias"], eps=1e-5)
    y = F.linear(y, state[f"{prefix}.mlp.c_fc.weight"], state[f"{prefix}.mlp.c_fc.bias"])
    y = y * torch.sigmoid(1.702 * y) if quick_gelu else F.gelu(y)
    return x + F.linear(y, state[f"{prefix}.mlp.c_proj.weight"], state[f"{prefix}.mlp.c_proj.bias"])


def reference_image_features(state, pixels, quick_gelu):
    width = VISION["width"]
    x = F.conv2d(pixels, state["visual.conv1.weight"], stride=VISION["patch_size"]).flatten(2).transpose(1, 2)
    x = torch.cat([state["visual.class_embedding"].expand(x.shape[0], 1, width), x], dim=1)
    x = x + state["visual.positional_embedding"]
    x = F.layer_norm(x, (width,), state["visual.ln_pre.weight"], state["visual.ln_pre.bias"], eps=1e-5)
    for index in range(VISION["layers"]):
        x = _block(x, state, f"visual.transformer.resblocks.{index}", width // VISION["head_width"], quick_gelu)
    x = F.layer_norm(x[:, 0], (width,), state["visual.ln_post.weight"], state["visual.ln_post.bias"], eps=1e-5)
    return x @ state["visual.proj"]


def reference_text_features(state, input_ids, quick_gelu):
    length = input_ids.shape[1]
    x = state["token_embedding.weight"][input_ids] + state["positional_embedding"][:length]
    causal = torch.full((length, length), float("-inf")).triu(1)
    for index in range(TEXT["layers"]):
        x = _block(x, state, f"transformer.resblocks.{index}", TEXT["heads"], quick_gelu, mask=causal)
    x = F.layer_norm(x, (TEXT["width"],), state["ln_final.weight"], state["ln_final.bias"], eps=1e-5)
    return x[torch.arange(x.shape[0]), input_ids.argmax(dim=-1)] @ state["text_projection"]


# --- the tests -------------------------------------------------------------------------------


def _images():
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (40 + 8 * i, 48, 3), dtype=np.uint8)) for i in range(3)]


def test_converted_checkpoint_gives_the_layouts_own_embeddings(checkpoint, tmp_path):
    path, state, quick_gelu, tokenizer = checkpoint
    model = load_model(f"open_clip:tiny:{path}", device="cpu", dtype="fp32", cache_dir=tmp_path)
    pixels = torch.stack([model.preprocess(image) for image in _images()])
    assert pixels.shape[1:] == (3, VISION["image_size"], VISION["image_size"])
    torch.testing.assert_close(model.encode_images(pixels), reference_image_features(state, pixels, quick_gelu),
                               rtol=1e-5, atol=1e-5)
    prompts = ["a photo of a man.", "a photo of a thief", "a photo of a person with a very long description here."]
    ids = tokenizer(prompts, padding=True, return_tensors="pt")["input_ids"]
    torch.testing.assert_close(model.encode_texts(prompts), reference_text_features(state, ids, quick_gelu),
                               rtol=1e-5, atol=1e-5)
    assert model.info.logit_scale == pytest.approx(1 / 0.07, rel=1e-6)
    assert model.info.loader.startswith("converted") and len(model.info.checkpoint_sha256) == 64


def test_an_audit_runs_on_a_converted_checkpoint_and_records_how(checkpoint, face_folder, tmp_path):
    path = checkpoint[0]
    taxonomy = tmp_path / "gender.yaml"
    taxonomy.write_text("name: g\ntemplates: ['a photo of a {label}.']\nprobes:\n  - id: gender\n    kind: attribute\n"
                        "    target: gender\n    classes: [{id: Male, label: man}, {id: Female, label: woman}]\n"
                        "    slices: [race]\n")
    out = tmp_path / "out"
    code = main(["audit", "--taxonomy", str(taxonomy), "--data", f"csv:{face_folder / 'labels.csv'}",
                 "--model", f"open_clip:tiny:{path}", "--out", str(out), "--cache-dir", str(tmp_path / "cache"),
                 "--device", "cpu", "--quiet", "--min-n", "5"])
    assert code == 0
    model = json.loads((out / "results.json").read_text())["manifest"]["model"]
    # The checkpoint is recorded relative to the output folder (no absolute local path in outputs).
    assert model["spec"] == f"open_clip:tiny:{os.path.relpath(path, out)}" and model["loader"].startswith("converted")
    assert model["checkpoint_sha256"] and model["open_clip_version"] is None


def test_a_warm_re_audit_of_a_checkpoint_file_loads_no_model_and_the_activation_keys_the_cache(
        checkpoint, face_folder, tmp_path):
    path, _, quick_gelu, _ = checkpoint
    taxonomy = tmp_path / "gender.yaml"
    taxonomy.write_text("name: g\ntemplates: ['a photo of a {label}.']\nprobes:\n  - id: gender\n    kind: attribute\n"
                        "    target: gender\n    classes: [{id: Male, label: man}, {id: Female, label: woman}]\n")
    cache = tmp_path / "cache"

    def audit(arch: str, out: str) -> dict:
        code = main(["audit", "--taxonomy", str(taxonomy), "--data", f"csv:{face_folder / 'labels.csv'}",
                     "--model", f"open_clip:{arch}:{path}", "--out", str(tmp_path / out), "--cache-dir", str(cache),
                     "--device", "cpu", "--quiet", "--min-n", "5"])
        assert code == 0
        return json.loads((tmp_path / out / "results.json").read_text())["manifest"]

    cold, warm = audit("tiny", "cold"), audit("tiny", "warm")
    assert cold["model_loaded"] and not warm["model_loaded"] and warm["images_encoded"] == 0
    assert warm["model"]["weights_sha256"] == cold["model"]["weights_sha256"]
    predictions = [pd.read_parquet(tmp_path / out / "predictions.parquet") for out in ("cold", "warm")]
    pd.testing.assert_frame_equal(*predictions)
    if not quick_gelu:  # the same file run with QuickGELU is another model: its own embeddings, not the cache's
        other = audit("tiny-quickgelu", "other")
        assert other["model_loaded"] and other["images_encoded"] > 0
        assert other["model"]["weights_sha256"] != cold["model"]["weights_sha256"]
        assert other["model"]["checkpoint_sha256"] == cold["model"]["checkpoint_sha256"]


def test_the_files_beside_a_checkpoint_are_part_of_its_identity(checkpoint, tmp_path):
    from clipaudit.models.checkpoint_files import known_files_sha256

    path = checkpoint[0]
    folder = tmp_path / "copy"
    folder.mkdir()
    for entry in path.parent.iterdir():
        (folder / entry.name).write_bytes(entry.read_bytes())
    spec = f"open_clip:tiny:{folder / path.name}"
    before = known_files_sha256(spec, cache_dir=tmp_path / "cache")
    assert before == known_files_sha256(spec, cache_dir=tmp_path / "cache")
    (folder / "notes.txt").write_text("not read when loading")
    assert known_files_sha256(spec, cache_dir=tmp_path / "cache") == before
    (folder / "tokenizer.json").write_text((folder / "tokenizer.json").read_text().replace('"man"', '"men"', 1) + " ")
    assert known_files_sha256(spec, cache_dir=tmp_path / "cache") != before
    assert known_files_sha256("open_clip:ViT-B-32:laion2b_s34b_b79k", cache_dir=tmp_path) is None  # a tag
    for odd_name in (".epoch3.pt", "tf_model_ft.pt"):  # names a transformers folder would skip
        odd = folder / odd_name
        odd.write_bytes(b"weights, first version")
        first = known_files_sha256(f"open_clip:tiny:{odd}", cache_dir=None)
        odd.write_bytes(b"weights, second version")
        assert known_files_sha256(f"open_clip:tiny:{odd}", cache_dir=None) != first, odd_name


def test_open_clips_version_keys_the_embedding_cache_of_the_models_it_runs():
    from dataclasses import replace

    from clipaudit.embed.engine import text_cache_path
    from clipaudit.models.base import ModelInfo

    info = ModelInfo(spec="open_clip:ViT-B-32:/m.pt", name="m", revision=None, weights_sha256="0" * 64,
                     preprocessing_sha256="1" * 64, tokenizer_sha256="2" * 64, architecture="open_clip ViT-B-32",
                     activation="softmax", logit_scale=100.0, logit_bias=0.0, max_text_tokens=77, device="cpu",
                     dtype="fp32", loader="open_clip", open_clip_version="2.24.0")
    upgraded = replace(info, open_clip_version="2.26.1")
    assert text_cache_path(Path("c"), info) != text_cache_path(Path("c"), upgraded)


@pytest.mark.parametrize("case, message", [
    ("garbage", "not a ViT CLIP checkpoint in the OpenAI/open_clip layout"),
    ("resnet", "ResNet image tower"),
    ("wrong name", "the weights have vision image_size 32, but the named configuration says 224"),
    ("unknown tag", "pretrained tag 'no_such_tag' of ViT-B-32 is not one clipaudit can fetch"),
    ("unknown arch", "unknown architecture 'ViT-Q-99'"),
    ("no source", "expected open_clip:ARCH:PRETRAINED_TAG or open_clip:ARCH:FILE"),
    ("unreadable", "cannot be read as weights"),
])
def test_checkpoints_it_cannot_use_are_one_line_exit_2(case, message, checkpoint, tmp_path, capsys):
    path = checkpoint[0]
    if case == "garbage":
        save_file({"encoder.weight": torch.zeros(2, 2)}, str(tmp_path / "x.safetensors"))
        spec = f"open_clip:ViT-B-32:{tmp_path / 'x.safetensors'}"
    elif case == "resnet":
        save_file({"visual.layer1.0.conv1.weight": torch.zeros(2, 2)}, str(tmp_path / "rn.safetensors"))
        spec = f"open_clip:RN50:{tmp_path / 'rn.safetensors'}"
    elif case == "wrong name":
        copy = tmp_path / "copy.safetensors"
        copy.write_bytes(path.read_bytes())  # no open_clip_config.json beside it: the name decides
        spec = f"open_clip:ViT-B-32:{copy}"
    elif case == "unknown tag":
        spec = "open_clip:ViT-B-32:no_such_tag"
    elif case == "unknown arch":
        copy = tmp_path / "copy.safetensors"
        copy.write_bytes(path.read_bytes())
        spec = f"open_clip:ViT-Q-99:{copy}"
    elif case == "no source":
        spec = "open_clip:ViT-B-32"
    else:
        (tmp_path / "broken.pt").write_bytes(b"not a torch file")
        spec = f"open_clip:ViT-B-32:{tmp_path / 'broken.pt'}"
    with pytest.raises(ModelError, match=message.replace("(", r"\(")):
        load_model(spec, device="cpu", dtype="fp32", cache_dir=tmp_path)
    taxonomy = tmp_path / "t.yaml"
    taxonomy.write_text("name: t\ntemplates: ['a {label}']\nprobes:\n  - id: g\n    kind: attribute\n    target: gender\n"
                        "    classes: [{id: Male}, {id: Female}]\n")
    capsys.readouterr()
    assert main(["validate", str(taxonomy), "--model", spec]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message.split(" (")[0] in err


def test_the_named_configurations_are_open_clips():
    """A spot check of the data table against open_clip's model_configs (ViT-H-14, ViT-bigG-14)."""
    from clipaudit.models.openai_layout import named_model_config

    h14, quick = named_model_config("ViT-H-14")
    assert not quick and h14["vision_cfg"]["head_width"] == 80 and h14["text_cfg"]["layers"] == 12
    big, _ = named_model_config("ViT-bigG-14")
    assert big["embed_dim"] == 1280 and big["text_cfg"]["heads"] == 20 and big["text_cfg"]["layers"] == 32
    assert named_model_config("ViT-L-14-336-quickgelu")[1] is True
    assert named_model_config("RN50") is None


class _FakeOpenClip:
    """Just enough of open_clip's API (create_model_and_transforms, get_tokenizer) to check that the
    adapter hands open_clip's own model, preprocessing and tokenizer to the pipeline unchanged."""

    __version__ = "9.9.9"

    def __init__(self, state, tokenizer):
        self.state, self.hf_tokenizer, self.calls = state, tokenizer, []

    def create_model_and_transforms(self, arch, *, pretrained, device):
        self.calls.append((arch, pretrained, device))
        state = self.state

        class Model(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.logit_scale = torch.nn.Parameter(state["logit_scale"].clone())
                self.proj = torch.nn.Parameter(state["visual.proj"].clone())

            def encode_image(self, pixels):
                return reference_image_features(state, pixels, True)

            def encode_text(self, ids):
                return reference_text_features(state, ids, True)

        def preprocess(image):
            resized = image.convert("RGB").resize((VISION["image_size"],) * 2)
            return torch.from_numpy(np.asarray(resized, dtype=np.float32) / 255).permute(2, 0, 1)

        return Model(), None, preprocess

    def get_tokenizer(self, arch):
        hf = self.hf_tokenizer

        class Tokenizer:
            context_length = hf.model_max_length

            def __call__(self, prompts):
                return hf(prompts, padding="max_length", max_length=self.context_length, return_tensors="pt")["input_ids"]

            def encode(self, prompt):
                return hf(prompt, add_special_tokens=False)["input_ids"]

        return Tokenizer()


def test_where_open_clip_imports_it_runs_the_model(checkpoint, tmp_path, monkeypatch):
    import clipaudit.models.openclip as openclip

    path, state, _, tokenizer = checkpoint
    fake = _FakeOpenClip(state, tokenizer)
    monkeypatch.setattr(openclip, "importable_open_clip", lambda: fake)
    model = load_model(f"open_clip:ViT-tiny:{path}", device="cpu", dtype="fp32", cache_dir=tmp_path)
    assert fake.calls == [("ViT-tiny", str(path), "cpu")]
    assert (model.info.loader, model.info.open_clip_version) == ("open_clip", "9.9.9")
    assert model.info.checkpoint_sha256 and model.info.logit_scale == pytest.approx(1 / 0.07, rel=1e-6)
    pixels = torch.stack([model.preprocess(image) for image in _images()])
    torch.testing.assert_close(model.encode_images(pixels), reference_image_features(state, pixels, True))
    prompts = ["a photo of a man.", "a photo of a thief"]
    ids = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length, return_tensors="pt")
    torch.testing.assert_close(model.encode_texts(prompts), reference_text_features(state, ids["input_ids"], True))
    assert model.count_tokens("a photo of a man.") == len(tokenizer("a photo of a man.")["input_ids"])
    with pytest.raises(ModelError, match="text context"):
        model.encode_texts(["word " * 200])


class _Holder(torch.nn.Module):
    """A node of a TorchScript archive that holds tensors under dotted names, as OpenAI's .pt files do."""

    def forward(self) -> int:
        return 0


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_openai_torchscript_files_load_and_use_quick_gelu(checkpoint, tmp_path):
    """OpenAI's own .pt checkpoints are TorchScript archives of QuickGELU models."""
    path, state, _, tokenizer = checkpoint
    root = _Holder()
    for key, value in state.items():
        *parents, leaf = key.split(".")
        module = root
        for part in parents:
            if not hasattr(module, part):
                module.add_module(part, _Holder())
            module = getattr(module, part)
        module.register_parameter(leaf, torch.nn.Parameter(value.clone(), requires_grad=False))
    folder = tmp_path / "openai"
    folder.mkdir()
    torch.jit.script(root).save(str(folder / "ViT-tiny.pt"))
    tokenizer.save_pretrained(folder)
    (folder / "open_clip_config.json").write_text((path.parent / "open_clip_config.json").read_text())
    model = load_model(f"open_clip:tiny:{folder / 'ViT-tiny.pt'}", device="cpu", dtype="fp32", cache_dir=tmp_path)
    pixels = torch.stack([model.preprocess(image) for image in _images()])
    torch.testing.assert_close(model.encode_images(pixels), reference_image_features(state, pixels, True),
                               rtol=1e-5, atol=1e-5)
