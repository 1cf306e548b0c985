"""Findings: one plain sentence for each significant pairwise comparison.

A finding is a group whose pairwise test against the reference (see
:func:`clipaudit.stats.reference.resolve_reference`) is significant: its adjusted p-value is below ``alpha``
*and* its difference from the reference is at least ``min_effect`` in absolute value.
Findings go both ways and say which way is worse: for ``accuracy`` a lower value is
worse, for harm rates a higher one. Small groups are never findings (they are not
tested); they are flagged ``small`` in the groups with their minimum detectable difference.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from clipaudit import format
from clipaudit.stats.groups import GroupCounts
from clipaudit.stats.intervals import interval
from clipaudit.stats.metrics import ProbeSpec
from clipaudit.stats.multiple import CORRECTION_LABELS
from clipaudit.stats.settings import StatsSettings
from clipaudit.vocabulary import ACCURACY, HARM_RATE, category_of, is_accuracy


@dataclass(frozen=True)
class Finding:
    """A significant difference between one group and its reference.

    ``ci_low``/``ci_high`` bound the group's rate; ``difference_ci_low``/``difference_ci_high``
    bound ``value - reference_value``. ``worse`` says whether the group is worse off
    than the reference (lower accuracy, higher harm rate).
    """

    probe: str
    slice: str
    group: str
    metric: str
    value: float
    reference_value: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    p_adjusted: float
    significant: bool
    text: str
    reference: str = "overall"
    difference_ci_low: float | None = None
    difference_ci_high: float | None = None
    test: str | None = None
    worse: bool | None = None
    n: int | None = None
    alpha: float | None = None
    min_effect: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def describe_outcome(metric: str, probe_id: str) -> str:
    """What a success means for ``metric``, as a verb phrase."""
    if metric == ACCURACY:
        return f"were classified correctly by probe {probe_id}"
    if is_accuracy(metric):
        return f"were classified correctly by probe {probe_id} on its {metric.removeprefix(ACCURACY + '_')} outcomes"
    if metric == HARM_RATE:
        return "were put in a class with a harm category"
    return f"were put in a {category_of(metric)} class"


def describe_reference(reference: str, reference_label: str | None = None) -> str:
    """``'overall'``, ``'in the rest of the population'`` or ``'for White'``."""
    if reference == "overall":
        return "overall"
    if reference == "rest":
        return "in the rest of the population"
    return f"for {reference_label or reference}"


def finding_text(*, group: str, metric: str, probe_id: str, value: float, ci_low: float, ci_high: float,
                 reference_value: float, confidence: float, p_adjusted: float, correction: str,
                 reference: str = "overall", difference_ci: tuple[float, float] | None = None,
                 worse: bool | None = None) -> str:
    """One sentence, e.g. 'Images labelled Black were put in a non_human class in 14.4% of
    cases (95% CI 12.6–16.4%) against 4.9% overall: +9.5 points (95% CI +7.6 to +11.5),
    worse (Holm-adjusted p < 0.001).'"""
    interval_text = "" if difference_ci is None else \
        f" ({format.ci_label(confidence)} {format.points_range(*difference_ci)})"
    verdict = "" if worse is None else (", worse" if worse else ", better")
    return (f"Images labelled {group} {describe_outcome(metric, probe_id)} in {format.percent(value)} of cases "
            f"({format.ci_label(confidence)} {format.percent_range(ci_low, ci_high)}) "
            f"against {format.percent(reference_value)} {describe_reference(reference)}: "
            f"{format.points_number(value - reference_value)} points{interval_text}{verdict} "
            f"({CORRECTION_LABELS.get(correction, correction + '-adjusted')} {format.p_phrase(p_adjusted)}).")


def build_findings(significant: Sequence[tuple[ProbeSpec, str, str, GroupCounts, dict[str, Any]]],
                   *, settings: StatsSettings) -> list[Finding]:
    """Findings for ``(probe, slice id, metric, counts, comparison entry)`` tuples.

    In the one order every output shows them (see :func:`finding_order`).
    """
    findings = []
    for probe, slice_id, metric, counts, comparison in significant:
        n, successes = int(comparison["n"]), int(comparison["successes"])
        bounds = interval(successes, n, method=settings.interval, confidence=settings.confidence)
        value, ci_low, ci_high = successes / n, float(bounds.low), float(bounds.high)
        reference = str(comparison["reference"])
        difference_ci = (float(comparison["difference_ci_low"]), float(comparison["difference_ci_high"]))
        text = finding_text(group=comparison["group"], metric=metric, probe_id=probe.id, value=value,
                            ci_low=ci_low, ci_high=ci_high, reference_value=comparison["reference_value"],
                            confidence=settings.confidence, p_adjusted=comparison["p_adjusted"],
                            correction=settings.correction, reference=reference, difference_ci=difference_ci,
                            worse=bool(comparison["worse"]))
        findings.append(Finding(probe=probe.id, slice=slice_id, group=comparison["group"], metric=metric,
                                value=value, reference_value=float(comparison["reference_value"]),
                                difference=float(comparison["difference"]), ci_low=ci_low, ci_high=ci_high,
                                p_value=float(comparison["p_value"]), p_adjusted=float(comparison["p_adjusted"]),
                                significant=bool(comparison["significant"]), text=text, reference=reference,
                                difference_ci_low=difference_ci[0], difference_ci_high=difference_ci[1],
                                test=comparison["test"], worse=bool(comparison["worse"]), n=n,
                                alpha=float(settings.alpha), min_effect=float(settings.min_effect)))
    findings.sort(key=finding_order)
    return findings


def severity_key(*, worse: bool | None, difference: float, p_adjusted: float) -> tuple[int, float, float]:
    """The one order of findings in every output (audit findings, sweep findings): groups worse
    off first, then the largest difference, then the smallest adjusted p-value."""
    return (0 if worse in (True, None) else 1, -abs(difference), p_adjusted)


def finding_order(finding: Finding) -> tuple:
    """:func:`severity_key`, then probe, slice, metric and group so the order is deterministic.
    results.json lists findings in this order and every output keeps it."""
    return (*severity_key(worse=finding.worse, difference=finding.difference, p_adjusted=finding.p_adjusted),
            finding.probe, finding.slice, finding.metric, finding.group)
