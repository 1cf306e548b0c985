"""``--model open_clip:ARCH:PRETRAINED_TAG`` and ``open_clip:ARCH:FILE``: the checkpoints open_clip serves.

Where open_clip imports (``pip install 'clipaudit[open_clip]'``), it runs the model: its weights, its
preprocessing, its tokenizer (:mod:`clipaudit.models.openclip_adapter`). Where it does not (it needs
torchvision), ViT CLIP checkpoints in the OpenAI layout are converted into transformers' CLIPModel
(:mod:`clipaudit.models.openai_layout`) with the preprocessing open_clip would use: resize the
shortest side (bicubic), centre crop, OpenAI's mean and std (Inception's for the tags open_clip
trained that way). The ``openai`` tag is OpenAI's own weights, which transformers serves under its
``openai/clip-vit-*`` ids: those are loaded directly. The manifest records which path ran.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from clipaudit.errors import ModelError
from clipaudit.models.checkpoint_files import checkpoint_file_sha256
from clipaudit.models.open_clip_spec import LOCAL_CONFIG, is_file_source, parse_spec
from clipaudit.models.openai_layout import (
    QUICKGELU_SUFFIX,
    check_layout,
    is_torchscript,
    known_configurations,
    model_config_from_shapes,
    named_model_config,
    read_checkpoint,
    to_transformers,
)

HUB_WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
# The CLIP tokenizer every model of the OpenAI layout uses (byte-level BPE, 49,408 tokens).
DEFAULT_TOKENIZER = "openai/clip-vit-base-patch32"
OPENAI_WEIGHTS_IN_TRANSFORMERS = {"ViT-B-32": "openai/clip-vit-base-patch32", "ViT-B-16": "openai/clip-vit-base-patch16",
                                  "ViT-L-14": "openai/clip-vit-large-patch14",
                                  "ViT-L-14-336": "openai/clip-vit-large-patch14-336"}
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
INCEPTION_MEAN = INCEPTION_STD = (0.5, 0.5, 0.5)


def load_open_clip_model(spec: str, *, device: str, dtype: str, cache_dir: Path | None):
    """The model an ``open_clip:`` spec names, through open_clip where it imports, else converted."""
    from clipaudit.models.devices import resolve_device, resolve_dtype

    arch, source = parse_spec(spec)
    device = resolve_device(device)
    dtype = resolve_dtype(dtype, device)
    open_clip = importable_open_clip()
    if open_clip is None:
        return _load_converted(spec, arch, source, device=device, dtype=dtype, cache_dir=cache_dir)
    from clipaudit.models.openclip_adapter import load_with_open_clip

    return load_with_open_clip(open_clip, spec, arch, source, device=device, dtype=dtype, cache_dir=cache_dir)


def importable_open_clip():
    """The open_clip module, or None where it is not installed or does not import (it needs a
    torchvision that matches the installed torch; a mismatch fails at import with various errors)."""
    try:
        import open_clip
    except Exception:
        return None
    return open_clip


def _load_converted(spec: str, arch: str, source: str, *, device: str, dtype: str, cache_dir: Path | None):
    from clipaudit.models.hf import load_hf_model, wrap_hf_model

    if not is_file_source(source) and source == known_configurations()["openai_tag"]:
        model_id = OPENAI_WEIGHTS_IN_TRANSFORMERS.get(arch.removesuffix(QUICKGELU_SUFFIX))
        if model_id is None:
            raise _unsupported(spec, f"no transformers copy of OpenAI's {arch} weights is known")
        model = load_hf_model(model_id, device=device, dtype=dtype, cache_dir=cache_dir)
        model.info = _with(model.info, spec=spec, loader=f"transformers ({model_id}: OpenAI's {arch} weights)")
        return model
    path, hub_repo = _checkpoint(spec, arch, source)
    state = read_checkpoint(path)
    check_layout(state, source=str(path))
    named, quick_gelu, preprocess = _configuration(spec, arch, path, tag=None if hub_repo is None else source)
    # OpenAI's own checkpoints (TorchScript .pt files) were trained with QuickGELU, whatever a name says.
    quick_gelu = quick_gelu or is_torchscript(path)
    config = model_config_from_shapes(state, named, source=str(path))
    model = to_transformers(state, config, quick_gelu=quick_gelu, source=str(path))
    processor = _processor(config["vision_cfg"]["image_size"], preprocess, tokenizer_from=_tokenizer_source(path, hub_repo))
    checkpoint_sha256 = checkpoint_file_sha256(path, cache_dir=cache_dir)
    return wrap_hf_model(model, processor, spec=spec, name=display_name(arch, source), revision=None, device=device,
                         dtype=dtype, loader="converted into transformers' CLIPModel (open_clip not installed)",
                         weights_sha256=converted_weights_sha256(checkpoint_sha256, config, quick_gelu=quick_gelu),
                         checkpoint_sha256=checkpoint_sha256)


def converted_weights_sha256(checkpoint_sha256: str, config: dict, *, quick_gelu: bool) -> str:
    """The converted model's identity: the checkpoint file and the configuration it runs with (one
    file runs as ViT-B-32 or ViT-B-32-quickgelu: the same tensors, other embeddings)."""
    identity = {"checkpoint": checkpoint_sha256, "config": config, "quick_gelu": quick_gelu}
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def display_name(arch: str, source: str) -> str:
    """``ViT-L-14 (laion2b_s32b_b82k)``, or the checkpoint's file name (no local folders in reports)."""
    return f"{arch} ({Path(source).name if is_file_source(source) else source})"


