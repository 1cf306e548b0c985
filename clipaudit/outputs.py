"""Write a set of output files so that a failure leaves none of them half-written."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def write_output_files(out_dir: Path, files: dict[str, bytes]) -> list[Path]:
    """Stage every file next to `out_dir`, then move each into place with an atomic rename."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.staging-", dir=out_dir.parent))
    try:
        for name, data in files.items():
            (staging / name).write_bytes(data)
        out_dir.mkdir(exist_ok=True)
        written = []
        for name in files:
            os.replace(staging / name, out_dir / name)
            written.append(out_dir / name)
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)
