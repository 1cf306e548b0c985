"""The statistics engine: predictions table -> per-group rates, intervals, disparities, tests.

One pass per (probe, slice, metric) over integer group codes (``numpy.bincount``),
so a million predictions with a hundred intersection groups take about a second.
The engine needs no model: it reads the predictions table that ``score.py`` writes
(columns ``probe``, ``prediction``, ``target`` and the dataset attributes) and a
duck-typed description of each probe (see :class:`ProbeSpec`).

Policies, stated once:

- Rows whose ``target`` is null are excluded from ``accuracy`` and counted under
  ``overall.accuracy.excluded``.
- Rows with a null value in any attribute of a slice are left out of that slice and
  counted in the slice's ``rows_missing_attributes``.
- Every combination of the observed values of a slice's attributes is a group; a
  group with no rows for a metric is listed in that metric's ``empty_groups`` and has
  no value or interval. A group with ``0 < n < min_n`` is listed with ``small: true``
  and left out of the disparity measures, the tests and the findings; every group
  carries ``mdd``, its minimum detectable difference at ``power`` (80%).
- A table with fewer than two non-small groups, or whose non-small groups have one
  outcome only, has ``test: null`` and a ``note``; it is not in the family. A pairwise
  comparison with one outcome only has ``p_value: null`` and a ``note``.
- The family for the multiple-testing correction is every omnibus, trend and pairwise
  test of the audit (``statistics.family`` says so, with the counts).
- What "significant" means, the reference options and every interval: see
  the README section "Statistics".
"""
from __future__ import annotations

import itertools
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from clipaudit.errors import ClipauditError
from clipaudit.stats.findings import Finding, build_findings
from clipaudit.stats.disparities import (
    bootstrap_spread,
    katz_ratio,
    minimum_detectable_difference,
    newcombe_difference,
    odds_ratio,
)
from clipaudit.stats.hypothesis_tests import (
    OmnibusTest,
    TrendTest,
    omnibus_test,
    pairwise_test,
    pairwise_untestable,
    trend_test,
    untestable_reason,
)
from clipaudit.stats.intervals import INTERVAL_LABELS, INTERVAL_METHODS, IntervalMethod, interval, validate_confidence
from clipaudit.stats.multiple import CORRECTION_CONTROLS, CORRECTION_LABELS, CORRECTIONS, Correction, adjust_p_values

GROUP_SEPARATOR = " / "
SLICE_SEPARATOR = " x "
ACCURACY = "accuracy"
HARM_RATE = "harm_rate"

