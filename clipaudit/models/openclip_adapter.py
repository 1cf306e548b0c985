"""open_clip behind the :class:`~clipaudit.models.base.ZeroShotModel` protocol, where open_clip imports.

open_clip's own model, preprocessing and tokenizer run; nothing is converted.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from PIL import Image

from clipaudit.errors import ModelError
from clipaudit.models.base import ModelInfo
from clipaudit.models.checkpoint_files import checkpoint_file_sha256
from clipaudit.models.hf import DTYPES, state_dict_sha256
from clipaudit.models.open_clip_spec import is_file_source
from clipaudit.models.openclip import display_name


class OpenClipZeroShotModel:
    def __init__(self, model, preprocess, tokenizer, info: ModelInfo):
        self.model, self._preprocess, self.tokenizer, self.info = model, preprocess, tokenizer, info
        self._device, self._dtype = torch.device(info.device), DTYPES[info.dtype]

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        return self._preprocess(image)

    @torch.inference_mode()
    def encode_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(pixel_values.to(self._device, self._dtype)).float().cpu()

    @torch.inference_mode()
    def encode_texts(self, prompts: list[str]) -> torch.Tensor:
        too_long = [prompt for prompt in prompts if self.count_tokens(prompt) > self.info.max_text_tokens]
        if too_long:
            raise ModelError(f"prompt {too_long[0]!r} has {self.count_tokens(too_long[0])} tokens; "
                             f"the model's text context is {self.info.max_text_tokens}")
        return self.model.encode_text(self.tokenizer(prompts).to(self._device)).float().cpu()

    def count_tokens(self, prompt: str) -> int:
        # open_clip's tokenizers truncate to the context; count the untruncated BPE ids plus start and end.
        return len(self.tokenizer.encode(prompt)) + 2


def load_with_open_clip(open_clip, spec: str, arch: str, source: str, *, device: str, dtype: str,
                        cache_dir: Path | None) -> OpenClipZeroShotModel:
    """``open_clip`` is the imported module (see :func:`clipaudit.models.openclip.importable_open_clip`)."""
    pretrained = source if not is_file_source(source) else str(source)
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=pretrained, device=device)
        tokenizer = open_clip.get_tokenizer(arch)
    except Exception as error:  # open_clip raises RuntimeError, ValueError, OSError... for a bad name or file
        raise ModelError(f"--model {spec!r}: open_clip cannot load it: {' '.join(str(error).split())[:200]}") from None
    # A checkpoint file is identified by its (memoised) digest; a pretrained tag's download, which
    # open_clip resolves itself, by the weights it loaded.
    checkpoint_sha256 = checkpoint_file_sha256(Path(source).expanduser(), cache_dir=cache_dir) \
        if is_file_source(source) else None
    weights_sha256 = checkpoint_sha256 or state_dict_sha256(model)
    model = model.to(device=device, dtype=DTYPES[dtype]).eval()
    bias = getattr(model, "logit_bias", None)
    info = ModelInfo(
        spec=spec, name=display_name(arch, source), revision=None, weights_sha256=weights_sha256,
        preprocessing_sha256=hashlib.sha256(repr(preprocess).encode()).hexdigest(),
        tokenizer_sha256=hashlib.sha256(f"{type(tokenizer).__name__}:{arch}".encode()).hexdigest(),
        architecture=f"open_clip {arch}", activation="sigmoid" if bias is not None else "softmax",
        logit_scale=float(model.logit_scale.detach().float().exp().item()),
        logit_bias=0.0 if bias is None else float(bias.detach().float().reshape(-1)[0].item()),
        max_text_tokens=int(getattr(tokenizer, "context_length", 77)), device=device, dtype=dtype,
        loader="open_clip", open_clip_version=getattr(open_clip, "__version__", None),
        checkpoint_sha256=checkpoint_sha256,
    )
    return OpenClipZeroShotModel(model, preprocess, tokenizer, info)
