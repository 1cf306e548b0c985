"""The demo model: where it lives and how it is made when it is not there yet."""
from __future__ import annotations

from pathlib import Path

from clipaudit.demo.tiny_clip import build_tiny_clip

# Bump when the demo model's construction changes, so an old copy in a cache is not reused.
DEMO_MODEL_VERSION = 1
DEMO_MODEL_SEED = 0


def demo_model_dir(cache_dir: Path) -> Path:
    """The demo checkpoint folder, built (deterministically, in seconds) on first use."""
    folder = Path(cache_dir) / "models" / f"demo-tiny-clip-v{DEMO_MODEL_VERSION}"
    if not (folder / "config.json").is_file():
        build_tiny_clip(folder, seed=DEMO_MODEL_SEED)
    return folder