#: Value order for FairFace attributes; values outside a vocabulary follow, sorted.
FAIRFACE_ORDER: dict[str, tuple[str, ...]] = {
    "race": ("East Asian", "Indian", "Black", "White", "Middle Eastern", "Latino_Hispanic",
             "Southeast Asian"),
    "gender": ("Male", "Female"),
    "age": ("0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "more than 70"),
}


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_probability(value: object) -> bool:
    return (isinstance(value, (int, float, np.floating)) and not isinstance(value, bool)
            and 0.0 < float(value) < 1.0)


REFERENCE_KINDS = ("overall", "rest", "largest", "best")
GROUP_REFERENCE_PREFIX = "group:"


def validate_reference(reference: object, *, where: str = "reference") -> str:
    """Return ``reference`` if it is one of :data:`REFERENCE_KINDS` or ``group:<name>``, else raise."""
    if isinstance(reference, str) and (reference in REFERENCE_KINDS or (
            reference.startswith(GROUP_REFERENCE_PREFIX) and len(reference) > len(GROUP_REFERENCE_PREFIX))):
        return reference
    raise ClipauditError(f"{where} must be one of {list(REFERENCE_KINDS)} or 'group:<name>' "
                         f"(e.g. 'group:White'), got {reference!r}")


@dataclass(frozen=True)
class StatsSettings:
    """Options of the statistics engine, validated on construction.

    ``confidence``: level of every interval; ``interval``: method for a rate's interval
    (``wilson``, ``clopper-pearson``, ``jeffreys``); ``min_n``: groups with fewer images
    are flagged ``small`` and left out of disparities and tests; ``alpha``: level for
    ``significant`` after the ``correction`` (``holm``: family-wise error rate, ``bh``:
    false discovery rate) over every test in the audit; ``min_effect``: the smallest
    effect (on the rate scale: 0.02 = 2 percentage points) a test must also show to be
    ``significant``; ``reference``: what each group is compared with (``overall``: the
    slice's whole population, tested as the group against the rest; ``rest``: the rest
    of the population; ``largest``: the largest group; ``best``: the best-off tested
    group; ``group:<name>``: a named group), overridden per probe by
    ``reference_by_probe``; ``bootstrap``: resamples for the max - min and min / max
    intervals (0: none); ``power``: the power at which the minimum detectable difference
    is computed; ``ordered_attributes``: attributes whose values are ordered (a trend
    test is run on slices over one of them); ``permutation_resamples``: Monte-Carlo
    resamples when an asymptotic test is not trusted; ``seed``: makes permutation tests
    and the bootstrap reproducible.
    """

    confidence: float = 0.95
    min_n: int = 30
    alpha: float = 0.05
    correction: Correction = "holm"
    permutation_resamples: int = 10_000
    seed: int = 0
    interval: IntervalMethod = "wilson"
    min_effect: float = 0.02
    reference: str = "overall"
    reference_by_probe: Mapping[str, str] = field(default_factory=dict)
    bootstrap: int = 1000
    power: float = 0.8
    ordered_attributes: tuple[str, ...] = ("age",)

    def __post_init__(self) -> None:
        validate_confidence(self.confidence)
        if not _is_int(self.min_n) or self.min_n < 1:
            raise ClipauditError(f"min_n must be a positive integer (e.g. 30), got {self.min_n!r}")
        if not _is_probability(self.alpha):
            raise ClipauditError(f"alpha must be strictly between 0 and 1 (e.g. 0.05), got {self.alpha!r}")
        if self.correction not in CORRECTIONS:
            raise ClipauditError(f"correction must be one of {sorted(CORRECTIONS)}, got {self.correction!r}")
        if not _is_int(self.permutation_resamples) or self.permutation_resamples < 1:
            raise ClipauditError("permutation_resamples must be a positive integer (e.g. 10000), "
                                 f"got {self.permutation_resamples!r}")
        if not _is_int(self.seed) or self.seed < 0:
            raise ClipauditError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.interval not in INTERVAL_METHODS:
            raise ClipauditError(f"interval must be one of {sorted(INTERVAL_METHODS)}, got {self.interval!r}")
        if (isinstance(self.min_effect, bool) or not isinstance(self.min_effect, (int, float, np.floating))
                or not 0.0 <= float(self.min_effect) < 1.0):
            raise ClipauditError(f"min_effect must be a number in [0, 1) on the rate scale (0.02 = 2 points), "
                                 f"got {self.min_effect!r}")
        validate_reference(self.reference)
        if not isinstance(self.reference_by_probe, Mapping):
            raise ClipauditError(f"reference_by_probe must map probe ids to references, got {self.reference_by_probe!r}")
        for probe_id, reference in self.reference_by_probe.items():
            validate_reference(reference, where=f"reference for probe {probe_id!r}")
        if not _is_int(self.bootstrap) or self.bootstrap < 0:
            raise ClipauditError(f"bootstrap must be a non-negative integer (e.g. 1000; 0 for none), "
                                 f"got {self.bootstrap!r}")
        if not _is_probability(self.power):
            raise ClipauditError(f"power must be strictly between 0 and 1 (e.g. 0.8), got {self.power!r}")
        if isinstance(self.ordered_attributes, str) or not all(
                isinstance(attribute, str) for attribute in self.ordered_attributes):
            raise ClipauditError(f"ordered_attributes must be a tuple of attribute names, got {self.ordered_attributes!r}")

    def reference_for(self, probe_id: str) -> str:
        """The reference spec in force for ``probe_id``."""
        return self.reference_by_probe.get(probe_id, self.reference)

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready plain values."""
        plain: dict[str, Any] = {}
        for key in self.__dataclass_fields__:
            value = getattr(self, key)
            if isinstance(value, float):
                value = float(value)
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Mapping):
                value = {str(k): str(v) for k, v in value.items()}
            plain[key] = value
        return plain


class ClassSpec(Protocol):
    """What the engine reads from a taxonomy class."""

    @property
    def id(self) -> str: ...

    @property
    def category(self) -> str | None: ...


class ProbeSpec(Protocol):
    """What the engine reads from a probe (``clipaudit.taxonomy.Probe`` fits)."""

    @property
    def id(self) -> str: ...

    @property
    def kind(self) -> Literal["attribute", "harm"] | str: ...

    @property
    def target(self) -> str | None: ...

    @property
    def classes(self) -> Sequence[ClassSpec]: ...

    @property
    def slices(self) -> Sequence[Sequence[str]]: ...


@dataclass(frozen=True)
class GroupCounts:
    """Counts for one (probe, slice, metric): one entry per group, in display order."""

    labels: tuple[str, ...]
    values: tuple[tuple[str, ...], ...]
    n: NDArray[np.int64]
    successes: NDArray[np.int64]


@dataclass(frozen=True)
class Disparity:
    """Spread of the rates across groups with ``n >= min_n``.

    ``gap = max - min``; ``ratio = min / max`` (``None`` when max is 0). All but
    ``groups_compared`` are ``None`` when fewer than two groups qualify. Ties go to
    the group listed first.
    """

    gap: float | None
    ratio: float | None
    max_group: str | None
    min_group: str | None
    groups_compared: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def disparity(counts: GroupCounts, *, min_n: int) -> Disparity:
    """Disparity measures over the non-small groups of ``counts``."""
    qualifies = counts.n >= min_n
    compared = int(qualifies.sum())
    if compared < 2:
        return Disparity(gap=None, ratio=None, max_group=None, min_group=None, groups_compared=compared)
    indices = np.flatnonzero(qualifies)
    rates = counts.successes[indices] / counts.n[indices]
    highest, lowest = indices[int(np.argmax(rates))], indices[int(np.argmin(rates))]
    max_rate, min_rate = float(rates.max()), float(rates.min())
    return Disparity(gap=max_rate - min_rate, ratio=(min_rate / max_rate) if max_rate > 0 else None,
                     max_group=counts.labels[highest], min_group=counts.labels[lowest],
                     groups_compared=compared)


def gap(counts: GroupCounts, *, min_n: int) -> float | None:
    """Largest minus smallest rate among groups with ``n >= min_n`` (see :func:`disparity`)."""
    return disparity(counts, min_n=min_n).gap


def ratio(counts: GroupCounts, *, min_n: int) -> float | None:
    """Smallest over largest rate among groups with ``n >= min_n`` (see :func:`disparity`)."""
    return disparity(counts, min_n=min_n).ratio


# --- input checks -------------------------------------------------------------------------


def _probe_list(probes: Sequence[ProbeSpec] | Any) -> list[ProbeSpec]:
    # A Taxonomy (internals.md) is accepted as well as a sequence of probes.
    probe_list = list(probes.probes) if hasattr(probes, "probes") else list(probes)
    seen: set[str] = set()
    for probe in probe_list:
        if probe.kind not in ("attribute", "harm"):
            raise ClipauditError(f"probe {probe.id!r}: kind must be 'attribute' or 'harm', got {probe.kind!r}")
        if probe.id in seen:
            raise ClipauditError(f"probe {probe.id!r} is listed twice")
        seen.add(probe.id)
        for slice_attributes in probe.slices:
            if len(slice_attributes) == 0:
                raise ClipauditError(f"probe {probe.id!r}: empty slice in {list(map(list, probe.slices))}")
    return probe_list


def _check_columns(predictions: pd.DataFrame, probes: Sequence[ProbeSpec]) -> None:
    present = [str(column) for column in predictions.columns]

    def require(column: str, why: str) -> None:
        if column not in predictions.columns:
            raise ClipauditError(f"predictions: missing column {column!r} ({why}); columns present: {present}")
    require("probe", "the probe id of each row")
    require("prediction", "the predicted class id")
    for probe in probes:
        if probe.kind == "attribute":
            require("target", f"ground truth for attribute probe {probe.id!r}")
        for slice_attributes in probe.slices:
            for attribute in slice_attributes:
                require(attribute, f"slice {SLICE_SEPARATOR.join(slice_attributes)!r} of probe {probe.id!r}")


def _probe_rows(predictions: pd.DataFrame, probes: Sequence[ProbeSpec]) -> dict[str, NDArray[np.intp]]:
    probe_codes, probe_values = pd.factorize(predictions["probe"])
    present = [str(value) for value in probe_values]
    rows: dict[str, NDArray[np.intp]] = {}
    for probe in probes:
        if probe.id not in present:
            raise ClipauditError(f"predictions: no rows for probe {probe.id!r}; probes present: {present}")
        rows[probe.id] = np.flatnonzero(probe_codes == present.index(probe.id))
    return rows


# --- outcomes per metric -----------------------------------------------------------------


def harm_categories(probe: ProbeSpec) -> list[str]:
    """Sorted distinct harm categories of a probe's classes."""
    return sorted({cls.category for cls in probe.classes if cls.category is not None})


def metric_names(probe: ProbeSpec) -> list[str]:
    """Metrics computed for a probe, in result order."""
    if probe.kind == "attribute":
        return [ACCURACY]
    names = [HARM_RATE] + [f"{category}_rate" for category in harm_categories(probe)]
    if len(set(names)) != len(names):
        raise ClipauditError(f"probe {probe.id!r}: category 'harm' would clash with metric 'harm_rate'; rename it")
    return names


def _codes(column: pd.Series, rows: NDArray[np.intp]) -> tuple[NDArray[np.intp], list[str]]:
    # Integer codes of column[rows] (-1 for missing) and the distinct values as strings.
    # Factorising the Series keeps Arrow-backed strings fast.
    codes, uniques = pd.factorize(column.iloc[rows] if rows.size != len(column) else column)
    return np.asarray(codes, dtype=np.intp), [str(value) for value in uniques]


def _class_index(column: pd.Series, rows: NDArray[np.intp], class_ids: Sequence[str]) -> NDArray[np.intp]:
    # Index of each row's value in class_ids: -1 for missing, -2 for a value not among them.
    codes, names = _codes(column, rows)
    position = {class_id: index for index, class_id in enumerate(class_ids)}
    lookup = np.asarray([position.get(name, -2) for name in names] + [-1], dtype=np.intp)
    return lookup[codes]


def _predicted_class(predictions: pd.DataFrame, rows: NDArray[np.intp], probe: ProbeSpec) -> NDArray[np.intp]:
    class_ids = [str(cls.id) for cls in probe.classes]
    predicted = _class_index(predictions["prediction"], rows, class_ids)
    if np.any(predicted < 0):
        unknown = pd.unique(predictions["prediction"].iloc[rows[predicted < 0]])[:5]
        raise ClipauditError(f"predictions for probe {probe.id!r}: predicted class(es) {list(unknown)} "
                             f"not among the probe's classes {class_ids}")
    return predicted


def metric_outcomes(predictions: pd.DataFrame, rows: NDArray[np.intp],
                    probe: ProbeSpec) -> dict[str, tuple[NDArray[np.bool_], NDArray[np.bool_]]]:
    """Per metric, ``(counted, success)`` boolean arrays over the probe's rows."""
    predicted = _predicted_class(predictions, rows, probe)
    if probe.kind == "attribute":
        # Targets are compared to class ids as strings; a target outside the classes is a miss.
        target = _class_index(predictions["target"], rows, [str(cls.id) for cls in probe.classes])
        counted = target != -1
        success = target == predicted
        return {ACCURACY: (counted, success)}
    class_categories = np.asarray([cls.category for cls in probe.classes], dtype=object)
    predicted_category = class_categories[predicted]
    counted = np.ones(rows.size, dtype=bool)
    outcomes = {HARM_RATE: (counted, np.asarray(pd.notna(predicted_category), dtype=bool))}
    for category in harm_categories(probe):
        outcomes[f"{category}_rate"] = (counted, predicted_category == category)
    return outcomes


# --- groups ------------------------------------------------------------------------------


def order_values(attribute: str, observed: Sequence[str]) -> list[str]:
    """FairFace order for FairFace attributes (unknown values after, sorted); else sorted."""
    vocabulary = FAIRFACE_ORDER.get(attribute, ())
    known = [value for value in vocabulary if value in set(observed)]
    return known + sorted(set(observed) - set(vocabulary))


def attribute_codes_of(column: pd.Series, rows: NDArray[np.intp],
                       attribute: str) -> tuple[NDArray[np.intp], list[str]]:
    """Each row's code into the attribute's ordered observed values (-1 where missing), and those values."""
    codes, names = _codes(column, rows)
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
                       labels=tuple(GROUP_SEPARATOR.join(values) for values in combinations),
                       values=combinations)