def _checkpoint(spec: str, arch: str, source: str) -> tuple[Path, str | None]:
    """The checkpoint file: the one given, or the tag's file downloaded from the Hub (cached there)."""
    if is_file_source(source):
        return Path(source).expanduser(), None
    repo = known_configurations()["hub_pretrained"].get(arch.removesuffix(QUICKGELU_SUFFIX), {}).get(source)
    if repo is None:
        known = ", ".join(sorted(known_configurations()["hub_pretrained"].get(arch.removesuffix(QUICKGELU_SUFFIX), {})))
        raise _unsupported(spec, f"pretrained tag {source!r} of {arch} is not one clipaudit can fetch without "
                                 f"open_clip (known: {known or 'none'}, and 'openai')")
    from huggingface_hub import hf_hub_download

    errors = []
    for filename in HUB_WEIGHT_FILES:
        try:
            return Path(hf_hub_download(repo, filename)), repo
        except Exception as error:  # hub and network errors come in many types; each is one line here
            errors.append(" ".join(str(error).split())[:160] or type(error).__name__)
    raise ModelError(f"--model {spec!r}: cannot fetch the weights from the Hub repository {repo} ({errors[-1]})")


def _configuration(spec: str, arch: str, path: Path, *, tag: str | None) -> tuple[dict[str, Any] | None, bool, dict]:
    """(model_cfg, quick_gelu, preprocess_cfg): open_clip_config.json beside the weights, else the named one."""
    local = path.with_name(LOCAL_CONFIG)
    if local.is_file():
        try:
            document = _read_json(local)
            model_cfg = document["model_cfg"]
        except (KeyError, TypeError, ValueError) as error:
            raise ModelError(f"{local}: not an open_clip configuration ({error})") from None
        return model_cfg, bool(model_cfg.get("quick_gelu")) or arch.endswith(QUICKGELU_SUFFIX), \
            document.get("preprocess_cfg") or {}
    named = named_model_config(arch)
    if named is None:
        known = ", ".join(sorted(known_configurations()["models"]))
        raise _unsupported(spec, f"unknown architecture {arch!r} (named ones: {known}; or put {LOCAL_CONFIG} "
                                 "beside the checkpoint)")
    model_cfg, quick_gelu = named
    inception = [arch.removesuffix(QUICKGELU_SUFFIX), tag] in known_configurations()["inception_preprocessing"]
    preprocess = {"mean": INCEPTION_MEAN, "std": INCEPTION_STD} if inception else {}
    return model_cfg, quick_gelu, preprocess


def _processor(image_size: int, preprocess: dict, *, tokenizer_from: str):
    from transformers import CLIPImageProcessor, CLIPProcessor, CLIPTokenizerFast
    from transformers.image_utils import PILImageResampling

    if preprocess.get("resize_mode", "shortest") != "shortest" or preprocess.get("interpolation", "bicubic") != "bicubic":
        raise ModelError(f"preprocessing {preprocess} is not open_clip's default (shortest side, bicubic); "
                         "install the open_clip extra to run this model with its own preprocessing")
    image_processor = CLIPImageProcessor(
        do_resize=True, size={"shortest_edge": image_size}, resample=PILImageResampling.BICUBIC,
        do_center_crop=True, crop_size={"height": image_size, "width": image_size}, do_rescale=True,
        do_normalize=True, image_mean=list(preprocess.get("mean", OPENAI_MEAN)),
        image_std=list(preprocess.get("std", OPENAI_STD)), do_convert_rgb=True)
    try:
        tokenizer = CLIPTokenizerFast.from_pretrained(tokenizer_from)
    except (OSError, ValueError) as error:
        raise ModelError(f"cannot load the CLIP tokenizer from {tokenizer_from!r}: "
                         f"{' '.join(str(error).split())[:160]}; put tokenizer.json (or vocab.json and "
                         "merges.txt) beside the checkpoint") from None
    return CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)


def _tokenizer_source(path: Path, hub_repo: str | None) -> str:
    """The tokenizer files beside the checkpoint, else the Hub repository's, else OpenAI's CLIP tokenizer."""
    folder = path.parent
    if (folder / "tokenizer.json").is_file() or ((folder / "vocab.json").is_file() and (folder / "merges.txt").is_file()):
        return str(folder)
    return hub_repo or DEFAULT_TOKENIZER


def _unsupported(spec: str, why: str) -> ModelError:
    return ModelError(f"--model {spec!r}: {why}; install the open_clip extra (pip install 'clipaudit[open_clip]') "
                      "to load it through open_clip")


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _with(info, **changes):
    from dataclasses import replace

    return replace(info, **changes)
