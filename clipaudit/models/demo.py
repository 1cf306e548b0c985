"""Where the shipped demo model lies: a small CLIP trained on synthetic faces (``clipaudit/demo/assets``).

Loading it is the ordinary transformers path; how it was trained, and retraining it, is
:mod:`clipaudit.demo`.
"""
from __future__ import annotations

from pathlib import Path

DEMO_MODEL_SPEC = "demo"
DEMO_MODEL_NAME = "clipaudit demo (tiny CLIP)"
ASSETS_DIR = Path(__file__).resolve().parents[1] / "demo" / "assets"


def demo_model_dir() -> Path:
    """The shipped demo checkpoint folder (nothing is built at run time)."""
    return ASSETS_DIR