def group_counts(groups: SliceGroups, counted: NDArray[np.bool_], success: NDArray[np.bool_]) -> GroupCounts:
    """Images and successes per group for one metric."""
    size = len(groups.labels)
    in_slice = groups.codes >= 0
    n = np.bincount(groups.codes[in_slice & counted], minlength=size).astype(np.int64)
    successes = np.bincount(groups.codes[in_slice & counted & success], minlength=size).astype(np.int64)
    return GroupCounts(labels=groups.labels, values=groups.values, n=n, successes=successes)


# --- results -----------------------------------------------------------------------------


def _rate_entry(successes: int, n: int, settings: StatsSettings) -> dict[str, Any]:
    if n == 0:
        return {"n": 0, "successes": 0, "value": None, "ci_low": None, "ci_high": None}
    bounds = interval(successes, n, method=settings.interval, confidence=settings.confidence)
    return {"n": int(n), "successes": int(successes), "value": successes / n,
            "ci_low": float(bounds.low), "ci_high": float(bounds.high)}


def _optional(value: float) -> float | None:
    # NaN stands for "none" (undefined or unbounded) in the vectorised helpers; JSON gets null.
    value = float(value)
    return None if not np.isfinite(value) else value


def lower_is_worse(metric: str) -> bool:
    """``accuracy``: a lower value is worse; harm rates: a higher value is worse."""
    return metric == ACCURACY


