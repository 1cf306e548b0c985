"""Weights in the OpenAI CLIP layout, which open_clip's ViT CLIP models share, as transformers' CLIPModel.

The layout (Radford et al. 2021; openai/CLIP ``model.py``, open_clip ``transformer.py``): a ViT image
tower (``visual.conv1``, ``visual.class_embedding``, ``visual.positional_embedding``,
``visual.ln_pre``, pre-norm residual blocks ``visual.transformer.resblocks.N`` with a packed
``attn.in_proj_weight`` and an ``mlp.c_fc``/``mlp.c_proj`` pair, ``visual.ln_post``, ``visual.proj``)
and a causal text tower (``token_embedding``, ``positional_embedding``, ``transformer.resblocks.N``,
``ln_final``, ``text_projection``, pooled at the highest token id, the end-of-text token), and
``logit_scale``. transformers' CLIPModel is the same network under other names; this module maps one
onto the other, with the sizes read from the tensors' shapes and the head counts from open_clip's
configuration (a named one in ``open_clip_configs.json``, or ``open_clip_config.json`` beside the file).
"""
from __future__ import annotations

import json
import math
import warnings
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from clipaudit.errors import ModelError

CONFIGS_FILE = Path(__file__).with_name("open_clip_configs.json")
QUICKGELU_SUFFIX = "-quickgelu"
DEFAULT_HEAD_WIDTH = 64  # open_clip's and OpenAI's vision head width when a config names none
# The tensors every checkpoint of the layout has; a file without them is another architecture.
REQUIRED_KEYS = ("visual.conv1.weight", "visual.class_embedding", "visual.positional_embedding", "visual.ln_pre.weight",
                 "visual.ln_post.weight", "visual.proj", "token_embedding.weight", "positional_embedding",
                 "ln_final.weight", "text_projection", "logit_scale")
IGNORED_KEYS = ("attn_mask", "input_resolution", "context_length", "vocab_size")
BLOCK_NAMES = {"attn.out_proj.weight": "self_attn.out_proj.weight", "attn.out_proj.bias": "self_attn.out_proj.bias",
               "ln_1.weight": "layer_norm1.weight", "ln_1.bias": "layer_norm1.bias",
               "ln_2.weight": "layer_norm2.weight", "ln_2.bias": "layer_norm2.bias",
               "mlp.c_fc.weight": "mlp.fc1.weight", "mlp.c_fc.bias": "mlp.fc1.bias",
               "mlp.c_proj.weight": "mlp.fc2.weight", "mlp.c_proj.bias": "mlp.fc2.bias"}
TOWER_NAMES = {"visual.conv1.weight": "vision_model.embeddings.patch_embedding.weight",
               "visual.class_embedding": "vision_model.embeddings.class_embedding",
               "visual.positional_embedding": "vision_model.embeddings.position_embedding.weight",
               "visual.ln_pre.weight": "vision_model.pre_layrnorm.weight",
               "visual.ln_pre.bias": "vision_model.pre_layrnorm.bias",
               "visual.ln_post.weight": "vision_model.post_layernorm.weight",
               "visual.ln_post.bias": "vision_model.post_layernorm.bias",
               "token_embedding.weight": "text_model.embeddings.token_embedding.weight",
               "positional_embedding": "text_model.embeddings.position_embedding.weight",
               "ln_final.weight": "text_model.final_layer_norm.weight",
               "ln_final.bias": "text_model.final_layer_norm.bias",
               "logit_scale": "logit_scale"}
PROJECTIONS = {"visual.proj": "visual_projection.weight", "text_projection": "text_projection.weight"}
TOWERS = {"visual.transformer.resblocks.": "vision_model.encoder.layers.",
          "transformer.resblocks.": "text_model.encoder.layers."}


@lru_cache(maxsize=1)
def known_configurations() -> dict[str, Any]:
    """``open_clip_configs.json``: named model configurations and Hub-hosted pretrained tags."""
    return json.loads(CONFIGS_FILE.read_text(encoding="utf-8"))


