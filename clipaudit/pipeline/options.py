"""How to run the model in any job that encodes images (audit, sweep); validated at the door."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from clipaudit.errors import ClipauditError


@dataclass(frozen=True)
class AuditOptions:
    """Device, precision, batching, caching and seed of a run."""

    device: str = "auto"
    dtype: str = "auto"
    batch_size: int = 64
    num_workers: int = 0
    seed: int = 0
    cache_dir: Path | None = None
    skip_bad_images: bool = False
    trust_remote_code: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ClipauditError(f"--batch-size: expected a positive integer, got {self.batch_size}")
        if self.num_workers < 0:
            raise ClipauditError(f"--num-workers: expected 0 or more, got {self.num_workers}")