@dataclass(frozen=True)
class Reference:
    """What the groups of one (probe, slice, metric) are compared with.

    ``kind``: ``overall`` (the slice's population; tests and intervals use the group
    against the rest, see :func:`_comparisons`), ``rest`` (each group against the rest
    of the population) or ``group`` (one group; ``index`` and ``label`` name it).
    ``spec`` is the setting that chose it (``largest``, ``best``, ``group:White``, ...).
    """

    spec: str
    kind: Literal["overall", "rest", "group"]
    index: int | None
    label: str | None
    n: int | None
    successes: int | None
    note: str | None = None

    @property
    def value(self) -> float | None:
        if self.n is None or self.successes is None or self.n == 0:
            return None
        return self.successes / self.n

    def to_dict(self) -> dict[str, Any]:
        return {"spec": self.spec, "kind": self.kind, "group": self.label, "n": self.n,
                "successes": self.successes, "value": self.value, "note": self.note}


def resolve_reference(spec: str, counts: GroupCounts, *, metric: str, min_n: int) -> Reference:
    """The reference for one table of counts (see :class:`StatsSettings` for the options).

    A ``largest``, ``best`` or named group that is missing or has ``n < min_n`` cannot
    anchor tests; the overall population is used instead and ``note`` says why.
    ``best`` is chosen after seeing the data (highest accuracy, lowest harm rate among
    the tested groups), which makes every other group look worse: the report says so.
    """
    total_n, total_successes = int(counts.n.sum()), int(counts.successes.sum())
    overall = Reference(spec=spec, kind="overall", index=None, label=None, n=total_n, successes=total_successes)
    if spec == "overall":
        return overall
    if spec == "rest":
        return Reference(spec=spec, kind="rest", index=None, label=None, n=None, successes=None)
    qualifies = counts.n >= min_n
    index: int | None = None
    if spec == "largest":
        index = int(np.argmax(counts.n)) if counts.n.size else None
    elif spec == "best":
        tested = np.flatnonzero(qualifies)
        if tested.size:
            rates = counts.successes[tested] / counts.n[tested]
            index = int(tested[int(np.argmax(rates) if lower_is_worse(metric) else np.argmin(rates))])
    else:
        name = spec.removeprefix(GROUP_REFERENCE_PREFIX)
        if name not in counts.labels:
            return replace_note(overall, f"reference group {name!r} is not a group of this slice; "
                                         "compared with the overall population instead")
        index = counts.labels.index(name)
    if index is None or not qualifies[index]:
        what = "no group" if index is None else f"group {counts.labels[index]!r} (n = {int(counts.n[index])})"
        return replace_note(overall, f"reference '{spec}': {what} with n >= {min_n}; "
                                     "compared with the overall population instead")
    return Reference(spec=spec, kind="group", index=index, label=counts.labels[index],
                     n=int(counts.n[index]), successes=int(counts.successes[index]))


