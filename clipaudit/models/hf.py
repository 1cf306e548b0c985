"""transformers adapter: any checkpoint AutoModel/AutoProcessor load with image and text towers.

CLIP (softmax over classes) and SigLIP (sigmoid, with a learnt logit bias) are told apart by the
model itself: a model that carries a `logit_bias` is scored with a sigmoid.
"""
from __future__ import annotations

import hashlib
import json
import pickle
import re
from pathlib import Path

import torch
from PIL import Image

from clipaudit.errors import ModelError
from clipaudit.models.base import ModelInfo
from clipaudit.models.checkpoint_files import checkpoint_files_sha256, hub_snapshot_folder
from clipaudit.models.devices import resolve_device, resolve_dtype
from clipaudit.models.pixels import DeviceNormaliser, pixel_spec_of

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
__all__ = ["DTYPES", "HFZeroShotModel", "load_hf_model", "resolve_device", "resolve_dtype", "wrap_hf_model"]
SIGLIP_TEXT_PADDING = "max_length"  # SigLIP was trained on texts padded to full length


class HFZeroShotModel:
    """A transformers dual-encoder behind the :class:`~clipaudit.models.base.ZeroShotModel` protocol.

    Where the image processor splits (:mod:`clipaudit.models.pixels`), ``pixel_spec`` tells decode
    workers how to make uint8 pixels and :meth:`normalise_pixels` finishes them on the device;
    otherwise ``pixel_spec`` is None and :meth:`preprocess` is the processor's whole per-image path.
    """

    def __init__(self, model, processor, info: ModelInfo):
        self.model = model
        self.processor = processor
        self.image_processor = getattr(processor, "image_processor", processor)
        self.tokenizer = getattr(processor, "tokenizer", processor)
        self.info = info
        self.device = torch.device(info.device)
        self._torch_dtype = DTYPES[info.dtype]
        self.pixel_spec = pixel_spec_of(self.image_processor)
        self._normaliser = None
        self._tower = self._image_tower
        self.compiled = False
        self._compiled_batch: int | None = None

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        return self.image_processor(images=image, return_tensors="pt")["pixel_values"][0]

    def normalise_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 pixels from :attr:`pixel_spec` (N, 3, H, W), on the device -> the tower's input."""
        if self._normaliser is None:
            self._normaliser = DeviceNormaliser(self.pixel_spec, device=self.device, dtype=self._torch_dtype)
        return self._normaliser(pixels)

    @torch.inference_mode()
    def image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Pixel values (any device and dtype) -> projected image embeddings, float32 on the device."""
        pixel_values = pixel_values.to(self.device, self._torch_dtype, non_blocking=True)
        count = len(pixel_values)
        if self._compiled_batch is not None and count < self._compiled_batch:
            # A compiled tower keeps one shape: pad a short last batch instead of compiling again.
            padding = pixel_values.new_zeros((self._compiled_batch - count, *pixel_values.shape[1:]))
            pixel_values = torch.cat([pixel_values, padding])
        elif self.compiled and self._compiled_batch is None:
            self._compiled_batch = count
        return self._tower(pixel_values)[:count].float()

    def _image_tower(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return _pooled(self.model.get_image_features(pixel_values=pixel_values))

    def encode_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.image_features(pixel_values).cpu()

    def compile_image_tower(self) -> None:
        """Run the image tower through torch.compile (one shape: batches are padded to the first one's
        size); what is compiled returns a plain tensor, whatever transformers' output object."""
        self._tower = torch.compile(self._image_tower, dynamic=False)
        self.compiled = True

    @torch.inference_mode()
    def encode_texts(self, prompts: list[str]) -> torch.Tensor:
        too_long = [p for p in prompts if self.count_tokens(p) > self.info.max_text_tokens]
        if too_long:
            raise ModelError(
                f"prompt {too_long[0]!r} has {self.count_tokens(too_long[0])} tokens; "
                f"the model's text context is {self.info.max_text_tokens}"
            )
        inputs = self.tokenizer(prompts, return_tensors="pt", **self._padding())
        inputs = {key: value.to(self.device) for key, value in inputs.items()}
        features = self.model.get_text_features(**inputs)
        return _pooled(features).float().cpu()

    def count_tokens(self, prompt: str) -> int:
        return len(self.tokenizer(prompt)["input_ids"])

    def _padding(self) -> dict:
        if self.info.activation == "sigmoid":
            return {"padding": SIGLIP_TEXT_PADDING, "max_length": self.info.max_text_tokens}
        return {"padding": True}


