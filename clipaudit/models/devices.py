"""Which device and precision a run uses, decided without importing torch where the answer is
certain without it (a machine with no GPU driver runs on the CPU), so that a run whose every
embedding is cached starts without torch."""
from __future__ import annotations

from pathlib import Path

from clipaudit.errors import ModelError

DTYPE_NAMES = ("fp32", "fp16", "bf16")
# Present on any machine where torch could see a GPU: NVIDIA's driver, AMD's (ROCm), WSL's.
GPU_DRIVER_PATHS = ("/proc/driver/nvidia", "/dev/nvidiactl", "/dev/kfd", "/dev/dxg")


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when a GPU is visible, else 'cpu'; 'cuda' without a GPU is an error."""
    if device not in ("auto", "cpu", "cuda"):
        raise ModelError(f"--device: expected auto, cpu or cuda, got {device!r}")
    if device == "cpu" or (device == "auto" and not gpu_driver_present()):
        return "cpu"
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available():
        raise ModelError("--device cuda: no CUDA GPU is visible to torch; use --device cpu or auto")
    return device


def resolve_dtype(dtype: str, device: str) -> str:
    """'auto' -> fp16 on a GPU (CLIP's own inference precision), fp32 on the CPU."""
    if dtype not in ("auto", *DTYPE_NAMES):
        raise ModelError(f"--dtype: expected auto, fp32, fp16 or bf16, got {dtype!r}")
    if dtype == "auto":
        return "fp16" if device == "cuda" else "fp32"
    return dtype


def gpu_driver_present() -> bool:
    return any(Path(path).exists() for path in GPU_DRIVER_PATHS)