def replace_note(reference: Reference, note: str) -> Reference:
    return Reference(spec=reference.spec, kind=reference.kind, index=reference.index, label=reference.label,
                     n=reference.n, successes=reference.successes, note=note)


def _comparison_samples(counts: GroupCounts, reference: Reference) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    # Successes and size of the sample each group is tested against: the rest of the
    # population (overall, rest) or the reference group.
    if reference.kind == "group":
        return (np.full(counts.n.shape, reference.successes, dtype=np.int64),
                np.full(counts.n.shape, reference.n, dtype=np.int64))
    return counts.successes.sum() - counts.successes, counts.n.sum() - counts.n


def _group_entries(counts: GroupCounts, attributes: Sequence[str], reference: Reference, metric: str,
                   settings: StatsSettings) -> list[dict[str, Any]]:
    nonempty = np.flatnonzero(counts.n > 0)
    bounds = interval(counts.successes[nonempty], counts.n[nonempty], method=settings.interval,
                      confidence=settings.confidence)
    other_successes, other_n = _comparison_samples(counts, reference)
    with np.errstate(divide="ignore", invalid="ignore"):
        other_rate = np.where(other_n > 0, other_successes / np.maximum(other_n, 1), np.nan)
    mdd = minimum_detectable_difference(counts.n, other_n, np.nan_to_num(other_rate), alpha=settings.alpha,
                                        power=settings.power, increase=not lower_is_worse(metric))
    mdd = np.where(np.isfinite(other_rate), mdd, np.nan)
    entries = []
    for position, index in enumerate(nonempty):
        n, successes = int(counts.n[index]), int(counts.successes[index])
        entries.append({"group": counts.labels[index], "values": dict(zip(attributes, counts.values[index])),
                        "n": n, "successes": successes, "value": successes / n,
                        "ci_low": float(bounds.low[position]), "ci_high": float(bounds.high[position]),
                        "ci_method": settings.interval,
                        "small": n < settings.min_n,
                        "mdd": None if reference.index == index else _optional(mdd[index])})
    return entries


def _test_rng(settings: StatsSettings, key: str) -> np.random.Generator:
    # One stream per test, keyed by its name: a test's p-value does not depend on which
    # other probes or slices are in the audit.
    return np.random.default_rng(np.random.SeedSequence([settings.seed, zlib.crc32(key.encode("utf-8"))]))


def _test_entry(test: OmnibusTest, effect: float | None) -> dict[str, Any]:
    return {"name": test.name, "statistic": float(test.statistic), "df": int(test.df),
            "p_value": float(test.p_value), "p_adjusted": None, "significant": False,
            "groups_tested": int(test.groups_tested), "resamples": test.resamples, "effect": effect,
            "effect_measure": "max - min"}


def _trend_entry(test: TrendTest) -> dict[str, Any]:
    return {"name": test.name, "statistic": float(test.statistic), "df": 1, "p_value": float(test.p_value),
            "p_adjusted": None, "significant": False, "groups_tested": int(test.groups_tested),
            "resamples": test.resamples, "slope": float(test.slope), "effect": float(test.effect),
            "effect_measure": "fitted change from first to last group"}


@dataclass
class _Tested:
    # One test awaiting the family-wise adjustment; ``effect`` is compared with min_effect.
    kind: Literal["omnibus", "trend", "pairwise"]
    probe: ProbeSpec
    slice_id: str
    metric: str
    counts: GroupCounts
    entry: dict[str, Any]
    effect: float


def _disparity_entry(counts: GroupCounts, settings: StatsSettings, key: str) -> dict[str, Any]:
    measures = disparity(counts, min_n=settings.min_n).to_dict()
    qualifies = counts.n >= settings.min_n
    extra: dict[str, Any] = {"gap_ci_low": None, "gap_ci_high": None, "ratio_ci_low": None,
                             "ratio_ci_high": None, "four_fifths": None, "max_value": None, "min_value": None,
                             "ci_method": None, "bootstrap_resamples": None}
    if measures["gap"] is not None:
        rates = counts.successes[qualifies] / counts.n[qualifies]
        extra["max_value"], extra["min_value"] = float(rates.max()), float(rates.min())
        if measures["ratio"] is not None:
            extra["four_fifths"] = bool(measures["ratio"] < 0.8)
        if settings.bootstrap > 0:
            spread = bootstrap_spread(counts.successes[qualifies], counts.n[qualifies],
                                      resamples=settings.bootstrap, confidence=settings.confidence,
                                      rng=_test_rng(settings, key + "\x1fbootstrap"))
            extra.update(gap_ci_low=spread.gap_low, gap_ci_high=spread.gap_high,
                         ratio_ci_low=spread.ratio_low if measures["ratio"] is not None else None,
                         ratio_ci_high=spread.ratio_high if measures["ratio"] is not None else None,
                         ci_method="stratified percentile bootstrap (Efron & Tibshirani 1993)",
                         bootstrap_resamples=spread.resamples)
    return {**measures, **extra}


