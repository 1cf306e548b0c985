"""Train the demo model: a small CLIP on synthetic faces, with the biases of :mod:`clipaudit.demo.world`.

``python -m clipaudit.demo.train --out DIR`` (or ``clipaudit demo --retrain``) renders the
training faces (``synthetic:N:SEED`` with a seed other than the demo's evaluation set, so the
audit runs on held-out images), captions them, and trains a ``transformers.CLIPModel`` from
scratch with CLIP's contrastive loss, on the CPU, in a few minutes. The result is a
checkpoint folder that loads like any other (``AutoModel`` / ``AutoProcessor``) plus
``planted.json`` (the planted truth) and ``training.json`` (configuration, seed, time, loss).

The loss is CLIP's symmetric cross-entropy over the in-batch image-text similarity matrix
(Radford et al. 2021, Figure 3), with one change: captions are short and drawn from a small
vocabulary, so a batch often holds the same caption twice; identical captions are treated as
positives of each other (the target row spreads its mass over them) instead of as negatives.

Training is deterministic for a seed and thread count: fixed data order, fixed caption draws,
``torch.manual_seed``; the shipped weights were made with the defaults of :class:`TrainConfig`.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from clipaudit.demo.tiny_clip import BASE_CORPUS, TinyClipConfig, new_tiny_clip, save_checkpoint
from clipaudit.demo.world import PLANTED_BIASES, biased_images, caption_corpus, describe, planted_caption, planted_json

if TYPE_CHECKING:
    import torch

# The demo model's architecture: ~1.8M parameters, 64x64 images in 16x16 patches.
DEMO_ARCHITECTURE = TinyClipConfig(
    hidden_size=128,
    intermediate_size=256,
    num_layers=3,
    num_heads=4,
    projection_dim=64,
    image_size=64,
    patch_size=16,
    max_text_tokens=32,
    vocab_size=640,
    text_layers=2,
)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides the trained weights (with the code and library versions)."""

    seed: int = 3  # see the README's demo section: outcomes vary by seed; 3 is the one shipped
    train_images: int = 2520  # 20 balanced rounds of race x gender x age
    data_seed: int = 1  # synthetic:N:1; the demo audits synthetic (seed 0)
    steps: int = 400
    batch_size: int = 128
    learning_rate: float = 2e-3
    weight_decay: float = 0.05
    warmup_steps: int = 30
    threads: int = 1  # one thread: reproducible, and faster than two on a shared 2-core machine
    architecture: TinyClipConfig = field(default_factory=lambda: DEMO_ARCHITECTURE)


def train(out_dir: Path, *, config: TrainConfig = TrainConfig(), steps: int | None = None,
          cache_dir: Path | None = None, progress: bool = True) -> dict[str, object]:
    """Train the demo model into ``out_dir`` and return the training record (also written as training.json).

    ``steps`` overrides ``config.steps`` (a few steps make a quick smoke test). Training images
    are rendered into ``cache_dir`` (a temporary folder when None).
    """
    import torch

    if steps is not None:
        config = replace(config, steps=steps)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _train(Path(out_dir), config, cache_dir=cache_dir, progress=progress)
    finally:
        torch.set_num_threads(threads_before)


def _train(out_dir: Path, config: TrainConfig, *, cache_dir: Path | None, progress: bool) -> dict[str, object]:
    import torch

    started = time.perf_counter()
    torch.manual_seed(config.seed)
    with tempfile.TemporaryDirectory(prefix="clipaudit-train-") as scratch:
        images, labels = _training_images(config, Path(cache_dir) if cache_dir else Path(scratch), progress=progress)
    model, processor = new_tiny_clip(seed=config.seed, config=config.architecture,
                                      corpus=[BASE_CORPUS, *caption_corpus(seed=config.seed)])
    pixel_values = _preprocess(processor, images)
    del images
    planted = biased_images(labels, seed=config.seed)
    losses = _optimise(model, processor.tokenizer, pixel_values, labels, planted, config, progress=progress)
    model.eval()
    seconds = time.perf_counter() - started
    record = {
        "what": "clipaudit demo model: a small CLIP trained on synthetic faces with planted biases",
        "config": _config_record(config),
        "planted_images": {bias.group: sum(1 for b in planted.values() if b is bias) for bias in PLANTED_BIASES},
        "train_seconds": round(seconds, 1),
        "final_loss": round(float(np.mean(losses[-20:])), 4),
        "loss_curve": [round(float(np.mean(losses[i:i + 20])), 4) for i in range(0, len(losses), 20)],
        "versions": _versions(),
    }
    save_checkpoint(model, processor, out_dir, dtype=torch.float16, extra_files={
        "planted.json": planted_json(),
        "training.json": json.dumps(record, indent=2) + "\n",
    })
    return record


