"""Any decoded image -> the upright 8-bit RGB image a CLIP processor expects.

Pillow's own ``convert("RGB")`` clips deep images instead of scaling them (a 16-bit
greyscale PNG comes out almost white) and drops transparency onto whatever colour the
transparent pixels happen to hold. The rules here, the same for every dataset:

* upright as the EXIF orientation tag says; only the first frame of an animation or stack;
* 16-bit greyscale (``I;16``, ``I;16L``, ``I;16B``, ``I;16N``): scaled from 0..65535 to 0..255;
* 32-bit integer (``I``): scaled like 16-bit when every value is in 0..65535 (how 16-bit
  files usually arrive in this mode), otherwise from its actual minimum..maximum;
* float (``F``): scaled from 0..1 when every finite value is in 0..1, otherwise from its
  actual finite minimum..maximum; NaN and infinities count as the minimum;
* transparency (``RGBA``, ``LA``, ``PA``, palettes and PNGs with a transparent colour) is
  composited onto white, which is what image viewers show;
* everything else (``1``, ``L``, ``P``, ``CMYK``, ``YCbCr``, ...) through Pillow's conversion.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

_SIXTEEN_BIT_MODES: frozenset[str] = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_SIXTEEN_BIT_MAX = 65535
_WHITE = (255, 255, 255)


def as_upright_rgb(image: Image.Image) -> Image.Image:
    """A new 8-bit RGB image: upright, deep greys scaled, transparency on white."""
    upright = ImageOps.exif_transpose(image) or image
    if upright.mode in _SIXTEEN_BIT_MODES or upright.mode in ("I", "F"):
        upright = _as_8_bit_grey(upright)
    if _has_transparency(upright):
        rgba = upright.convert("RGBA")
        background = Image.new("RGB", rgba.size, _WHITE)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return upright.convert("RGB")


def _as_8_bit_grey(image: Image.Image) -> Image.Image:
    values = np.asarray(image).astype(np.float64)
    low, high = _input_range(values, image.mode)
    finite = np.where(np.isfinite(values), values, low)
    span = high - low
    scaled = (finite - low) * (255.0 / span) if span > 0 else np.zeros_like(finite)
    grey = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return Image.fromarray(grey)


def _input_range(values: np.ndarray, mode: str) -> tuple[float, float]:
    """The input values that become 0 and 255."""
    if mode in _SIXTEEN_BIT_MODES:
        return 0.0, float(_SIXTEEN_BIT_MAX)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    if mode == "I" and low >= 0 and high <= _SIXTEEN_BIT_MAX:
        return 0.0, float(_SIXTEEN_BIT_MAX)
    if mode == "F" and low >= 0 and high <= 1:
        return 0.0, 1.0
    return low, high


def _has_transparency(image: Image.Image) -> bool:
    bands = image.getbands()
    return "A" in bands or "a" in bands or "transparency" in image.info