def _comparisons(counts: GroupCounts, reference: Reference, metric: str,
                 settings: StatsSettings) -> list[dict[str, Any]]:
    """Each tested group against the reference: difference, ratio, odds ratio, pairwise test.

    With the ``overall`` reference the group is part of the population it is compared
    with, so the two rates are not independent. The test and the intervals therefore
    use the group against the rest of the population (independent samples), and are
    carried over exactly: with ``w = n_group / N``, ``group - overall = (1 - w)(group - rest)``
    and ``group / overall = RR / (w RR + 1 - w)`` with ``RR = group / rest``, both
    increasing in the group-vs-rest measure, so the Newcombe and Katz bounds map to
    bounds for the overall comparison. The odds ratio is reported against the sample
    tested (the rest). ``H0: group = overall`` is the same hypothesis as ``group = rest``.
    """
    total_n, total_successes = int(counts.n.sum()), int(counts.successes.sum())
    compared = [int(i) for i in np.flatnonzero(counts.n >= settings.min_n) if int(i) != reference.index]
    if not compared:
        return []
    index = np.asarray(compared, dtype=np.intp)
    k1, n1 = counts.successes[index], counts.n[index]
    all_k2, all_n2 = _comparison_samples(counts, reference)
    k2, n2 = all_k2[index], all_n2[index]
    keep = n2 > 0
    index, k1, n1, k2, n2 = index[keep], k1[keep], n1[keep], k2[keep], n2[keep]
    rest_k, rest_n = total_successes - k1, total_n - n1
    has_rest = rest_n > 0
    safe_rest_n = np.maximum(rest_n, 1)
    versus_sample = newcombe_difference(k1, n1, k2, n2, confidence=settings.confidence)
    versus_rest = newcombe_difference(k1, n1, rest_k, safe_rest_n, confidence=settings.confidence)
    ratios = katz_ratio(k1, n1, k2, n2, confidence=settings.confidence)
    odds = odds_ratio(k1, n1, k2, n2, confidence=settings.confidence)
    difference, difference_low, difference_high = versus_sample.estimate, versus_sample.low, versus_sample.high
    ratio, ratio_low, ratio_high = ratios.estimate, ratios.low, ratios.high
    reference_value = k2 / n2
    if reference.kind == "overall":
        weight = n1 / total_n
        overall_value = total_successes / total_n
        reference_value = np.full(k1.shape, overall_value)
        difference = k1 / n1 - overall_value
        difference_low, difference_high = (1 - weight) * versus_sample.low, (1 - weight) * versus_sample.high

        def to_overall(relative_risk: NDArray[np.float64]) -> NDArray[np.float64]:
            return relative_risk / (weight * relative_risk + 1 - weight)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(overall_value > 0, (k1 / n1) / overall_value, np.nan)
            ratio_low = to_overall(ratios.low)
            ratio_high = np.where(np.isnan(ratios.high), np.where(overall_value > 0, 1 / weight, np.nan),
                                  to_overall(ratios.high))
    entries = []
    reference_name = {"overall": "overall", "rest": "rest"}.get(reference.kind, reference.label)
    for position, group_index in enumerate(index):
        a, m, b, o = int(k1[position]), int(n1[position]), int(k2[position]), int(n2[position])
        test = pairwise_test(a, m, b, o)
        delta = float(difference[position])
        worse = (delta < 0) if lower_is_worse(metric) else (delta > 0)
        entries.append({
            "group": counts.labels[group_index], "reference": reference_name,
            "compared_with": reference.label if reference.kind == "group" else "rest",
            "n": m, "successes": a, "value": a / m,
            "reference_n": o if reference.kind != "overall" else total_n,
            "reference_value": float(reference_value[position]),
            "difference": delta, "difference_ci_low": float(difference_low[position]),
            "difference_ci_high": float(difference_high[position]),
            "difference_method": versus_sample.method + (
                ", scaled from group vs rest" if reference.kind == "overall" else ""),
            "difference_vs_rest": float(versus_rest.estimate[position]) if has_rest[position] else None,
            "difference_vs_rest_ci_low": float(versus_rest.low[position]) if has_rest[position] else None,
            "difference_vs_rest_ci_high": float(versus_rest.high[position]) if has_rest[position] else None,
            "ratio": _optional(ratio[position]), "ratio_ci_low": _optional(ratio_low[position]),
            "ratio_ci_high": _optional(ratio_high[position]), "ratio_method": ratios.method,
            "odds_ratio": _optional(odds.estimate[position]), "odds_ratio_ci_low": _optional(odds.low[position]),
            "odds_ratio_ci_high": _optional(odds.high[position]), "odds_ratio_method": odds.method,
            "test": None if test is None else test.name,
            "statistic": None if test is None else test.statistic,
            "p_value": None if test is None else test.p_value,
            "p_adjusted": None, "significant": False,
            "direction": "equal" if delta == 0 else ("higher" if delta > 0 else "lower"),
            "worse": bool(worse),
            "note": None if test is not None else pairwise_untestable(a, m, b, o),
        })
    return entries


