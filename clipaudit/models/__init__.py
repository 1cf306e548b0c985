"""Model adapters behind one small protocol (:class:`ZeroShotModel`)."""
from __future__ import annotations

from pathlib import Path

from clipaudit.errors import ModelError
from clipaudit.models.base import ModelInfo, ZeroShotModel
from clipaudit.models.demo import DEMO_MODEL_NAME, DEMO_MODEL_SPEC, demo_model_dir
from clipaudit.models.open_clip_spec import OPEN_CLIP_PREFIX

__all__ = ["ModelInfo", "ZeroShotModel", "load_model", "DEMO_MODEL_SPEC"]


def load_model(
    spec: str,
    *,
    device: str = "auto",
    dtype: str = "auto",
    cache_dir: Path,
    trust_remote_code: bool = False,
    compile: bool = False,
) -> ZeroShotModel:
    """Load the model a SPEC names: a hub id or local folder, `demo`, `open_clip:ARCH:PRETRAINED_TAG` or
    `open_clip:ARCH:FILE` (see :mod:`clipaudit.models.openclip`); ``compile`` runs its image tower
    through torch.compile."""
    model = _load(spec, device=device, dtype=dtype, trust_remote_code=trust_remote_code, cache_dir=cache_dir)
    if compile:
        if not hasattr(model, "compile_image_tower"):
            raise ModelError(f"--compile: not available for {model.info.loader} models; leave it out")
        model.compile_image_tower()
    return model


def _load(spec: str, *, device: str, dtype: str, trust_remote_code: bool, cache_dir: Path) -> ZeroShotModel:
    if not spec or not spec.strip():
        raise ModelError("--model: empty model spec; give a hub id, a local folder or 'demo'")
    if spec.startswith(OPEN_CLIP_PREFIX):
        from clipaudit.models.openclip import load_open_clip_model

        return load_open_clip_model(spec, device=device, dtype=dtype, cache_dir=cache_dir)
    from clipaudit.models.hf import load_hf_model

    if spec == DEMO_MODEL_SPEC:
        model = load_hf_model(str(demo_model_dir()), device=device, dtype=dtype, cache_dir=cache_dir)
        model.info = _renamed(model.info, spec=DEMO_MODEL_SPEC, name=DEMO_MODEL_NAME)
        return model
    return load_hf_model(spec, device=device, dtype=dtype, trust_remote_code=trust_remote_code, cache_dir=cache_dir)


def _renamed(info: ModelInfo, *, spec: str, name: str) -> ModelInfo:
    from dataclasses import replace

    return replace(info, spec=spec, name=name)
