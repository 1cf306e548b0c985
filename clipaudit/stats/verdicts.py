"""Per slice and metric, one answer at the audit's own strictness: do the groups differ, and how far apart are they?

An audit tests each slice x metric several ways (an omnibus test across the groups, a trend test over
ordered groups, each group against the reference), all in one family for the multiple-testing
correction. Any of those rejections means the groups are not all equal, so the **verdict** of a
slice x metric is significant when any of its tests is significant after the family's correction,
and its adjusted p-value is that test's (the smallest one's when none is significant). It always
agrees with the findings, which are its significant group comparisons.

The gap's **family interval** is the simultaneous interval of max - min (MOVER-Jeffreys over every
pair of groups, :func:`~clipaudit.stats.spread.spread_interval`) at ``1 - (1 - confidence) / m``,
``m`` the family's size: the level each comparison's simultaneous interval is computed at. Beside
a verdict it reads as strictly as the tests: a gap whose 95% interval clears zero only because
nothing corrects it for the audit's other tests does not look like a disparity the tests missed.
Its lower bound also takes the group comparisons' simultaneous intervals into account: the
reference (the rest, the overall rate, another group) lies between the lowest and the highest
group rate, so ``|group - reference| <= gap``, and a comparison whose simultaneous interval clears
zero bounds the gap away from zero as well. That holds when the reference's images all belong to
compared groups: always for a reference group; for ``overall`` and ``rest`` only when no group is
under ``min_n`` (a small group can pull the overall rate outside the compared groups' range).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from clipaudit.stats.groups import GroupCounts
from clipaudit.stats.spread import spread_interval

def metric_verdict(metric_entry: dict[str, Any]) -> dict[str, Any] | None:
    """The verdict of one slice x metric of results.json (its tests already adjusted); None when no test ran."""
    candidates = [("omnibus", None, metric_entry.get("test")), ("trend", None, metric_entry.get("trend"))]
    candidates += [("pairwise", comparison["group"], comparison) for comparison in metric_entry.get("comparisons", [])]
    tested = [(source, group, test) for source, group, test in candidates
              if test is not None and test.get("p_adjusted") is not None]
    if not tested:
        return None
    significant = [candidate for candidate in tested if candidate[2]["significant"]]
    source, group, test = min(significant or tested, key=lambda candidate: candidate[2]["p_adjusted"])
    return {"significant": bool(significant), "p_adjusted": float(test["p_adjusted"]), "source": source,
            "group": group}


def family_level(confidence: float, family_size: int) -> float:
    """The per-interval level that makes an interval as strict as a test in a family of ``family_size``."""
    return 1.0 - (1.0 - confidence) / max(1, family_size)


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