def _trend_applies(attributes: Sequence[str], counts: GroupCounts, settings: StatsSettings) -> bool:
    # One ordered attribute whose observed values all have a known order.
    if len(attributes) != 1 or attributes[0] not in settings.ordered_attributes:
        return False
    vocabulary = FAIRFACE_ORDER.get(attributes[0])
    return vocabulary is None or all(values[0] in vocabulary for values in counts.values)


def _metric_entry(probe: ProbeSpec, groups: SliceGroups, metric: str, counts: GroupCounts,
                  settings: StatsSettings, tested: list[_Tested], reference_spec: str) -> dict[str, Any]:
    slice_id = SLICE_SEPARATOR.join(groups.attributes)
    key = f"{probe.id}\x1f{slice_id}\x1f{metric}"
    qualifies = counts.n >= settings.min_n
    test_successes, test_n = counts.successes[qualifies], counts.n[qualifies]
    disparity_entry = _disparity_entry(counts, settings, key)
    test_entry = None
    note = untestable_reason(test_successes, test_n)
    if note is None:
        test = omnibus_test(test_successes, test_n, resamples=settings.permutation_resamples,
                            rng=_test_rng(settings, key))
        if test is not None:
            test_entry = _test_entry(test, disparity_entry["gap"])
            tested.append(_Tested("omnibus", probe, slice_id, metric, counts, test_entry,
                                  float(disparity_entry["gap"] or 0.0)))
    trend_entry = None
    if note is None and _trend_applies(groups.attributes, counts, settings):
        # Scores are the positions in the attribute's order (0, 1, 2, ...), over tested groups.
        trend = trend_test(test_successes, test_n, np.flatnonzero(qualifies).astype(np.float64),
                           resamples=settings.permutation_resamples, rng=_test_rng(settings, key + "\x1ftrend"))
        if trend is not None:
            trend_entry = _trend_entry(trend)
            tested.append(_Tested("trend", probe, slice_id, metric, counts, trend_entry, float(trend.effect)))
    reference = resolve_reference(reference_spec, counts, metric=metric, min_n=settings.min_n)
    comparisons = _comparisons(counts, reference, metric, settings)
    for comparison in comparisons:
        if comparison["p_value"] is not None:
            tested.append(_Tested("pairwise", probe, slice_id, metric, counts, comparison,
                                  abs(float(comparison["difference"]))))
    return {"metric": metric,
            "direction": "higher is better" if lower_is_worse(metric) else "higher is worse",
            "groups": _group_entries(counts, groups.attributes, reference, metric, settings),
            "empty_groups": [label for label, n in zip(counts.labels, counts.n) if n == 0],
            "small_groups": [label for label, n in zip(counts.labels, counts.n) if 0 < n < settings.min_n],
            "disparity": disparity_entry,
            "reference": reference.to_dict(),
            "test": test_entry,
            "trend": trend_entry,
            "comparisons": comparisons,
            "note": note}


def _probe_entry(predictions: pd.DataFrame, rows: NDArray[np.intp], probe: ProbeSpec,
                 settings: StatsSettings, tested: list[_Tested]) -> dict[str, Any]:
    outcomes = metric_outcomes(predictions, rows, probe)
    metrics = metric_names(probe)
    overall: dict[str, dict[str, Any]] = {}
    for metric in metrics:
        counted, success = outcomes[metric]
        overall[metric] = _rate_entry(int(np.count_nonzero(counted & success)), int(np.count_nonzero(counted)),
                                      settings)
        overall[metric]["excluded"] = int(rows.size - np.count_nonzero(counted))
    attributes = sorted({attribute for slice_attributes in probe.slices for attribute in slice_attributes})
    attribute_codes = {attribute: attribute_codes_of(predictions[attribute], rows, attribute)
                       for attribute in attributes}
    reference_spec = settings.reference_for(probe.id)
    slices = []
    for slice_attributes in probe.slices:
        groups = slice_groups(attribute_codes, tuple(slice_attributes))
        metric_entries = [
            _metric_entry(probe, groups, metric, group_counts(groups, *outcomes[metric]), settings, tested,
                          reference_spec)
            for metric in metrics]
        slices.append({"id": SLICE_SEPARATOR.join(slice_attributes), "attributes": list(slice_attributes),
                       "rows_missing_attributes": groups.rows_missing_attributes, "metrics": metric_entries})
    if reference_spec.startswith(GROUP_REFERENCE_PREFIX):
        name = reference_spec.removeprefix(GROUP_REFERENCE_PREFIX)
        known = sorted({group["group"] for entry in slices for metric in entry["metrics"] for group in metric["groups"]})
        if name not in known and not any(name in metric["empty_groups"]
                                         for entry in slices for metric in entry["metrics"]):
            raise ClipauditError(f"reference 'group:{name}' for probe {probe.id!r}: no such group in any slice; "
                                 f"groups: {known[:20]}")
    return {"id": probe.id, "kind": probe.kind, "target": probe.target,
            "classes": [cls.id for cls in probe.classes], "metrics": metrics,
            "overall": overall, "slices": slices}


