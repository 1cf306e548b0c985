"""Batch size and decode workers chosen from the machine and the model, unless the user chose.

On a GPU the tower is fast and decoding is the bottleneck: every CPU but two (the main process
and the pinned-memory thread) decodes, and batches are as large as keeps the GPU busy on short
sequences without raising the memory peak far: about :data:`GPU_TOKENS_PER_BATCH` image tokens
(256 images of ViT-L/14-336, 1024 of ViT-B/32), capped by a quarter of the free GPU memory.
On the CPU the tower and decoding share the cores: one worker decodes while the main process
runs the tower (on one or two cores they would otherwise take turns), and batches of
:data:`CPU_BATCH_SIZE`, which the CPU runs as fast as any larger size.
"""
from __future__ import annotations

from dataclasses import dataclass

GPU_TOKENS_PER_BATCH = 150_000
GPU_BATCH_RANGE = (32, 1024)
GPU_MAX_WORKERS = 32
CPU_BATCH_SIZE = 64
DEFAULT_IMAGE_TOKENS = 197  # ViT-B/16 at 224 px, for models that do not say
ACTIVATION_BYTES_PER_TOKEN = 64 * 1024  # generous: hidden 1024 x MLP 4x x fp16 x 8 live tensors


@dataclass(frozen=True)
class Batching:
    """Images per model call and DataLoader decode workers, and whether each was chosen for the user."""

    batch_size: int
    num_workers: int
    batch_size_chosen: bool
    num_workers_chosen: bool


def choose_batching(model, *, batch_size: int | None, num_workers: int | None, cpus: int) -> Batching:
    """``batch_size`` / ``num_workers`` as given, or chosen where None (see the module docstring)."""
    # Only model.info is read: a model whose embeddings are all cached need not be loaded for this.
    on_gpu = model.info.device == "cuda"
    if num_workers is None:
        workers = max(1, min(cpus - 2, GPU_MAX_WORKERS)) if on_gpu else (1 if cpus > 1 else 0)
    else:
        workers = num_workers
    if batch_size is None:
        size = _gpu_batch_size(model) if on_gpu else CPU_BATCH_SIZE
    else:
        size = batch_size
    return Batching(size, workers, batch_size is None, num_workers is None)


def _gpu_batch_size(model) -> int:
    """The largest power of two with about GPU_TOKENS_PER_BATCH tokens that fits a quarter of free memory."""
    import torch

    tokens = model.info.image_tokens or DEFAULT_IMAGE_TOKENS
    wanted = GPU_TOKENS_PER_BATCH // tokens
    free_bytes, _ = torch.cuda.mem_get_info(torch.device("cuda"))
    fits = free_bytes // 4 // (tokens * ACTIVATION_BYTES_PER_TOKEN)
    low, high = GPU_BATCH_RANGE
    size = max(low, min(high, wanted, fits))
    return 1 << (size.bit_length() - 1)
