"""The statistics engine's options (:class:`StatsSettings`), validated on construction."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from clipaudit.errors import ClipauditError
from clipaudit.stats.intervals import INTERVAL_METHODS, IntervalMethod, validate_confidence
from clipaudit.stats.multiple import CORRECTIONS, Correction


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
    ``reference_by_probe``; ``power``: the power at which the minimum detectable difference
    is computed; ``ordered_attributes``: attributes whose values are ordered (a trend
    test is run on slices over one of them). ``bootstrap``, ``permutation_resamples`` and
    ``seed`` are validated and recorded but no longer change any number: every test is exact
    or asymptotic and the spread intervals are simultaneous, so nothing is Monte Carlo (they
    are kept so that existing calls, command lines and results.json readers keep working).
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
