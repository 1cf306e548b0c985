"""How much does a sweep cost compared with one audit of the base taxonomy?

Images are encoded once per sweep, so a sweep over many variants should cost little more than
one audit. This script times, in the same run and from a cold cache each time:

  1. one audit of clip_denigration,
  2. a sweep over its declared variants,
  3. a sweep over 50 variants (declared ones plus a generated template x synonym grid),

on the demo model and synthetic images, and prints the ratios. The demo model is tiny, so
image encoding is a small share of an audit here; with a real checkpoint (ViT-L/14 on
FairFace) encoding dominates and the ratios fall further.

Usage: python benchmarks/sweep_vs_audit.py [--images N]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from clipaudit.audit import AuditOptions, run_audit
from clipaudit.cli.commands import quiet_libraries
from clipaudit.data import load_dataset
from clipaudit.demo.model import demo_model_dir
from clipaudit.stats import StatsSettings
from clipaudit.sweep import run_sweep
from clipaudit.sweep.spec import SweepSpec
from clipaudit.taxonomy import load_taxonomy


def timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def grid_spec(variants_wanted: int, declared: int) -> SweepSpec:
    """A template x synonym grid that, with the declared variants, gives `variants_wanted` variants."""
    templates = {
        f"template_{index}": [f"a {adjective} photo of a {{label}}."]
        for index, adjective in enumerate(["plain", "blurry", "bright", "dark", "small", "large", "cropped",
                                           "close-up", "low resolution", "good", "bad", "clean", "noisy"])
    }
    synonyms = {"denigration": {"criminal": ["offender", "convict", "felon"], "thief": ["burglar", "robber", "crook"]}}
    # (templates + 1) x (synonym choices + 1) - 1 generated variants
    for count in range(1, len(templates) + 1):
        chosen = dict(list(templates.items())[:count])
        if (count + 1) * 4 - 1 + declared >= variants_wanted:
            return SweepSpec(path=Path("grid.yaml"), templates=chosen, synonyms=synonyms)
    raise SystemExit("not enough template choices for the grid")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=630)
    arguments = parser.parse_args()
    quiet_libraries()
    taxonomy = load_taxonomy("clip_denigration")
    data = f"synthetic:{arguments.images}"
    settings = StatsSettings()
    with tempfile.TemporaryDirectory() as scratch:
        def options(name: str) -> AuditOptions:
            return AuditOptions(device="cpu", cache_dir=Path(scratch) / name, progress=False)

        # Render the synthetic images and find the demo model once, outside the timings: they
        # are the inputs, not the audit. Each timed run then starts with a cold embedding cache.
        shared = Path(scratch) / "inputs"
        data = f"csv:{load_dataset(data, cache_dir=shared).root / 'labels.csv'}"
        model = str(demo_model_dir())
        spec = grid_spec(50, len(taxonomy.variants))
        # One untimed audit first, so that one-off costs (imports, first torch calls) fall on no timed run.
        run_audit(taxonomy=taxonomy, data=data, model=model, options=options("warm-up"), stats_settings=settings)
        audit_seconds = timed(lambda: run_audit(taxonomy=taxonomy, data=data, model=model, options=options("audit"), stats_settings=settings))
        declared_seconds = timed(lambda: run_sweep(taxonomies=[taxonomy], data=data, model=model, options=options("declared"), settings=settings))
        grid_run = {}
        grid_seconds = timed(lambda: grid_run.update(run=run_sweep(taxonomies=[taxonomy], data=data, model=model, options=options("grid"), settings=settings, spec=spec)))
        n_variants = len(grid_run["run"].document["variants"]) - 1
    print(f"images: {arguments.images}, model: demo, device: cpu (cold embedding cache for each run)")
    print("both include loading the model, encoding the images and the statistics; neither writes outputs")
    print(f"one audit of clip_denigration:          {audit_seconds:7.2f} s")
    print(f"sweep, {len(taxonomy.variants)} declared variants + base:     {declared_seconds:7.2f} s   ratio {declared_seconds / audit_seconds:4.2f}x")
    print(f"sweep, {n_variants} variants + base:              {grid_seconds:7.2f} s   ratio {grid_seconds / audit_seconds:4.2f}x")


if __name__ == "__main__":
    main()
