"""Taxonomy sensitivity studies: many variants of a taxonomy scored on the same images."""
from clipaudit.sweep.run import SweepRun, SweepVariant, run_sweep, sweep_variants, write_sweep_outputs
from clipaudit.sweep.spec import SweepSpec, load_sweep_spec

__all__ = ["SweepRun", "SweepSpec", "SweepVariant", "load_sweep_spec", "run_sweep", "sweep_variants",
           "write_sweep_outputs"]
