"""The demo model: a small CLIP trained on synthetic faces with planted biases, shipped in the package.

``clipaudit demo`` loads the checkpoint in ``clipaudit/demo/assets/`` and trains nothing. The
folder also holds ``planted.json`` (the biases planted on purpose, see
:mod:`clipaudit.demo.world`) and ``training.json`` (how the weights were made).
``clipaudit demo --retrain`` trains a fresh copy into the cache with
:mod:`clipaudit.demo.train` and audits that one instead.
"""
from __future__ import annotations

import json
from pathlib import Path

from clipaudit.models.demo import ASSETS_DIR, demo_model_dir

__all__ = ["ASSETS_DIR", "demo_model_dir", "planted_truth", "retrain_demo_model", "retrained_model_dir",
           "untrained_model"]

# Bump when the demo model's construction changes, so an old retrained copy in a cache is not reused.
DEMO_MODEL_VERSION = 2
PLANTED_FILE = "planted.json"


def planted_truth(model_dir: Path = ASSETS_DIR) -> list[dict[str, object]]:
    """The planted disparities recorded next to a demo checkpoint (planted.json)."""
    return json.loads((Path(model_dir) / PLANTED_FILE).read_text(encoding="utf-8"))


def retrained_model_dir(cache_dir: Path) -> Path:
    """Where ``--retrain`` writes its checkpoint."""
    return Path(cache_dir) / "models" / f"demo-clip-v{DEMO_MODEL_VERSION}-retrained"


def retrain_demo_model(cache_dir: Path, *, progress: bool = True) -> Path:
    """Train the demo model again (minutes, on the CPU) into the cache and return its folder."""
    from clipaudit.demo.train import train

    folder = retrained_model_dir(cache_dir)
    train(folder, cache_dir=Path(cache_dir), progress=progress)
    return folder


def untrained_model(cache_dir: Path, *, seed: int) -> Path:
    """A tiny CLIP of the demo's shape with random weights from ``seed`` (built once into the cache):
    a second model to set beside the demo model in ``clipaudit report``; it learnt nothing."""
    from clipaudit.demo.tiny_clip import build_tiny_clip
    from clipaudit.demo.train import DEMO_ARCHITECTURE
    from clipaudit.demo.world import caption_corpus

    folder = Path(cache_dir) / "models" / f"demo-clip-v{DEMO_MODEL_VERSION}-untrained-seed{seed}"
    if not (folder / "config.json").is_file():
        build_tiny_clip(folder, seed=seed, config=DEMO_ARCHITECTURE, extra_corpus=caption_corpus(seed=seed))
    return folder