def named_model_config(arch: str) -> tuple[dict[str, Any], bool] | None:
    """(model_cfg, quick_gelu) of a named architecture (``ViT-B-32``, ``ViT-B-32-quickgelu``), else None."""
    base = arch.removesuffix(QUICKGELU_SUFFIX)
    config = known_configurations()["models"].get(base)
    return None if config is None else (config, arch.endswith(QUICKGELU_SUFFIX))


def read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """The state dict of a checkpoint file: safetensors, a torch file (weights only), or OpenAI's
    TorchScript archive. Wrappers (``state_dict``, ``module.``) are taken off."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"checkpoint {str(path)!r} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        elif is_torchscript(path):
            # OpenAI's own .pt files are TorchScript archives; open_clip reads them the same way.
            # (torch deprecates TorchScript, but these files exist and are read-only here.)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                state = torch.jit.load(str(path), map_location="cpu").state_dict()
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as error:  # every reader has its own error types; all mean "not a usable file"
        detail = " ".join(str(error).split())[:200] or type(error).__name__
        raise ModelError(f"checkpoint {str(path)!r} cannot be read as weights: {detail}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise ModelError(f"checkpoint {str(path)!r} holds no state dict of tensors")
    return {key.removeprefix("module."): value for key, value in state.items()}


def is_torchscript(path: Path) -> bool:
    """OpenAI's own .pt checkpoints are TorchScript archives (zip files with a code/ folder)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.split("/", 1)[-1].startswith("code/") for name in archive.namelist())


def check_layout(state: dict[str, torch.Tensor], *, source: str) -> None:
    """Refuse, in one line, a state dict that is not a ViT CLIP in the OpenAI layout."""
    missing = [key for key in REQUIRED_KEYS if key not in state]
    if missing:
        hint = ("a ResNet image tower (modified ResNet), which clipaudit cannot convert"
                if any(key.startswith("visual.layer1.") for key in state) else "another architecture")
        raise ModelError(f"{source}: not a ViT CLIP checkpoint in the OpenAI/open_clip layout (no {missing[0]}; "
                         f"looks like {hint}); install the open_clip extra (pip install 'clipaudit[open_clip]') "
                         "to load other open_clip architectures")


