"""Each rule on each group: pass, fail (with the bounds exceeded) or skipped, and the words for a violation.

Policies, stated once:

- A *small* group (fewer than ``min_n`` images, pairs when paired, or none on one side) is
  reported and flagged but no rule can fail on it, absolute bounds included: a rate from a
  handful of images moves by whole tens of points when one image flips, and a CI gate on it
  would fail on noise. Small groups stay out of the Holm family and of the gap.
- ``max_rise`` / ``max_drop``: the worsening must not exceed the bound; with
  ``require_significance: true`` a violation also needs the adjusted p below alpha.
  ``max`` / ``min``: bounds on each group's candidate value. ``max_gap``: bound on the
  candidate's max - min across the non-small groups. ``no_significant_worsening``: fails when
  the rate got worse and the change is significant.
- Bounds are compared exactly (up to 1e-12 for floating-point noise), not after rounding.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from clipaudit import format
from clipaudit.compare.groups import GroupComparison
from clipaudit.compare.inputs import CompareSettings
from clipaudit.compare.plan import Check
from clipaudit.compare.thresholds import Rule
from clipaudit.vocabulary import GAP_GROUP

TOLERANCE = 1e-12

# Reasons a check fails, as compare.json, compare.md and junit.xml name them.
MAX_RISE_EXCEEDED = "max_rise exceeded"
MAX_DROP_EXCEEDED = "max_drop exceeded"
MAX_EXCEEDED = "max exceeded"
MIN_NOT_MET = "below min"
MAX_GAP_EXCEEDED = "max_gap exceeded"
SIGNIFICANT_WORSENING = "significant worsening"


@dataclass
class GroupResult:
    check: Check
    group: GroupComparison
    status: str  # "pass", "fail" or "skipped"
    reasons: list[str]
    notes: list[str]


@dataclass
class GapResult:
    check: Check
    baseline_gap: float | None
    candidate_gap: float | None
    max_group: str | None
    min_group: str | None
    groups_compared: int
    status: str
    reasons: list[str]


def _exceeds(value: float, bound: float) -> bool:
    return value - bound > TOLERANCE


def evaluate_group(check: Check, group: GroupComparison, settings: CompareSettings) -> GroupResult:
    rule = check.rule
    if group.small:
        side = ("no images in the baseline" if group.n_baseline == 0 else
                "no images in the candidate" if group.n_candidate == 0 else f"n < min_n ({settings.min_n})")
        return GroupResult(check, group, "skipped", [], [f"not checked: {side}"])
    reasons: list[str] = []
    notes: list[str] = []
    significant = group.significant_worsening(settings.alpha)
    worsening = group.worsening
    bound = rule.max_worsening
    if bound is not None and worsening is not None and _exceeds(worsening, bound):
        reason = MAX_RISE_EXCEEDED if rule.max_rise is not None else MAX_DROP_EXCEEDED
        if rule.require_significance and not significant:
            notes.append(f"{reason}, but not significant (adjusted p >= {format.alpha(settings.alpha)})")
        else:
            reasons.append(reason)
    value = group.candidate_value
    if rule.max is not None and value is not None and _exceeds(value, rule.max):
        reasons.append(MAX_EXCEEDED)
    if rule.min is not None and value is not None and _exceeds(rule.min, value):
        reasons.append(MIN_NOT_MET)
    if rule.no_significant_worsening and significant:
        reasons.append(SIGNIFICANT_WORSENING)
    return GroupResult(check, group, "fail" if reasons else "pass", reasons, notes)


def evaluate_gap(check: Check, groups: Sequence[GroupComparison]) -> GapResult | None:
    if check.rule.max_gap is None:
        return None
    checked = [group for group in groups if not group.small]
    if len(checked) < 2:
        return GapResult(check, None, None, None, None, len(checked), "skipped", [])
    by_candidate = sorted(checked, key=lambda group: group.candidate_value)
    baseline_values = [group.baseline_value for group in checked]
    candidate_gap = by_candidate[-1].candidate_value - by_candidate[0].candidate_value
    failed = _exceeds(candidate_gap, check.rule.max_gap)
    return GapResult(check, max(baseline_values) - min(baseline_values), candidate_gap,
                     by_candidate[-1].group, by_candidate[0].group, len(checked),
                     "fail" if failed else "pass", [MAX_GAP_EXCEEDED] if failed else [])


def bound_text(reason: str, rule: Rule) -> str:
    if reason in (MAX_RISE_EXCEEDED, MAX_DROP_EXCEEDED):
        return f"{reason} ({format.points_size(rule.max_worsening)})"
    if reason == MAX_EXCEEDED:
        return f"{reason} ({format.percent(rule.max)})"
    if reason == MIN_NOT_MET:
        return f"{reason} ({format.percent(rule.min)})"
    if reason == MAX_GAP_EXCEEDED:
        return f"{reason} ({format.points_size(rule.max_gap)})"
    return reason


def violation_text(result: GroupResult | GapResult, settings: CompareSettings) -> str:
    """One line: rule, group, baseline -> candidate, interval, p, what was exceeded."""
    check = result.check
    where = "" if check.rule.where == "default" else f" ({check.rule.where})"
    head = f"{check.rule.id}{where} {check.rule.probe} {check.rule.metric} by {check.slice_id}"
    reasons = "; ".join(bound_text(reason, check.rule) for reason in result.reasons)
    if isinstance(result, GapResult):
        return (f"{head}: {GAP_GROUP}: {format.points_size(result.baseline_gap)} \u2192 "
                f"{format.points_size(result.candidate_gap)} (highest {result.max_group}, lowest "
                f"{result.min_group}): {reasons}")
    group = result.group
    return (f"{head}: {group.group}: {format.percent(group.baseline_value)} \u2192 "
            f"{format.percent(group.candidate_value)} ({format.points(group.delta)}, "
            f"{format.ci_label(settings.confidence)} {format.points(group.change.ci_low)} to "
            f"{format.points(group.change.ci_high)}), p {format.p_value(group.p_value)}, "
            f"adjusted p {format.p_value(group.p_adjusted)}: {reasons}")


def violation_record(result: GroupResult | GapResult, settings: CompareSettings) -> dict[str, Any]:
    check = result.check
    record: dict[str, Any] = {"rule": check.rule.id, "where": check.rule.where, "probe": check.rule.probe,
                              "metric": check.rule.metric, "slice": check.slice_id, "reasons": result.reasons,
                              "text": violation_text(result, settings)}
    if isinstance(result, GapResult):
        record.update(group=GAP_GROUP, baseline=result.baseline_gap, candidate=result.candidate_gap,
                      delta=None, ci_low=None, ci_high=None, p_value=None, p_adjusted=None)
    else:
        group = result.group
        record.update(group=group.group, baseline=group.baseline_value, candidate=group.candidate_value,
                      delta=group.delta, ci_low=group.change.ci_low, ci_high=group.change.ci_high, p_value=group.p_value,
                      p_adjusted=group.p_adjusted)
    return record
