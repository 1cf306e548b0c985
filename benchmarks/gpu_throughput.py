"""How close does clipaudit's image encoding come to the hardware? One run prints:

  1. the matmul rate of this device, measured here (bf16 on a GPU, fp32 on the CPU);
  2. the image tower alone on random pixels: img/s and its share of that matmul rate;
  3. the loader alone (read, decode, resize and crop in DataLoader workers; no model): img/s;
  4. clipaudit's encoding (loader + device normalisation + tower), cold (the first call: workers
     start, kernels warm up, a --compile compiles) and warm (model and files already warm);
  5. ``clipaudit audit`` wall time end to end, with a cold cache and again with it warm;
  6. transformers' ``zero-shot-image-classification`` pipeline on the same images, and the ratio;
  7. agreement of reduced precision with fp32: fp16 on the GPU against fp32 on the CPU (bf16
     against fp32 on the CPU with --small): identical top-1 share and max |logit difference|.

The model has ViT-L/14-336's shapes (CLIPConfig, random weights: nothing is downloaded) and the
images are FairFace-val-sized (10,954 synthetic 224-px JPEGs in FairFace's layout). ``--small``
runs the same on the CPU with the tiny demo-sized CLIP and 300 images (under a minute on two
cores). CUDA is used where torch sees a GPU; neither torchvision nor open_clip is needed. The
rates of 2-4 are each the best of three turns taken in rotation, so that load from other
processes on a shared machine falls on all of them alike.

Usage: python benchmarks/gpu_throughput.py [--small] [--images N] [--batch-size N] [--num-workers N]
                                           [--compile] [--work DIR]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from clipaudit.embed.batching import choose_batching
from clipaudit.embed.encoder import encode_rows, normalised, pixel_chunk_loader
from clipaudit.models import load_model
from clipaudit.pipeline.options import available_cpus
from clipaudit.vocabulary import FAIRFACE_VOCABULARY

FAIRFACE_VAL_IMAGES = 10_954
SMALL_IMAGES = 300
IMAGE_SIZE = 224
AGREEMENT_IMAGES = 48
ROUNDS = 3
VIT_L_14_336 = dict(
    vision=dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                image_size=336, patch_size=14),
    text=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
              max_position_embeddings=77, vocab_size=49408),
    projection_dim=768,
)
TAXONOMIES = ("fairface_demographics", "clip_denigration")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="CPU, tiny model, a few hundred images")
    parser.add_argument("--images", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None, help="default: clipaudit's own choice")
    parser.add_argument("--num-workers", type=int, default=None, help="default: clipaudit's own choice")
    parser.add_argument("--compile", action="store_true", help="torch.compile the image tower")
    parser.add_argument("--work", type=Path, default=None, help="folder for the model and images (kept)")
    arguments = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    device = "cpu" if arguments.small or not torch.cuda.is_available() else "cuda"
    count = arguments.images or (SMALL_IMAGES if arguments.small else FAIRFACE_VAL_IMAGES)
    work = arguments.work or Path(tempfile.mkdtemp(prefix="clipaudit-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        run(arguments, device=device, count=count, work=work)
    finally:
        if arguments.work is None:
            shutil.rmtree(work, ignore_errors=True)


def run(arguments, *, device: str, count: int, work: Path) -> None:
    started = time.perf_counter()
    model_dir = build_model(work / "model", small=arguments.small)
    data_dir = make_fairface_folder(work / "fairface", count)
    print(f"device: {describe_device(device)}; {available_cpus()} CPUs (load average {os.getloadavg()[0]:.1f} "
          f"before the run); torch {torch.__version__}")
    print(f"model: {'tiny CLIP (demo shapes)' if arguments.small else 'CLIP with ViT-L/14-336 shapes'}, random "
          f"weights; {count:,} synthetic {IMAGE_SIZE}-px JPEGs in FairFace's layout (setup {time.perf_counter() - started:.0f} s)")

    from clipaudit.data import load_dataset

    dataset = load_dataset(f"fairface:{data_dir}", cache_dir=work / "data-cache")
    model = load_model(str(model_dir), device=device, dtype="auto", cache_dir=work / "cache", compile=arguments.compile)
    batching = choose_batching(model, batch_size=arguments.batch_size, num_workers=arguments.num_workers,
                               cpus=available_cpus())
    print(f"dtype {model.info.dtype}, attention {model.info.attention}, compiled {model.compiled}; batch size "
          f"{batching.batch_size}, {batching.num_workers} decode workers"
          f"{' (chosen by clipaudit)' if batching.batch_size_chosen and batching.num_workers_chosen else ''}")

    rows = range(len(dataset))
    cold = encode_rate(model, dataset, rows, batching)  # first: workers start, kernels and files are cold
    # Tower, loader and encoding are measured in turns, each the best of its turns, so that load
    # from other processes on a shared machine falls on all three alike and shows less.
    matmul = matmul_rate(device)
    flops = image_tower_flops(model)
    tower = loader = warm = 0.0
    for _ in range(ROUNDS):
        tower = max(tower, tower_rate(model, batching.batch_size, seconds=2 if device == "cpu" else 5))
        loader = max(loader, loader_rate(model, dataset, batching))
        warm = max(warm, encode_rate(model, dataset, rows, batching))
    limit = min(tower, loader)
    print(f"matmul rate ({'bf16' if device == 'cuda' else 'fp32'}):      {matmul / 1e12:8.2f} TFLOP/s")
    print(f"image tower:                {tower:8.1f} img/s  ({flops / 1e9:.2f} GFLOP/img: "
          f"{100 * tower * flops / matmul:.0f}% of the matmul rate)")
    print(f"loader (decode+preprocess): {loader:8.1f} img/s  (no model)")
    print(f"clipaudit encode, cold:     {cold:8.1f} img/s")
    print(f"clipaudit encode, warm:     {warm:8.1f} img/s  ({warm / tower:.2f}x the tower, "
          f"{warm / limit:.2f}x the slower of loader and tower)")
    del model

    cold_wall, warm_wall = audit_walls(model_dir, data_dir, work / "audit-cache", work / "audit", arguments)
    print(f"clipaudit audit, cold cache: {cold_wall:7.1f} s wall  ({count / cold_wall:.0f} img/s end to end)")
    print(f"clipaudit audit, warm cache: {warm_wall:7.1f} s wall")

    baseline = pipeline_rate(model_dir, dataset, device)
    print(f"transformers pipeline:      {baseline:8.1f} img/s  (zero-shot-image-classification, batch 64)")
    print(f"clipaudit / pipeline:       {warm / baseline:8.2f}x  (encode, warm); "
          f"{count / cold_wall / baseline:.2f}x (whole cold audit)")

    low, reference = ("fp16", "cuda") if device == "cuda" else ("bf16", "cpu")
    same, worst = agreement(model_dir, dataset, low=low, low_device=reference, cache=work / "cache")
    print(f"{low} on {reference} vs fp32 on cpu, {AGREEMENT_IMAGES} images: {100 * same:.1f}% identical predictions, "
          f"max |Δ logit| {worst:.4f}")
    print(f"total benchmark time: {time.perf_counter() - started:.0f} s (load average {os.getloadavg()[0]:.1f} after)")


def describe_device(device: str) -> str:
    if device == "cuda":
        return f"{torch.cuda.get_device_name()} (CUDA {torch.version.cuda})"
    return "CPU"


def build_model(folder: Path, *, small: bool) -> Path:
    """A saved checkpoint (config, safetensors, processor, tokenizer), loaded back like any other."""
    if (folder / "config.json").is_file():
        return folder
    from clipaudit.demo.tiny_clip import BASE_CORPUS, build_tiny_clip, save_checkpoint, train_tokenizer

    if small:
        return build_tiny_clip(folder, seed=0)
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    tokenizer = train_tokenizer([BASE_CORPUS], vocab_size=512)  # only prompt lengths matter here
    tokenizer.model_max_length = 77
    shapes = VIT_L_14_336
    config = CLIPConfig(
        text_config=dict(shapes["text"], bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id),
        vision_config=shapes["vision"], projection_dim=shapes["projection_dim"])
    torch.manual_seed(0)
    model = CLIPModel(config).eval()
    size = shapes["vision"]["image_size"]
    processor = CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": size},
                                                                 crop_size={"height": size, "width": size}),
                              tokenizer=tokenizer)
    return save_checkpoint(model, processor, folder, dtype=torch.float16)


def make_fairface_folder(folder: Path, count: int) -> Path:
    """fairface_label_val.csv and val/N.jpg, like the FairFace release (synthetic pictures)."""
    labels = folder / "fairface_label_val.csv"
    if labels.is_file():
        return folder
    (folder / "val").mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(max_workers=available_cpus()) as pool:
        list(pool.map(_write_jpeg, [(folder / "val" / f"{index + 1}.jpg", index) for index in range(count)],
                      chunksize=64))
    ages, genders, races = (list(FAIRFACE_VOCABULARY[name]) for name in ("age", "gender", "race"))
    lines = ["file,age,gender,race,service_test"]
    lines += [f"val/{index + 1}.jpg,{ages[index % len(ages)]},{genders[index % 2]},{races[index % len(races)]},True"
              for index in range(count)]
    labels.write_text("\n".join(lines) + "\n")
    return folder


def _write_jpeg(job) -> None:
    """A smooth random picture with fine noise: JPEG decodes it at a realistic cost."""
    path, index = job
    rng = np.random.default_rng(index)
    coarse = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).resize((IMAGE_SIZE, IMAGE_SIZE),
                                                                                      Image.Resampling.BICUBIC)
    pixels = np.asarray(coarse, dtype=np.int16) + rng.integers(-12, 13, (IMAGE_SIZE, IMAGE_SIZE, 3))
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=90)


def synchronise(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def matmul_rate(device: str) -> float:
    """FLOP/s of a large square matmul (bf16 on a GPU, fp32 on the CPU), best of a few runs."""
    size, dtype = (8192, torch.bfloat16) if device == "cuda" else (1024, torch.float32)
    left = torch.randn(size, size, device=device, dtype=dtype)
    right = torch.randn(size, size, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(8 if device == "cuda" else 4):
        synchronise(device)
        mark = time.perf_counter()
        for _ in range(10 if device == "cuda" else 3):
            left @ right
        synchronise(device)
        best = min(best, (time.perf_counter() - mark) / (10 if device == "cuda" else 3))
    return 2 * size**3 / best


def image_tower_flops(model) -> float:
    """Multiply-adds x 2 of one image through the ViT (patch embedding, blocks, projection)."""
    vision = model.model.config.vision_config
    tokens, width, inner = model.info.image_tokens, vision.hidden_size, vision.intermediate_size
    patch_inputs = 3 * vision.patch_size**2
    per_block = 2 * tokens * width * (4 * width) + 2 * tokens * width * inner * 2 + 2 * 2 * tokens**2 * width
    projection = 2 * width * model.model.config.projection_dim
    return 2 * (tokens - 1) * patch_inputs * width + vision.num_hidden_layers * per_block + projection


def tower_rate(model, batch_size: int, *, seconds: float) -> float:
    """img/s of the image tower on random pixels already on the device (model dtype)."""
    channels, height, width = model.pixel_spec.shape
    pixels = torch.randn(batch_size, channels, height, width, device=model.device)
    for _ in range(3):
        model.image_features(pixels)
    synchronise(model.device)
    batches, mark = 0, time.perf_counter()
    while batches < 5 or time.perf_counter() - mark < seconds:
        model.image_features(pixels)
        batches += 1
        if batches % 5 == 0:
            synchronise(model.device)
    synchronise(model.device)
    return batches * batch_size / (time.perf_counter() - mark)


def loader_rate(model, dataset, batching) -> float:
    """img/s of reading, decoding, resizing and cropping in the workers, with no model."""
    mark, images = time.perf_counter(), 0
    for rows, pixels, bad, _ in pixel_chunk_loader(model, dataset, list(range(len(dataset))), batching.batch_size,
                                                batching.num_workers):
        images += len(rows) + len(bad)
    return images / (time.perf_counter() - mark)


def encode_rate(model, dataset, rows, batching) -> float:
    mark = time.perf_counter()
    encode_rows(model, dataset, rows, batch_size=batching.batch_size, num_workers=batching.num_workers, progress=False)
    synchronise(model.device)
    return len(rows) / (time.perf_counter() - mark)


def audit_walls(model_dir: Path, data_dir: Path, cache: Path, out: Path, arguments) -> tuple[float, float]:
    """Wall seconds of `python -m clipaudit audit`, first with an empty cache, then with it warm."""
    command = [sys.executable, "-m", "clipaudit", "audit", "--data", f"fairface:{data_dir}", "--model", str(model_dir),
               "--cache-dir", str(cache), "--quiet"]
    for taxonomy in TAXONOMIES:
        command += ["--taxonomy", taxonomy]
    if arguments.batch_size:
        command += ["--batch-size", str(arguments.batch_size)]
    if arguments.num_workers is not None:
        command += ["--num-workers", str(arguments.num_workers)]
    if arguments.compile:
        command.append("--compile")
    if arguments.small:
        command += ["--device", "cpu"]
    walls = []
    for attempt in ("cold", "warm"):
        mark = time.perf_counter()
        completed = subprocess.run([*command, "--out", str(out / attempt)], capture_output=True, text=True)
        walls.append(time.perf_counter() - mark)
        if completed.returncode != 0:
            raise SystemExit(f"clipaudit audit failed ({completed.returncode}): {completed.stderr[-2000:]}")
    return walls[0], walls[1]


def race_prompts() -> list[str]:
    return [f"a photo of a {race.replace('_', ' ')} person." for race in FAIRFACE_VOCABULARY["race"]]


def pipeline_rate(model_dir: Path, dataset, device: str) -> float:
    """img/s of transformers' zero-shot-image-classification pipeline (fp16 on a GPU) on the same images."""
    from transformers import pipeline
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    classifier = pipeline("zero-shot-image-classification", model=str(model_dir), device=device,
                          dtype=torch.float16 if device == "cuda" else torch.float32)
    count = min(len(dataset), 2048 if device == "cuda" else len(dataset))
    paths = [str(dataset.image_path(index)) for index in range(count)]
    labels = [race.replace("_", " ") for race in FAIRFACE_VOCABULARY["race"]]
    classifier(paths[:64], candidate_labels=labels, batch_size=64)  # warm-up
    mark = time.perf_counter()
    classifier(paths, candidate_labels=labels, batch_size=64, hypothesis_template="a photo of a {} person.")
    return count / (time.perf_counter() - mark)


def agreement(model_dir: Path, dataset, *, low: str, low_device: str, cache: Path) -> tuple[float, float]:
    """(share of identical top-1 predictions, max |logit difference|) of `low` precision against fp32 on the CPU."""
    rows = range(min(AGREEMENT_IMAGES, len(dataset)))
    logits = []
    for dtype, device in ((low, low_device), ("fp32", "cpu")):
        model = load_model(str(model_dir), device=device, dtype=dtype, cache_dir=cache)
        _, images, _, _ = encode_rows(model, dataset, rows, batch_size=AGREEMENT_IMAGES, num_workers=0, progress=False)
        texts = normalised(model.encode_texts(race_prompts()).numpy())
        logits.append(model.info.logit_scale * images @ texts.T + model.info.logit_bias)
        del model
    reduced, full = logits
    return float(np.mean(reduced.argmax(1) == full.argmax(1))), float(np.abs(reduced - full).max())


if __name__ == "__main__":
    main()
