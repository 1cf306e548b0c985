"""Groups: each row's group in a slice (every combination of the observed attribute values), and counts.

Values of FairFace attributes come in FairFace's order (unknown values after, sorted); other
attributes sort. The first attribute of a slice is outermost, so 'race x gender' lists every
gender of the first race first. Audit, sweep and compare all group through this module.
"""
from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from clipaudit.vocabulary import FAIRFACE_VOCABULARY, group_label

#: Value order for FairFace attributes; values outside a vocabulary follow, sorted.
FAIRFACE_ORDER: Mapping[str, tuple[str, ...]] = FAIRFACE_VOCABULARY


def codes_of(column: pd.Series, rows: NDArray[np.intp]) -> tuple[NDArray[np.intp], list[str]]:
    """Integer codes of ``column[rows]`` (-1 for missing) and the distinct values as strings."""
    # Factorising the Series keeps Arrow-backed strings fast.
    codes, uniques = pd.factorize(column.iloc[rows] if rows.size != len(column) else column)
    return np.asarray(codes, dtype=np.intp), [str(value) for value in uniques]


@dataclass(frozen=True)
class GroupCounts:
    """Counts for one (probe, slice, metric): one entry per group, in display order."""

    labels: tuple[str, ...]
    values: tuple[tuple[str, ...], ...]
    n: NDArray[np.int64]
    successes: NDArray[np.int64]



def order_values(attribute: str, observed: Sequence[str]) -> list[str]:
    """FairFace order for FairFace attributes (unknown values after, sorted); else sorted."""
    vocabulary = FAIRFACE_ORDER.get(attribute, ())
    known = [value for value in vocabulary if value in set(observed)]
    return known + sorted(set(observed) - set(vocabulary))


def attribute_codes_of(column: pd.Series, rows: NDArray[np.intp],
                       attribute: str) -> tuple[NDArray[np.intp], list[str]]:
    """Each row's code into the attribute's ordered observed values (-1 where missing), and those values."""
    codes, names = codes_of(column, rows)
    ordered = order_values(attribute, names)
    position = {value: index for index, value in enumerate(ordered)}
    remap = np.asarray([position[name] for name in names] + [-1], dtype=np.intp)
    return remap[codes], ordered


@dataclass(frozen=True)
class SliceGroups:
    """Group code of each row for one slice (-1: a slice attribute is missing)."""

    attributes: tuple[str, ...]
    codes: NDArray[np.intp]
    labels: tuple[str, ...]
    values: tuple[tuple[str, ...], ...]

    @property
    def rows_missing_attributes(self) -> int:
        return int(np.count_nonzero(self.codes < 0))


def slice_groups(attribute_codes: Mapping[str, tuple[NDArray[np.intp], list[str]]],
                 attributes: Sequence[str]) -> SliceGroups:
    """Cartesian product of the observed values of ``attributes``, first attribute outermost."""
    codes_per_attribute = [attribute_codes[attribute][0] for attribute in attributes]
    values_per_attribute = [attribute_codes[attribute][1] for attribute in attributes]
    shape = tuple(len(values) for values in values_per_attribute)
    present = np.logical_and.reduce([codes >= 0 for codes in codes_per_attribute])
    codes = np.full(present.shape, -1, dtype=np.intp)
    if all(shape):
        codes[present] = np.ravel_multi_index(tuple(c[present] for c in codes_per_attribute), shape)
    combinations = tuple(itertools.product(*values_per_attribute))
    return SliceGroups(attributes=tuple(attributes), codes=codes,
                       labels=tuple(group_label(values) for values in combinations),
                       values=combinations)


def group_counts(groups: SliceGroups, counted: NDArray[np.bool_], success: NDArray[np.bool_]) -> GroupCounts:
    """Images and successes per group for one metric."""
    size = len(groups.labels)
    in_slice = groups.codes >= 0
    n = np.bincount(groups.codes[in_slice & counted], minlength=size).astype(np.int64)
    successes = np.bincount(groups.codes[in_slice & counted & success], minlength=size).astype(np.int64)
    return GroupCounts(labels=groups.labels, values=groups.values, n=n, successes=successes)


def probe_slice_groups(frame: pd.DataFrame, rows: NDArray[np.intp],
                       slices: Sequence[Sequence[str]]) -> list[SliceGroups]:
    """The groups of every slice over ``frame``'s ``rows``, each attribute coded once."""
    attributes = dict.fromkeys(attribute for slice_attributes in slices for attribute in slice_attributes)
    attribute_codes = {attribute: attribute_codes_of(frame[attribute], rows, attribute) for attribute in attributes}
    return [slice_groups(attribute_codes, tuple(slice_attributes)) for slice_attributes in slices]
