"""Taxonomy sensitivity studies: many variants of a taxonomy scored on the same images."""
from clipaudit.sweep.document import SweepRun, write_sweep_outputs
from clipaudit.sweep.run import run_sweep
from clipaudit.sweep.spec import SweepSpec, load_sweep_spec
from clipaudit.sweep.variants import SweepVariant, sweep_variants

__all__ = ["SweepRun", "SweepSpec", "SweepVariant", "load_sweep_spec", "run_sweep", "sweep_variants",
           "write_sweep_outputs"]
