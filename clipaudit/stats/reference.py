"""What each group is compared with: the overall population, the rest, the largest, the best-off or a named group."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from clipaudit.stats.groups import GroupCounts
from clipaudit.stats.settings import GROUP_REFERENCE_PREFIX
from clipaudit.vocabulary import higher_is_worse


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
            index = int(tested[int(np.argmax(rates) if not higher_is_worse(metric) else np.argmin(rates))])
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


def comparison_samples(counts: GroupCounts, reference: Reference) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    # Successes and size of the sample each group is tested against: the rest of the
    # population (overall, rest) or the reference group.
    if reference.kind == "group":
        return (np.full(counts.n.shape, reference.successes, dtype=np.int64),
                np.full(counts.n.shape, reference.n, dtype=np.int64))
    return counts.successes.sum() - counts.successes, counts.n.sum() - counts.n