def load_hf_model(
    spec: str,
    *,
    device: str = "auto",
    dtype: str = "auto",
    revision: str | None = None,
    trust_remote_code: bool = False,
    cache_dir: Path | None = None,
) -> HFZeroShotModel:
    """Load a checkpoint by hub id or local folder; raise ModelError with one line if it can't be used.

    A checkpoint must be complete (config, weights, image processor and tokenizer) and its weights
    are read only as safetensors or through torch's weights-only loading, never as a pickle that
    could run code.
    """
    device = resolve_device(device)
    dtype = resolve_dtype(dtype, device)
    if _looks_like_path(spec):
        check_checkpoint_folder(Path(spec), spec)
    model, processor = _load_model_and_processor(spec, revision=revision, trust_remote_code=trust_remote_code)
    for method in ("get_image_features", "get_text_features"):
        if not hasattr(model, method):
            raise ModelError(
                f"model {spec!r} ({type(model).__name__}) has no {method}: "
                "clipaudit needs a dual encoder with image and text towers (CLIP, SigLIP, ...)"
            )
    _check_processor(processor, model, spec)
    commit = getattr(model.config, "_commit_hash", None)
    folder = Path(spec).expanduser() if Path(spec).expanduser().is_dir() else hub_snapshot_folder(spec, revision=commit)
    weights_sha256 = checkpoint_files_sha256(folder, cache_dir=cache_dir) if folder is not None else None
    return wrap_hf_model(model, processor, spec=spec, name=getattr(model.config, "_name_or_path", spec) or spec,
                         revision=commit, device=device, dtype=dtype, weights_sha256=weights_sha256)


def check_checkpoint_folder(folder: Path, spec: str) -> None:
    """A local checkpoint folder has a config, weights and an image processor config; else name what is missing."""
    if not folder.is_dir():
        state = "is a file, not a checkpoint folder" if folder.exists() else "does not exist"
        raise ModelError(f"model folder {spec!r} {state}")
    if not (folder / "config.json").is_file():
        raise _refused(spec, "the folder has no config.json (not a transformers checkpoint)")
    if _weights_file(folder) is None:
        raise _refused(spec, f"the folder has no weights (expected one of {', '.join(WEIGHTS_FILES)})")
    if not _has_image_processor_config(folder):
        raise _refused(spec, f"the folder has no image processor config ({IMAGE_PROCESSOR_FILES})")


WEIGHTS_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                 "pytorch_model.bin.index.json")  # transformers' order of preference
IMAGE_PROCESSOR_FILES = "preprocessor_config.json, or processor_config.json with an image_processor entry"
TOKENIZER_FILES = "tokenizer.json, or vocab.json and merges.txt, or a sentencepiece model"


def _refused(spec: str, why: str) -> ModelError:
    return ModelError(f"cannot load model {spec!r}: {why}")


def _weights_file(folder: Path) -> str | None:
    return next((name for name in WEIGHTS_FILES if (folder / name).is_file()), None)


