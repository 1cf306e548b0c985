"""Taxonomies: YAML files of probes and variants -> typed, validated objects.

- :mod:`~clipaudit.taxonomy.model`: the frozen objects (:class:`Taxonomy`, :class:`Probe`, ...);
- :mod:`~clipaudit.taxonomy.checks`: the file contract, every problem with its line;
- :mod:`~clipaudit.taxonomy.variants`: applying a variant's edits;
- :mod:`~clipaudit.taxonomy.loading`: finding, reading and combining files;
- :mod:`~clipaudit.taxonomy.fit`: checks against a dataset and a model.
"""
from clipaudit.located_yaml import Problem
from clipaudit.taxonomy.fit import (
    UnmatchedValues,
    check_against_dataset,
    check_against_model,
    unmatched_target_values,
)
from clipaudit.taxonomy.loading import (
    combine_taxonomies,
    load_taxonomy,
    resolve_taxonomy_path,
    shipped_taxonomies,
    validate_taxonomy_file,
)
from clipaudit.taxonomy.model import Probe, Taxonomy, TaxonomyClass, Variant, protocol_class

__all__ = [
    "Probe",
    "Problem",
    "Taxonomy",
    "TaxonomyClass",
    "UnmatchedValues",
    "Variant",
    "check_against_dataset",
    "check_against_model",
    "combine_taxonomies",
    "protocol_class",
    "load_taxonomy",
    "resolve_taxonomy_path",
    "shipped_taxonomies",
    "unmatched_target_values",
    "validate_taxonomy_file",
]
