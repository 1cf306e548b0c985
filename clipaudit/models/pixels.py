"""A model's image preprocessing split in two: uint8 work for decode workers, float work for the device.

transformers' CLIP and SigLIP image processors resize an 8-bit RGB image with Pillow, centre crop
it (padding with zeros where the image is smaller than the crop), then rescale (``uint8 -> float64
* factor -> float32``) and normalise (``(x - mean) / std`` in float32). The first two steps stay in
8 bits, so decode workers do them and send a fixed-size uint8 tensor per image (a quarter of the
bytes of float32 pixels). The last two map each of the 256 values of a channel to one float, so
they are a lookup table built with the processor's own arithmetic: the device turns a uint8 batch
into the very floats the processor would have produced (``tests/test_pixels.py`` holds it to the
processor for CLIP and SigLIP configurations and for awkward images).

A processor this module does not know (another class, padding, resizing to a longest edge, or an
output whose size depends on the image) has no :class:`PixelSpec`; such models keep the
processor's own per-image path.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch and PIL are imported where they are used
    import torch
    from PIL import Image

# The image processors whose steps are exactly resize (Pillow), centre crop, rescale, normalise.
SPLITTABLE_PROCESSORS = frozenset({"CLIPImageProcessor", "SiglipImageProcessor"})
CHANNELS = 3


@dataclass(frozen=True)
class PixelSpec:
    """The image processor's settings, as the two halves of the split use them (picklable)."""

    resize_shortest_edge: int | None  # resize so the shorter side has this length, keeping the aspect
    resize_to: tuple[int, int] | None  # or resize to exactly (height, width)
    resample: int                      # Pillow's filter number (3 = bicubic)
    crop: tuple[int, int] | None       # centre crop to (height, width)
    rescale_factor: float | None       # None: no rescaling
    mean: tuple[float, ...] | None     # None: no normalisation
    std: tuple[float, ...] | None

    @property
    def shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of every preprocessed image."""
        height, width = self.crop or self.resize_to
        return CHANNELS, height, width

    def to_uint8(self, image: "Image.Image") -> np.ndarray:
        """An 8-bit RGB image -> its resized and cropped pixels, (channels, height, width) uint8."""
        if self.resize_to is not None:
            image = image.resize(self.resize_to[::-1], resample=self.resample)
        elif self.resize_shortest_edge is not None:
            height, width = shortest_edge_size(image.height, image.width, self.resize_shortest_edge)
            image = image.resize((width, height), resample=self.resample)
        pixels = np.asarray(image, dtype=np.uint8)
        if self.crop is not None:
            pixels = centre_crop(pixels, self.crop)
        return pixels.transpose(2, 0, 1)

    def value_table(self) -> np.ndarray:
        """(channels, 256) float32: what rescale and normalise make of each uint8 value, computed with
        the processor's own dtypes and order of operations."""
        values = np.arange(256, dtype=np.uint8)
        scaled = values if self.rescale_factor is None else (values.astype(np.float64) * self.rescale_factor).astype(np.float32)
        scaled = np.broadcast_to(scaled.astype(np.float32), (CHANNELS, 256))
        if self.mean is None:
            return np.ascontiguousarray(scaled)
        mean = np.asarray(self.mean, dtype=np.float32)[:, None]
        std = np.asarray(self.std, dtype=np.float32)[:, None]
        return np.ascontiguousarray((scaled - mean) / std, dtype=np.float32)


class DeviceNormaliser:
    """uint8 batches (N, 3, H, W) on the device -> normalised pixel values in the model's dtype."""

    def __init__(self, spec: PixelSpec, *, device: "torch.device", dtype: "torch.dtype"):
        import torch

        self.dtype = dtype
        self._table = torch.from_numpy(spec.value_table()).reshape(-1).to(device)
        self._offsets = (torch.arange(CHANNELS, dtype=torch.int64, device=device) * 256).view(1, CHANNELS, 1, 1)

    def __call__(self, pixels: "torch.Tensor") -> "torch.Tensor":
        index = pixels.to(self._offsets.dtype) + self._offsets
        return self._table[index].to(self.dtype)


def pixel_spec_of(image_processor) -> PixelSpec | None:
    """The split form of a transformers image processor; None where its steps are not the known ones."""
    name = type(image_processor).__name__.removesuffix("Pil").removesuffix("Fast")
    if name not in SPLITTABLE_PROCESSORS or getattr(image_processor, "do_pad", False):
        return None
    shortest_edge = resize_to = crop = None
    if getattr(image_processor, "do_resize", False):
        size = image_processor.size
        if _field(size, "longest_edge") or _field(size, "max_height") or _field(size, "max_pixels"):
            return None
        if _field(size, "height") and _field(size, "width"):
            resize_to = (int(_field(size, "height")), int(_field(size, "width")))
        elif _field(size, "shortest_edge"):
            shortest_edge = int(_field(size, "shortest_edge"))
        else:
            return None
    if getattr(image_processor, "do_center_crop", False):
        crop_size = image_processor.crop_size
        crop = (int(_field(crop_size, "height")), int(_field(crop_size, "width")))
    if crop is None and resize_to is None:
        return None  # the output size would depend on each image
    normalise = bool(getattr(image_processor, "do_normalize", False))
    return PixelSpec(
        resize_shortest_edge=shortest_edge, resize_to=resize_to,
        resample=int(image_processor.resample if image_processor.resample is not None else 2),  # Pillow's bilinear
        crop=crop,
        rescale_factor=float(image_processor.rescale_factor) if getattr(image_processor, "do_rescale", False) else None,
        mean=_channels(image_processor.image_mean) if normalise else None,
        std=_channels(image_processor.image_std) if normalise else None,
    )


def shortest_edge_size(height: int, width: int, shortest_edge: int) -> tuple[int, int]:
    """(height, width) with the shorter side ``shortest_edge`` and the longer one truncated, as
    transformers' ``get_resize_output_image_size`` computes it."""
    short, long = (width, height) if width <= height else (height, width)
    new_long = int(shortest_edge * long / short)
    return (new_long, shortest_edge) if width <= height else (shortest_edge, new_long)


def centre_crop(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, C) -> the centre (height, width), zero-padded where the image is smaller, placed as
    transformers' ``center_crop`` places it."""
    height, width = pixels.shape[:2]
    crop_height, crop_width = size
    top, left = (height - crop_height) // 2, (width - crop_width) // 2
    if top >= 0 and left >= 0:
        return pixels[top : top + crop_height, left : left + crop_width]
    padded_height, padded_width = max(crop_height, height), max(crop_width, width)
    pad_top, pad_left = -(-(padded_height - height) // 2), -(-(padded_width - width) // 2)
    padded = np.zeros((padded_height, padded_width, pixels.shape[2]), dtype=pixels.dtype)
    padded[pad_top : pad_top + height, pad_left : pad_left + width] = pixels
    top, left = top + pad_top, left + pad_left
    return padded[max(0, top) : top + crop_height, max(0, left) : left + crop_width]


def _field(size, key: str):
    """A size setting from transformers' SizeDict (5.x) or a plain dict (4.x)."""
    return size.get(key) if isinstance(size, dict) else getattr(size, key, None)


def _channels(values) -> tuple[float, ...]:
    if isinstance(values, (int, float)):
        return (float(values),) * CHANNELS
    return tuple(float(value) for value in values)
