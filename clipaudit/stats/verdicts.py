"""Per slice and metric, one answer at the audit's own strictness: do the groups differ, and how far apart are they?

An audit tests each slice x metric several ways (an omnibus test across the groups, a trend test over
ordered groups, each group against the reference), all in one family for the multiple-testing
correction. Any of those rejections means the groups are not all equal, so the **verdict** of a
slice x metric is significant when any of its tests is significant after the family's correction,
and its adjusted p-value is that test's (the smallest one's when none is significant; among
significant ones, a comparison that is a finding comes first, so the group a verdict names is one
the findings name). Every finding's table has a significant verdict.

The gap's **family interval** is the simultaneous interval of max - min (MOVER-Jeffreys over every
pair of groups, :func:`~clipaudit.stats.spread.spread_interval`) at ``1 - (1 - confidence) / M``,
``M`` the larger of the family's size and the number of gaps the audit reports: the gaps' pairwise
intervals cover together with probability at least ``confidence``, as the comparisons'
simultaneous intervals do (``1 - (1 - confidence) / m`` each). Its lower bound also takes those
comparison intervals into account: the reference (the rest, the overall rate, another group) lies
between the lowest and the highest group rate, so ``|group - reference| <= gap``, and a comparison
whose simultaneous interval clears zero bounds the gap away from zero as well. That holds when the
reference's images all belong to compared groups: always for a reference group; for ``overall``
and ``rest`` only when no group is under ``min_n`` (a small group can pull the overall rate outside
the compared groups' range). Together, every gap interval and every comparison interval of the
audit cover with probability at least ``1 - 2 (1 - confidence)``: each half of the error is spent
once. One gap interval alone misses at most ``(k + 1) (1 - confidence) / M`` for ``k`` comparisons.

Verdict and interval come from different procedures (exact tests under Holm or BH; MOVER-Jeffreys
at Bonferroni levels), so near the threshold a cell can still show a significant verdict with an
interval reaching zero, or the reverse; away from it they agree.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from clipaudit.stats.groups import GroupCounts
from clipaudit.stats.spread import spread_interval

def metric_verdict(metric_entry: dict[str, Any]) -> dict[str, Any] | None:
    """The verdict of one slice x metric of results.json (its tests adjusted, its findings chosen);
    None when no test ran."""
    candidates = [("omnibus", None, metric_entry.get("test")), ("trend", None, metric_entry.get("trend"))]
    candidates += [("pairwise", comparison["group"], comparison) for comparison in metric_entry.get("comparisons", [])]
    tested = [(source, group, test) for source, group, test in candidates
              if test is not None and test.get("p_adjusted") is not None]
    if not tested:
        return None
    significant = [candidate for candidate in tested if candidate[2]["significant"]]
    # A significant comparison held back from the findings (finding_note) comes after those that are findings.
    source, group, test = min(significant or tested,
                              key=lambda candidate: (bool(candidate[2].get("finding_note")), candidate[2]["p_adjusted"]))
    return {"significant": bool(significant), "p_adjusted": float(test["p_adjusted"]), "source": source,
            "group": group}


def family_level(confidence: float, family_size: int, gaps: int) -> float:
    """The level of each gap's pairwise intervals: all of the audit's gaps cover together with
    probability at least ``confidence``, and none is looser than a comparison's simultaneous interval."""
    return 1.0 - (1.0 - confidence) / max(1, family_size, gaps)


def family_gap_interval(counts: GroupCounts, comparisons: Sequence[Mapping[str, Any]], reference_kind: str, *,
                        min_n: int, level: float) -> tuple[float, float] | None:
    """The gap's family interval over the groups with n >= min_n at ``level`` (module docstring);
    ``comparisons`` are the metric's, their simultaneous intervals filled. None under two groups."""
    qualifies = counts.n >= min_n
    if int(qualifies.sum()) < 2:
        return None
    spread = spread_interval(counts.successes[qualifies], counts.n[qualifies], confidence=level)
    low = spread.gap_low
    if reference_kind == "group" or not bool(((counts.n > 0) & ~qualifies).any()):
        for comparison in comparisons:
            if comparison.get("simultaneous_ci_low") is not None:
                low = max(low, comparison["simultaneous_ci_low"], -comparison["simultaneous_ci_high"])
    return low, spread.gap_high
