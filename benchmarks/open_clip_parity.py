"""Does the conversion into transformers give open_clip's own numbers? (needs open_clip installed)

For each architecture, open_clip builds the model (``--pretrained TAG`` weights, or a random
initialisation when none is given, which is enough to check the mapping), its state dict is saved
as a checkpoint file, and clipaudit loads that file twice: through open_clip, and through the
conversion into transformers' CLIPModel that runs where open_clip does not import. Both encode
the same images (open_clip's preprocessing for both, so only the networks are compared) and the
same prompts; the script prints the largest difference of the normalised embeddings and of the
logits, and fails if a logit differs by more than 1e-3 in fp32.

Usage: python benchmarks/open_clip_parity.py [--arch ViT-B-32 ViT-L-14-336 ...] [--pretrained TAG] [--device cuda]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from clipaudit.models.openclip import _load_converted, importable_open_clip
from clipaudit.models.openclip_adapter import load_with_open_clip

PROMPTS = ["a photo of a man.", "a photo of a woman.", "a photo of a thief.", "a photo of a gorilla.",
           "a photo of a person 20-29 years old", "a photo of a latino/hispanic woman"]
TOLERANCE = 1e-3


def images(count: int, seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 255, (256, 320, 3), dtype=np.uint8)) for _ in range(count)]


def normalised(vectors: torch.Tensor) -> torch.Tensor:
    return vectors / vectors.norm(dim=-1, keepdim=True)


def compare(arch: str, pretrained: str | None, device: str) -> float:
    open_clip = importable_open_clip()
    model = open_clip.create_model(arch, pretrained=pretrained)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "checkpoint.bin"
        torch.save(model.state_dict(), path)
        spec = f"open_clip:{arch}:{path}"
        reference = load_with_open_clip(open_clip, spec, arch, str(path), device=device, dtype="fp32")
        converted = _load_converted(spec, arch, str(path), device=device, dtype="fp32")
        pixels = torch.stack([reference.preprocess(image) for image in images(8)])
        image_a, image_b = (normalised(m.encode_images(pixels)) for m in (reference, converted))
        text_a, text_b = (normalised(m.encode_texts(PROMPTS)) for m in (reference, converted))
    logits_a = reference.info.logit_scale * image_a @ text_a.T
    logits_b = converted.info.logit_scale * image_b @ text_b.T
    image_gap = (image_a - image_b).abs().max().item()
    text_gap = (text_a - text_b).abs().max().item()
    logit_gap = (logits_a - logits_b).abs().max().item()
    print(f"{arch:<22} {pretrained or 'random init':<22} image {image_gap:.2e}  text {text_gap:.2e}  "
          f"logits {logit_gap:.2e}  {'ok' if logit_gap <= TOLERANCE else 'FAIL'}")
    return logit_gap


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", nargs="+", default=["ViT-B-32", "ViT-B-16-quickgelu", "ViT-L-14-336"])
    parser.add_argument("--pretrained", default=None, help="an open_clip pretrained tag (default: random weights)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    arguments = parser.parse_args()
    if importable_open_clip() is None:
        print("open_clip does not import here (pip install open_clip_torch with a matching torchvision)")
        return 2
    torch.manual_seed(0)
    worst = max(compare(arch, arguments.pretrained, arguments.device) for arch in arguments.arch)
    print(f"largest logit difference {worst:.2e} (tolerance {TOLERANCE:g}, fp32, {arguments.device})")
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