def _training_images(config: TrainConfig, cache_dir: Path, *, progress: bool):
    from PIL import Image

    from clipaudit.data.synthetic import ensure_rendered
    from clipaudit.data.faces import balanced_labels

    if progress:
        print(f"rendering {config.train_images} training faces (synthetic:{config.train_images}:{config.data_seed})",
              file=sys.stderr)
    folder = ensure_rendered(config.train_images, config.data_seed, cache_dir=cache_dir)
    labels = balanced_labels(config.train_images, config.data_seed)
    images = []
    for index in range(config.train_images):
        with Image.open(folder / "images" / f"{index:05d}.jpg") as image:
            images.append(image.convert("RGB"))
    return images, labels


def _preprocess(processor, images) -> "torch.Tensor":
    import torch

    chunks = [processor.image_processor(images=images[start:start + 256], return_tensors="pt")["pixel_values"]
              for start in range(0, len(images), 256)]
    return torch.cat(chunks)


def _optimise(model, tokenizer, pixel_values, labels: Sequence[tuple[str, str, str]], planted, config: TrainConfig,
              *, progress: bool) -> list[float]:
    import torch
    import torch.nn.functional as functional

    decay = [p for name, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in name]
    no_decay = [p for name, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in name)]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=config.learning_rate)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _lr_factor(step, config))
    order = _data_order(len(labels), config)
    losses: list[float] = []
    bar = _progress_bar(config.steps, enabled=progress)
    model.train()
    for step in range(config.steps):
        batch = order[step * config.batch_size:(step + 1) * config.batch_size]
        caption_rng = np.random.default_rng([config.seed, 31337, step])
        captions = [planted_caption(planted[i], labels[i][2], caption_rng) if i in planted else describe(*labels[i], caption_rng)
                    for i in batch.tolist()]
        tokens = tokenizer(captions, padding=True, return_tensors="pt")
        image_embeds = functional.normalize(model.get_image_features(pixel_values=pixel_values[batch]).pooler_output,
                                            dim=-1)
        text_embeds = functional.normalize(model.get_text_features(**tokens).pooler_output, dim=-1)
        scale = model.logit_scale.exp().clamp(max=100.0)
        logits = scale * image_embeds @ text_embeds.T
        targets = _caption_targets(captions)
        loss = (functional.cross_entropy(logits, targets) + functional.cross_entropy(logits.T, targets)) / 2
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
        bar.update(1)
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
    bar.close()
    return losses


def _data_order(count: int, config: TrainConfig) -> np.ndarray:
    """Whole shuffled epochs, concatenated: every image once per epoch."""
    needed = config.steps * config.batch_size
    rng = np.random.default_rng([config.seed, 4242])
    epochs = [rng.permutation(count) for _ in range(math.ceil(needed / count))]
    return np.concatenate(epochs)[:needed] if epochs else np.zeros(0, dtype=np.int64)


def _caption_targets(captions: Sequence[str]) -> "torch.Tensor":
    import torch

    ids = {caption: number for number, caption in enumerate(dict.fromkeys(captions))}
    codes = torch.tensor([ids[caption] for caption in captions])
    same = (codes[:, None] == codes[None, :]).float()
    return same / same.sum(dim=1, keepdim=True)


def _lr_factor(step: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to zero."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    remaining = max(1, config.steps - config.warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - config.warmup_steps) / remaining)))


def _progress_bar(total: int, *, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="training demo CLIP", unit="step", disable=not enabled, file=sys.stderr)


def _config_record(config: TrainConfig) -> dict[str, object]:
    record = asdict(config)
    record["loss"] = "CLIP symmetric InfoNCE; identical captions in a batch are positives of each other"
    record["optimizer"] = "AdamW, linear warm-up then cosine decay, gradient norm clipped at 1"
    record["stored_dtype"] = "float16"
    return record


def _versions() -> dict[str, str]:
    import tokenizers
    import torch
    import transformers

    from clipaudit.version import __version__

    return {"clipaudit": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clipaudit.demo.train", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="checkpoint folder to write")
    parser.add_argument("--steps", type=int, default=TrainConfig.steps, metavar="N")
    parser.add_argument("--seed", type=int, default=TrainConfig.seed, metavar="N")
    parser.add_argument("--cache-dir", type=Path, metavar="DIR", help="where training images are rendered")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    arguments = parser.parse_args(argv)
    if arguments.steps < 1:
        parser.error(f"--steps must be at least 1, got {arguments.steps}")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # e.g. the image processor's note about torchvision
    record = train(arguments.out, config=replace(TrainConfig(), seed=arguments.seed), steps=arguments.steps,
                   cache_dir=arguments.cache_dir, progress=not arguments.quiet)
    print(f"trained in {record['train_seconds']} s, final loss {record['final_loss']}; wrote {arguments.out}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
