"""Shared fixtures: a tiny CLIP checkpoint built offline and a small labelled image folder.

The checkpoint is built from a `CLIPConfig` with a tokenizer trained locally, saved with
`save_pretrained` and loaded back through the same code path a real checkpoint takes.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory) -> Path:
    from clipaudit.demo.tiny_clip import build_tiny_clip

    return build_tiny_clip(tmp_path_factory.mktemp("models") / "tiny-clip", seed=1)


@pytest.fixture(scope="session")
def face_folder(tmp_path_factory) -> Path:
    """A csv: dataset of 84 synthetic faces (2 per race x gender x 3 ages), with labels.csv."""
    from clipaudit.data.faces import render_face
    import numpy as np

    root = tmp_path_factory.mktemp("faces")
    (root / "img").mkdir()
    rng = np.random.default_rng(0)
    lines = ["file,race,gender,age"]
    races = ["East Asian", "Indian", "Black", "White", "Middle Eastern", "Latino_Hispanic", "Southeast Asian"]
    index = 0
    for race in races:
        for gender in ["Male", "Female"]:
            for age in ["3-9", "20-29", "60-69"]:
                for _ in range(2):
                    name = f"img/{index:04d}.jpg"
                    render_face(race, gender, age, rng=rng).save(root / name, quality=90)
                    lines.append(f"{name},{race},{gender},{age}")
                    index += 1
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture()
def cache_dir(tmp_path) -> Path:
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def tiny_siglip_dir(tmp_path_factory) -> Path:
    """A tiny SigLIP (sigmoid scoring with a learnt bias) with a non-zero bias, saved like a real one."""
    import torch
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel, SiglipProcessor

    from clipaudit.demo.tiny_clip import BASE_CORPUS, train_tokenizer

    tokenizer = train_tokenizer([BASE_CORPUS], vocab_size=512)
    tokenizer.model_max_length = 16
    config = SiglipConfig(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=16, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=8),
    )
    torch.manual_seed(3)
    model = SiglipModel(config).eval()
    with torch.no_grad():
        model.logit_bias.fill_(-2.5)
        model.logit_scale.fill_(2.0)
    folder = tmp_path_factory.mktemp("models") / "tiny-siglip"
    model.save_pretrained(folder)
    SiglipProcessor(image_processor=SiglipImageProcessor(size={"height": 32, "width": 32}), tokenizer=tokenizer).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def chromium() -> str:
    """Headless Chromium for the browser tests; under CI its absence is a failure, not a skip."""
    from test_report_browser import find_chromium

    executable = find_chromium()
    if executable is None:
        message = "headless Chromium not found (Debian package 'chromium'; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message + " -- required when CI is set")
        pytest.skip(message)
    return executable
