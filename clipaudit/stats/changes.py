"""Per-group change of a rate between two runs: a sweep's variant against its base taxonomy, a
candidate audit against a baseline. Sweep and compare both compute changes here.

- Paired (the same images in both runs): ``after - before`` with Newcombe's (1998b) paired
  interval and the exact McNemar (1947) test on the discordant images
  (:func:`~clipaudit.stats.paired.paired_difference`).
- Independent (two datasets): Newcombe's (1998) hybrid score interval and Fisher's exact test
  (:func:`~clipaudit.stats.hypothesis_tests.pairwise_test`).

Groups come from :func:`~clipaudit.stats.groups.slice_groups` in the audit's order. Every group
with images in the slice is listed; one whose images the metric does not count on a side (an
accuracy group whose targets are all null, say) has no change (``difference`` is None).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from clipaudit.stats.disparities import newcombe_difference
from clipaudit.stats.groups import GroupCounts, SliceGroups
from clipaudit.stats.hypothesis_tests import pairwise_test
from clipaudit.stats.paired import paired_difference


@dataclass(frozen=True)
class GroupChange:
    """One group's rate before and after, the change ``after - before``, its interval and test.

    Paired changes count the images in both runs (``n_pairs``) and say how many images the
    metric now counts as a success that it did not (``now_counted``) and the reverse
    (``no_longer_counted``). A test with one outcome only on both sides has ``p_value`` 1.
    """

    group: str
    values: tuple[str, ...]
    n_before: int
    successes_before: int
    n_after: int
    successes_after: int
    n_pairs: int | None
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    test: str | None
    statistic: float | None
    p_value: float | None
    now_counted: int | None = None
    no_longer_counted: int | None = None

    @property
    def value_before(self) -> float | None:
        return self.successes_before / self.n_before if self.n_before else None

    @property
    def value_after(self) -> float | None:
        return self.successes_after / self.n_after if self.n_after else None

    @property
    def n(self) -> int:
        """The images behind the change: the pairs, or the smaller side."""
        return self.n_pairs if self.n_pairs is not None else min(self.n_before, self.n_after)


def paired_changes(groups: SliceGroups, counted: NDArray[np.bool_], before: NDArray[np.bool_],
                   after: NDArray[np.bool_], *, confidence: float) -> list[GroupChange]:
    """The change of every group with images, on outcomes of the same images (row for row).

    ``counted`` marks the rows the metric counts in both runs; ``before``/``after`` are the
    successes.
    """
    changes = []
    present = np.bincount(groups.codes[groups.codes >= 0], minlength=len(groups.labels)) > 0
    for index, label in enumerate(groups.labels):
        if not present[index]:
            continue
        rows = counted & (groups.codes == index)
        n = int(np.count_nonzero(rows))
        if n == 0:
            changes.append(GroupChange(group=label, values=groups.values[index], n_before=0, successes_before=0,
                                       n_after=0, successes_after=0, n_pairs=0, difference=None, ci_low=None,
                                       ci_high=None, test=None, statistic=None, p_value=None))
            continue
        first, second = after[rows], before[rows]
        both = int(np.count_nonzero(first & second))
        only_after = int(np.count_nonzero(first & ~second))
        only_before = int(np.count_nonzero(~first & second))
        change = paired_difference(both, only_after, only_before, n - both - only_after - only_before,
                                   confidence=confidence)
        changes.append(GroupChange(
            group=label, values=groups.values[index], n_before=n, successes_before=both + only_before,
            n_after=n, successes_after=both + only_after, n_pairs=n, difference=change.difference,
            ci_low=change.ci_low, ci_high=change.ci_high, test=change.test.name, statistic=change.test.statistic,
            p_value=change.test.p_value, now_counted=only_after, no_longer_counted=only_before))
    return changes


def independent_changes(before: GroupCounts, after: GroupCounts, *, present: NDArray[np.bool_],
                        confidence: float) -> list[GroupChange]:
    """The change of every group with images on either side, between two independent samples.

    ``before`` and ``after`` must list the same groups (group counts over one coding of both runs);
    ``present`` marks the groups with any image in the slice on either side.
    """
    if before.labels != after.labels:
        raise ValueError("independent_changes: the two sides must be counted over the same groups")
    changes = []
    for index, label in enumerate(before.labels):
        n_before, k_before = int(before.n[index]), int(before.successes[index])
        n_after, k_after = int(after.n[index]), int(after.successes[index])
        if not present[index]:
            continue
        common = dict(group=label, values=before.values[index], n_before=n_before, successes_before=k_before,
                      n_after=n_after, successes_after=k_after, n_pairs=None)
        if n_before == 0 or n_after == 0:
            changes.append(GroupChange(**common, difference=None, ci_low=None, ci_high=None, test=None,
                                       statistic=None, p_value=None))
            continue
        difference = newcombe_difference(k_after, n_after, k_before, n_before, confidence=confidence)
        test = pairwise_test(k_after, n_after, k_before, n_before)
        changes.append(GroupChange(
            **common, difference=float(difference.estimate), ci_low=float(max(-1.0, difference.low)),
            ci_high=float(min(1.0, difference.high)), test=None if test is None else test.name,
            statistic=None if test is None else test.statistic,
            # Two samples with one outcome only: nothing changed that a test could see.
            p_value=1.0 if test is None else test.p_value))
    return changes