# Effects equal to min_effect up to floating-point rounding (0.12 - 0.10) count as reaching it.
_EFFECT_TOLERANCE = 1e-12


def _adjust_family(tested: Sequence[_Tested], settings: StatsSettings) -> None:
    adjusted = adjust_p_values([item.entry["p_value"] for item in tested], method=settings.correction)
    for item, p_adjusted in zip(tested, adjusted):
        item.entry["p_adjusted"] = float(p_adjusted)
        item.entry["significant"] = bool(p_adjusted < settings.alpha
                                         and item.effect >= settings.min_effect - _EFFECT_TOLERANCE)


def _findings(tested: Sequence[_Tested], settings: StatsSettings) -> list[Finding]:
    return build_findings(
        [(item.probe, item.slice_id, item.metric, item.counts, item.entry)
         for item in tested if item.kind == "pairwise" and item.entry["significant"]],
        settings=settings)


def _family_description(tested: Sequence[_Tested], settings: StatsSettings) -> str:
    by_kind = {kind: sum(1 for item in tested if item.kind == kind) for kind in ("omnibus", "trend", "pairwise")}
    total = len(tested)
    return (f"all tests in this audit, adjusted together ({settings.correction}, controlling the "
            f"{CORRECTION_CONTROLS[settings.correction]}): {total} test{'' if total == 1 else 's'} = "
            f"{by_kind['omnibus']} omnibus across groups + {by_kind['trend']} trend across ordered groups + "
            f"{by_kind['pairwise']} pairwise group-vs-reference, over every probe, slice and metric")


def compute_statistics(predictions: pd.DataFrame, probes: Sequence[ProbeSpec] | Any, *,
                       settings: StatsSettings = StatsSettings()) -> dict[str, Any]:
    """Per-group rates with intervals, disparities with intervals, tests, and findings.

    ``probes`` is a sequence of probes (or a taxonomy with a ``probes`` attribute).
    Returns ``{"statistics": {...}, "probes": [...], "findings": [...]}`` shaped as in
    ``docs/internals.md`` (the caller adds each probe's ``class_details``). Every test
    (omnibus, trend, pairwise) of the audit is one family for the multiple-testing
    correction (Holm 1979 or Benjamini & Hochberg 1995); a test is ``significant`` when
    its adjusted p-value is below ``alpha`` and its effect is at least ``min_effect``.
    Findings are the significant pairwise comparisons. Only plain Python values: no
    numpy scalars and no NaN (missing values are ``None``). Missing columns or probes
    raise :class:`~clipaudit.errors.ClipauditError`.
    """
    probe_list = _probe_list(probes)
    _check_columns(predictions, probe_list)
    for probe_id in settings.reference_by_probe:
        if probe_id not in {probe.id for probe in probe_list}:
            raise ClipauditError(f"reference_by_probe names probe {probe_id!r}, which is not audited; "
                                 f"probes: {[probe.id for probe in probe_list]}")
    rows_by_probe = _probe_rows(predictions, probe_list)
    tested: list[_Tested] = []
    probe_entries = [_probe_entry(predictions, rows_by_probe[probe.id], probe, settings, tested)
                     for probe in probe_list]
    _adjust_family(tested, settings)
    untested = sum(1 for probe in probe_entries for slice_entry in probe["slices"]
                   for metric in slice_entry["metrics"] if metric["test"] is None)
    statistics = {**settings.to_dict(),
                  "interval_method": INTERVAL_LABELS[settings.interval],
                  "test": "Pearson chi-square without continuity correction when every expected count "
                          "is >= 5, else Monte-Carlo permutation chi-square",
                  "pairwise_test": "Fisher exact test when any expected count of the 2 x 2 table is < 5, "
                                   "else pooled two-proportion z test; group against the rest of the "
                                   "population when the reference is overall or rest",
                  "trend_test": "Cochran-Armitage test for trend (scores = order of the attribute's values) "
                                "on slices over one ordered attribute; permutation form when any expected count < 5",
                  "difference_interval": "Newcombe hybrid score (Newcombe 1998, method 10)",
                  "ratio_interval": "log (Katz et al. 1978); odds ratio: logit (Woolf 1955); "
                                    "Haldane-Anscombe +0.5 on zero cells",
                  "spread_interval": "stratified percentile bootstrap (Efron & Tibshirani 1993)",
                  "significance": (f"adjusted p < {settings.alpha:g} ({CORRECTION_LABELS[settings.correction]}) "
                                   f"and effect >= {settings.min_effect:g} "
                                   f"({100 * settings.min_effect:g} percentage points)"),
                  "family": _family_description(tested, settings),
                  "family_size": len(tested),
                  "tests": len(tested),
                  "tests_by_kind": {kind: sum(1 for item in tested if item.kind == kind)
                                    for kind in ("omnibus", "trend", "pairwise")},
                  "untested": untested}
    return {"statistics": statistics, "probes": probe_entries,
            "findings": [finding.to_dict() for finding in _findings(tested, settings)]}
