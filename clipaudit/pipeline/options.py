"""How to run the model in any job that encodes images (audit, sweep); validated at the door."""
from __future__ import annotations

import numbers
import os
from dataclasses import dataclass
from pathlib import Path

from clipaudit.embed.parts import SHARD_IMAGES
from clipaudit.errors import ClipauditError

MAX_SEED = 2**32 - 1  # numpy's legacy seeding and DataLoader workers take 32 bits
MAX_BATCH_SIZE = 4096  # larger batches only risk running out of memory; they are not faster


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the system has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class AuditOptions:
    """Device, precision, batching, caching and seed of a run.

    ``batch_size`` and ``num_workers`` left at None are chosen from the machine and the model once
    it is loaded (:func:`clipaudit.embed.batching.choose_batching`). ``num_workers`` above the
    machine's CPUs is capped (more decoders than CPUs only contend); ``num_workers_requested``
    keeps what was asked, and :attr:`notes` says so for the manifest.
    """

    device: str = "auto"
    dtype: str = "auto"
    batch_size: int | None = None
    num_workers: int | None = None
    compile: bool = False
    seed: int = 0
    cache_dir: Path | None = None
    skip_bad_images: bool = False
    allow_unmatched: bool = False  # dataset labels that match no class id: an error unless allowed
    trust_remote_code: bool = False
    progress: bool = True
    num_workers_requested: int | None = None
    shard_images: int = SHARD_IMAGES


    def __post_init__(self) -> None:
        if self.batch_size is not None:
            _check_integer("--batch-size", self.batch_size, 1, MAX_BATCH_SIZE)
        if self.num_workers is not None:
            _check_integer("--num-workers", self.num_workers, 0, None)
        _check_integer("--seed", self.seed, 0, MAX_SEED)
        _check_integer("--shard-images", self.shard_images, 1, None)
        if self.cache_dir is not None and not str(self.cache_dir).strip():
            raise ClipauditError("--cache-dir: expected a folder name, got an empty one")
        if self.device == "cuda":  # say so now, not after the dataset has loaded
            from clipaudit.models.devices import resolve_device

            resolve_device(self.device)
        if self.num_workers_requested is None:
            object.__setattr__(self, "num_workers_requested", self.num_workers)
        if self.num_workers is not None:
            object.__setattr__(self, "num_workers", min(self.num_workers, available_cpus()))

    @property
    def notes(self) -> list[str]:
        """What was changed from the options given, in words for the manifest."""
        if self.num_workers == self.num_workers_requested:
            return []
        return [f"--num-workers {self.num_workers_requested} capped at {self.num_workers}, "
                "the number of CPUs available to this process"]


def _check_integer(option: str, value: object, low: int, high: int | None) -> None:
    is_integer = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not is_integer or value < low or (high is not None and value > high):
        expected = f"an integer from {low} to {high}" if high is not None else f"an integer of {low} or more"
        raise ClipauditError(f"{option}: expected {expected}, got {value!r}")