def _has_image_processor_config(folder: Path) -> bool:
    if (folder / "preprocessor_config.json").is_file():
        return True
    try:
        processor_config = json.loads((folder / "processor_config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(processor_config, dict) and isinstance(processor_config.get("image_processor"), dict)


def _load_model_and_processor(spec: str, *, revision: str | None, trust_remote_code: bool):
    """transformers' loaders, weights-only, quiet; every way a checkpoint can be refused is one ModelError."""
    import warnings

    from safetensors import SafetensorError
    from transformers import AutoModel, AutoProcessor
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # load reports go to the manifest, not the terminal
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on pickle protocols, transformers' on backends
            model, loading_info = AutoModel.from_pretrained(
                spec, revision=revision, trust_remote_code=trust_remote_code, weights_only=True,
                ignore_mismatched_sizes=True, output_loading_info=True)  # mismatches are refused below, by name
            processor = AutoProcessor.from_pretrained(spec, revision=revision, trust_remote_code=trust_remote_code)
    except (pickle.UnpicklingError, SafetensorError, EOFError) as error:
        raise _refused(spec, _unsafe_or_damaged(spec, error)) from None
    except RuntimeError as error:
        if "PytorchStreamReader" not in str(error):  # torch's reader of a damaged zip checkpoint; others are bugs
            raise
        raise _refused(spec, _unsafe_or_damaged(spec, error)) from None
    except (OSError, ValueError, KeyError) as error:
        raise _refused(spec, _first_line(error)) from None
    finally:
        hf_logging.set_verbosity(verbosity)
    _check_loading_info(loading_info, spec)
    return model, processor


def _unsafe_or_damaged(spec: str, error: Exception) -> str:
    """Why weights cannot be read safely: a pickle payload, or a damaged or truncated file."""
    folder = Path(spec)
    name = (_weights_file(folder) if folder.is_dir() else None) or "its weights file"
    text = str(error)
    if text.startswith("Weights only load failed"):
        return (f"refused {name}: it holds more than tensors ({_unpickler_detail(text)}), and clipaudit loads "
                "weights only as safetensors or with torch's weights-only loading; convert it to model.safetensors "
                "if you trust its source")
    detail = _first_line(error) if text.strip() else "the file ends early"
    return f"{name} is damaged or truncated ({detail[:200]})"


def _unpickler_detail(text: str) -> str:
    """What torch's weights-only unpickler refused, from its long message (its wording varies by version)."""
    match = re.search(r"WeightsUnpickler error:\s*([^\n]+)", text)
    if match:
        detail = match.group(1).split(". ")[0]
    else:
        paragraphs = [part for part in text.split("\n\n") if part.strip()]
        detail = paragraphs[1] if len(paragraphs) > 2 else "not a plain tensor file"
    return " ".join(detail.split()).rstrip(".")[:200]


def _check_loading_info(loading_info: dict, spec: str) -> None:
    """Weights the checkpoint lacks, or has in another shape, would be random numbers: refuse them by name."""
    for key, what in (("missing_keys", "lacks"), ("mismatched_keys", "has in another shape")):
        names = sorted(str(item[0] if isinstance(item, tuple) else item) for item in loading_info.get(key) or ())
        if names:
            raise _refused(spec, f"its weights file {what} {len(names)} of the model's tensors (first: {names[0]}); "
                                 "the checkpoint is incomplete or for another architecture")


def _check_processor(processor, model, spec: str) -> None:
    """An image processor and a tokenizer with a vocabulary the model's text tower can embed."""
    tokenizer = getattr(processor, "tokenizer", None)
    if getattr(processor, "image_processor", None) is None:
        raise _refused(spec, f"no image processor ({IMAGE_PROCESSOR_FILES})")
    if tokenizer is None:
        raise _refused(spec, f"no tokenizer ({TOKENIZER_FILES})")
    special = set(getattr(tokenizer, "all_special_tokens", ()))
    if not set(tokenizer.get_vocab()) - special:
        raise _refused(spec, f"its tokenizer has no vocabulary beyond special tokens: tokenizer files are missing "
                             f"({TOKENIZER_FILES})")
    text_config = getattr(model.config, "text_config", model.config)
    vocab_size = getattr(text_config, "vocab_size", None)
    if isinstance(vocab_size, int) and len(tokenizer) > vocab_size:
        raise _refused(spec, f"its tokenizer has {len(tokenizer)} tokens but the text tower embeds only "
                             f"{vocab_size}; the tokenizer belongs to another model")


def wrap_hf_model(model, processor, *, spec: str, name: str, revision: str | None, device: str, dtype: str,
                  weights_sha256: str | None = None, **provenance) -> HFZeroShotModel:
    """A loaded transformers dual encoder and its processor behind the protocol, on ``device`` in ``dtype``
    (already resolved); ``provenance`` adds ModelInfo's loader fields. ``weights_sha256`` identifies the
    checkpoint's files where they are known; otherwise the loaded state dict is hashed."""
    weights_sha256 = weights_sha256 or state_dict_sha256(model)
    model = model.to(device=device, dtype=DTYPES[dtype]).eval()
    attention = use_fastest_attention(model, device=device, dtype=dtype)
    info = ModelInfo(
        spec=spec,
        name=name,
        revision=revision,
        weights_sha256=weights_sha256,
        preprocessing_sha256=_processor_sha256(processor),
        tokenizer_sha256=_tokenizer_sha256(processor),
        architecture=type(model).__name__,
        activation="sigmoid" if getattr(model, "logit_bias", None) is not None else "softmax",
        logit_scale=float(model.logit_scale.detach().float().exp().item()),
        logit_bias=_logit_bias(model),
        max_text_tokens=_max_text_tokens(model, processor),
        device=device,
        dtype=dtype,
        attention=attention,
        image_tokens=_image_tokens(model),
        **provenance,
    )
    return HFZeroShotModel(model, processor, info)


def _image_tokens(model) -> int | None:
    """Tokens a ViT image tower attends over per image (patches + class token), for batch sizing."""
    vision = getattr(model.config, "vision_config", None)
    size, patch = getattr(vision, "image_size", None), getattr(vision, "patch_size", None)
    if not isinstance(size, int) or not isinstance(patch, int) or patch <= 0:
        return None
    return (size // patch) ** 2 + 1


def use_fastest_attention(model, *, device: str, dtype: str) -> str | None:
    """Switch the model to the fastest attention kernel available and return its name: FlashAttention 2
    where the flash-attn package is installed and the model runs in fp16/bf16 on a GPU, else PyTorch's
    scaled_dot_product_attention (which itself picks a flash or memory-efficient kernel on GPUs).
    A model that supports neither keeps its own."""
    import importlib.util

    wanted = ["sdpa"]
    if device == "cuda" and dtype in ("fp16", "bf16") and importlib.util.find_spec("flash_attn") is not None:
        wanted.insert(0, "flash_attention_2")
    for implementation in wanted:
        try:
            model.set_attn_implementation(implementation)
            break
        except (AttributeError, ImportError, ValueError):  # this model or this install does not offer it
            continue
    return getattr(model.config, "_attn_implementation", None)


def _pooled(features) -> torch.Tensor:
    """transformers 5 returns an output object whose pooler_output is the projection; 4.x a tensor."""
    return features if isinstance(features, torch.Tensor) else features.pooler_output


def _looks_like_path(spec: str) -> bool:
    return spec.startswith((".", "/", "~")) or Path(spec).exists() or spec.count("/") > 1


def _first_line(error: Exception) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def state_dict_sha256(model) -> str:
    """Hash the weights as loaded, so a changed checkpoint never reuses a stale cache entry."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _processor_sha256(processor) -> str:
    image_processor = getattr(processor, "image_processor", processor)
    settings = json.loads(image_processor.to_json_string())
    settings.pop("processor_class", None)
    settings["class"] = type(image_processor).__name__.removesuffix("Pil").removesuffix("Fast")
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def _tokenizer_sha256(processor) -> str:
    tokenizer = getattr(processor, "tokenizer", processor)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    description = backend.to_str() if backend is not None else json.dumps(tokenizer.get_vocab(), sort_keys=True)
    return hashlib.sha256(description.encode()).hexdigest()


def _logit_bias(model) -> float:
    bias = getattr(model, "logit_bias", None)
    return 0.0 if bias is None else float(bias.detach().float().reshape(-1)[0].item())


def _max_text_tokens(model, processor) -> int:
    text_config = getattr(model.config, "text_config", model.config)
    positions = getattr(text_config, "max_position_embeddings", None)
    tokenizer_limit = getattr(getattr(processor, "tokenizer", None), "model_max_length", None)
    limits = [value for value in (positions, tokenizer_limit) if isinstance(value, int) and value < 100_000]
    if not limits:
        raise ModelError("cannot tell the model's text context length from its config")
    return min(limits)

