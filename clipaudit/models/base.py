"""The small protocol every model adapter follows.

The evaluator needs only: preprocess images, encode images, encode prompts, count tokens, and
the model's own logit scale, bias and activation. Everything else about a model stays inside
its adapter.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:  # keep torch out of import time for modules that only need the types
    import torch
    from PIL import Image

Activation = Literal["softmax", "sigmoid"]


@dataclass(frozen=True)
class ModelInfo:
    """What the manifest and the cache keys record about a model."""

    spec: str                # what the user asked for: a hub id, a folder or 'demo'
    name: str                # model id or folder name
    revision: str | None     # hub commit hash when known
    weights_sha256: str      # hash of the checkpoint's files (or, where they are unknown, of the loaded state dict)
    preprocessing_sha256: str  # hash of the image processor's configuration
    tokenizer_sha256: str    # hash of the tokenizer (vocabulary, merges, normalisation)
    architecture: str        # e.g. 'CLIPModel', 'SiglipModel'
    activation: Activation   # how logits become probabilities: softmax (CLIP), sigmoid (SigLIP)
    logit_scale: float       # multiplier on cosine similarity (already exponentiated)
    logit_bias: float        # added after scaling (SigLIP); 0.0 for CLIP
    max_text_tokens: int     # the text tower's context length, special tokens included
    device: str
    dtype: str
    loader: str = "transformers"  # which code ran the model: transformers, open_clip, or a conversion into transformers
    checkpoint_sha256: str | None = None  # sha256 of the checkpoint file, when one file was loaded
    open_clip_version: str | None = None  # when open_clip ran the model
    attention: str | None = None  # the attention kernel transformers runs (sdpa, flash_attention_2, ...)
    image_tokens: int | None = None  # tokens the image tower attends over per image (patches + class token)


class ZeroShotModel(Protocol):
    """A model with an image tower and a text tower in one embedding space.

    Adapters whose image processor splits into uint8 and device work (:mod:`clipaudit.models.pixels`)
    also offer ``pixel_spec``, ``device``, ``normalise_pixels`` and ``image_features`` (see
    :class:`clipaudit.models.hf.HFZeroShotModel`); the encoder uses them where they exist.
    """

    info: ModelInfo

    def preprocess(self, image: "Image.Image") -> "torch.Tensor":
        """One RGB image -> the pixel tensor the image tower takes (no batch dimension)."""

    def encode_images(self, pixel_values: "torch.Tensor") -> "torch.Tensor":
        """A batch of pixel tensors -> projected image embeddings (not normalised), float32 on CPU."""

    def encode_texts(self, prompts: list[str]) -> "torch.Tensor":
        """Prompts -> projected text embeddings (not normalised), float32 on CPU."""

    def count_tokens(self, prompt: str) -> int:
        """Tokens the text tower would see for `prompt`, special tokens included."""