def model_config_from_shapes(state: dict[str, torch.Tensor], named: dict[str, Any] | None, *,
                             source: str) -> dict[str, Any]:
    """open_clip's model_cfg for the weights: sizes from the tensors, head counts from ``named``
    (or the OpenAI rule, 64-wide heads); a named configuration that disagrees is an error."""
    vision_width, _, patch, _ = state["visual.conv1.weight"].shape
    grid = math.isqrt(state["visual.positional_embedding"].shape[0] - 1)
    vision_cfg = {"image_size": grid * patch, "layers": _count_blocks(state, "visual.transformer.resblocks."),
                  "width": vision_width, "patch_size": patch}
    text_cfg = {"context_length": state["positional_embedding"].shape[0],
                "vocab_size": state["token_embedding.weight"].shape[0],
                "width": state["token_embedding.weight"].shape[1],
                "layers": _count_blocks(state, "transformer.resblocks.")}
    config = {"embed_dim": state["visual.proj"].shape[1], "vision_cfg": vision_cfg, "text_cfg": text_cfg}
    if named is not None:
        for part in ("vision_cfg", "text_cfg"):
            for key, value in config[part].items():
                if key in named[part] and named[part][key] != value:
                    raise ModelError(f"{source}: the weights have {part.removesuffix('_cfg')} {key} {value}, but the "
                                     f"named configuration says {named[part][key]}; name the right architecture")
        if named["embed_dim"] != config["embed_dim"]:
            raise ModelError(f"{source}: the weights project to {config['embed_dim']} dimensions, but the named "
                             f"configuration says {named['embed_dim']}; name the right architecture")
    head_width = (named or {}).get("vision_cfg", {}).get("head_width", DEFAULT_HEAD_WIDTH)
    text_heads = (named or {}).get("text_cfg", {}).get("heads", text_cfg["width"] // DEFAULT_HEAD_WIDTH)
    if vision_width % head_width or not text_heads or text_cfg["width"] % text_heads:
        raise ModelError(f"{source}: cannot tell the number of attention heads from the weights; give the "
                         "architecture's name or put open_clip_config.json beside the checkpoint")
    vision_cfg["heads"], text_cfg["heads"] = vision_width // head_width, text_heads
    return config


def _count_blocks(state: dict[str, torch.Tensor], prefix: str) -> int:
    indices = {int(key[len(prefix):].split(".", 1)[0]) for key in state if key.startswith(prefix)}
    if not indices or indices != set(range(len(indices))):
        raise ModelError(f"the checkpoint's blocks {prefix}N are missing or not numbered 0..N-1")
    return len(indices)


def to_transformers(state: dict[str, torch.Tensor], config: dict[str, Any], *, quick_gelu: bool, source: str):
    """A transformers ``CLIPModel`` holding exactly these weights (float32)."""
    from transformers import CLIPConfig, CLIPModel

    vision, text = config["vision_cfg"], config["text_cfg"]
    activation = "quick_gelu" if quick_gelu else "gelu"
    clip_config = CLIPConfig(
        projection_dim=config["embed_dim"],
        vision_config=dict(hidden_size=vision["width"], num_hidden_layers=vision["layers"],
                           num_attention_heads=vision["heads"], image_size=vision["image_size"],
                           patch_size=vision["patch_size"], hidden_act=activation,
                           intermediate_size=state["visual.transformer.resblocks.0.mlp.c_fc.weight"].shape[0]),
        # eos_token_id 2 makes transformers pool at the highest token id, the layout's own rule.
        text_config=dict(vocab_size=text["vocab_size"], hidden_size=text["width"], num_hidden_layers=text["layers"],
                         num_attention_heads=text["heads"], max_position_embeddings=text["context_length"],
                         hidden_act=activation, eos_token_id=2,
                         intermediate_size=state["transformer.resblocks.0.mlp.c_fc.weight"].shape[0]),
    )
    model = CLIPModel(clip_config)
    converted = convert_state_dict(state, source=source)
    missing, unexpected = model.load_state_dict(converted, strict=False)
    missing = [key for key in missing if not key.endswith("position_ids")]
    if missing or unexpected:
        raise ModelError(f"{source}: the weights do not fill transformers' CLIPModel "
                         f"({(missing or unexpected)[0]} {'missing' if missing else 'left over'})")
    return model.float().eval()


def convert_state_dict(state: dict[str, torch.Tensor], *, source: str) -> dict[str, torch.Tensor]:
    """The OpenAI layout's tensors under transformers' CLIPModel names (no tensor left behind)."""
    converted: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if key in IGNORED_KEYS:
            continue
        if key in TOWER_NAMES:
            converted[TOWER_NAMES[key]] = tensor
        elif key in PROJECTIONS:
            converted[PROJECTIONS[key]] = tensor.t().contiguous()
        else:
            converted.update(_block_tensors(key, tensor, source=source))
    return converted


def _block_tensors(key: str, tensor: torch.Tensor, *, source: str) -> dict[str, torch.Tensor]:
    for prefix, target in TOWERS.items():
        if key.startswith(prefix):
            index, name = key[len(prefix):].split(".", 1)
            base = f"{target}{index}."
            if name in ("attn.in_proj_weight", "attn.in_proj_bias"):
                kind = "weight" if name.endswith("weight") else "bias"
                query, key_part, value = tensor.chunk(3, dim=0)
                return {f"{base}self_attn.q_proj.{kind}": query, f"{base}self_attn.k_proj.{kind}": key_part,
                        f"{base}self_attn.v_proj.{kind}": value}
            if name in BLOCK_NAMES:
                return {base + BLOCK_NAMES[name]: tensor}
    raise ModelError(f"{source}: tensor {key!r} has no place in a ViT CLIP of the OpenAI layout; install the "
                     "open_clip extra (pip install 'clipaudit[open_clip]') to load this architecture")
