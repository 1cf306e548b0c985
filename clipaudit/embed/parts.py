"""Parts of the shard list: what one process (a rank, an array job) encodes. Light on purpose: the
command line's parser reads it for every command."""
from __future__ import annotations

import re
from dataclasses import dataclass

from clipaudit.errors import UsageError

SHARD_IMAGES = 2048  # images per shard: seconds of work on a GPU, small enough to lose little to a kill
_PART = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Part:
    """Part ``index`` (from 0) of ``count``: the shards whose number is ``index`` modulo ``count``."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise UsageError(f"--shard {self.index}/{self.count}: expected i/N with 0 <= i < N")

    def holds(self, shard_number: int) -> bool:
        return shard_number % self.count == self.index


def parse_part(text: str) -> Part:
    """'2/8' -> Part(2, 8); anything else is one UsageError line saying what is expected."""
    match = _PART.match(text or "")
    shown = text if len(text or "") <= 40 else text[:40] + "..."
    if match is None or int(match.group(2)) == 0:
        raise UsageError(f"--shard {shown!r}: expected i/N with 0 <= i < N, e.g. --shard 0/4 ... --shard 3/4 "
                         "(a SLURM array job passes $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)")
    index, count = int(match.group(1)), int(match.group(2))
    if index >= count:
        raise UsageError(f"--shard {shown!r}: part {index} does not exist among {count} parts (0 to {count - 1})")
    return Part(index, count)
