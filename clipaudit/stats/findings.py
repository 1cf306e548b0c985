"""Findings: one per disparity, in plain words, worst first.

A finding starts from significant pairwise comparisons (see
:func:`clipaudit.stats.reference.resolve_reference`): adjusted p-value below ``alpha`` *and*
the difference the test compares at least ``min_effect``. One disparity shows in several
places: the race group Black in the ``race`` slice, Black Male and Black Female in
``race x gender``, the harm rate and the crime rate. Those comparisons are one finding: the
comparisons of one probe that point the same way (worse or better) and whose groups nest
(``{race: Black}`` is contained in ``{race: Black, gender: Male}``) are grouped under the
coarsest group, the most severe comparison leads the finding, and the others are listed in
``related`` (with ``slices``, ``metrics`` and ``groups`` naming everything it covers). Findings
go both ways; groups worse off come first, better-off groups after them and never grouped
with them. Small groups are never findings (they are not tested); they are flagged ``small``
in the groups with their minimum detectable difference.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from clipaudit import format
from clipaudit.stats.intervals import interval
from clipaudit.stats.metrics import ProbeSpec
from clipaudit.stats.multiple import CORRECTION_LABELS
from clipaudit.stats.settings import StatsSettings
from clipaudit.vocabulary import ACCURACY, HARM_RATE, category_of, is_accuracy


@dataclass(frozen=True)
class Finding:
    """A significant difference between one group and its reference.

    ``ci_low``/``ci_high`` bound the group's rate; ``difference_ci_low``/``difference_ci_high``
    bound ``value - reference_value`` (per-comparison intervals); ``simultaneous_ci_low/high``
    bound it together with every other comparison of the audit (family-adjusted). ``worse``
    says whether the group is worse off than the reference (lower accuracy, higher harm
    rate). The fields describe the comparison that leads the disparity; ``related`` lists the
    other comparisons of the same disparity (see the module docstring).
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
    effect: float | None = None
    effect_measure: str | None = None
    simultaneous_ci_low: float | None = None
    simultaneous_ci_high: float | None = None
    slices: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    related: list[dict[str, Any]] = field(default_factory=list)

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
                 worse: bool | None = None, simultaneous_ci: tuple[float, float] | None = None) -> str:
    """One sentence, e.g. 'Images labelled Black were put in a non_human class in 14.4% of
    cases (95% CI 12.6–16.4%) against 4.9% overall: +9.5 points (95% CI +7.6 to +11.5),
    worse (Holm-adjusted p < 0.001).'"""
    interval_text = "" if difference_ci is None else \
        f" ({format.ci_label(confidence)} {format.points_range(*difference_ci)})"
    if difference_ci is not None and simultaneous_ci is not None:
        # Which kind each interval is: one comparison alone, and all of the audit's together.
        interval_text = (f" ({format.ci_label(confidence)} {format.points_range(*difference_ci)} for this "
                         f"comparison, {format.points_range(*simultaneous_ci)} simultaneous with every test)")
    verdict = "" if worse is None else (", worse" if worse else ", better")
    return (f"Images labelled {group} {describe_outcome(metric, probe_id)} in {format.percent(value)} of cases "
            f"({format.ci_label(confidence)} {format.percent_range(ci_low, ci_high)}) "
            f"against {format.percent(reference_value)} {describe_reference(reference)}: "
            f"{format.points_number(value - reference_value)} points{interval_text}{verdict} "
            f"({CORRECTION_LABELS.get(correction, correction + '-adjusted')} {format.p_phrase(p_adjusted)}).")


@dataclass(frozen=True)
class _Member:
    probe: ProbeSpec
    slice_id: str
    metric: str
    values: frozenset[tuple[str, str]]
    comparison: dict[str, Any]

    @property
    def severity(self) -> tuple:
        comparison = self.comparison
        return (*severity_key(worse=bool(comparison["worse"]), difference=float(comparison["difference"]),
                              p_adjusted=float(comparison["p_adjusted"])),
                self.probe.id, self.slice_id, self.metric, comparison["group"])


def _related_entry(member: _Member) -> dict[str, Any]:
    comparison = member.comparison
    return {"slice": member.slice_id, "group": comparison["group"], "metric": member.metric,
            "value": float(comparison["value"]), "reference_value": float(comparison["reference_value"]),
            "difference": float(comparison["difference"]),
            "difference_ci_low": float(comparison["difference_ci_low"]),
            "difference_ci_high": float(comparison["difference_ci_high"]),
            "p_adjusted": float(comparison["p_adjusted"]), "n": int(comparison["n"])}


def group_disparities(members: Sequence[_Member]) -> list[list[_Member]]:
    """Comparisons grouped into disparities (module docstring), each worst first, worst disparity first.

    Coarse groups (fewest attributes) found first anchor a disparity; a comparison joins the
    most severe anchor of its probe and direction whose values it contains, else anchors its own.
    """
    anchors: list[list[_Member]] = []
    for member in sorted(members, key=lambda item: (len(item.values), item.severity)):
        homes = [disparity for disparity in anchors
                 if disparity[0].probe.id == member.probe.id
                 and bool(disparity[0].comparison["worse"]) == bool(member.comparison["worse"])
                 and disparity[0].values <= member.values]
        if homes:
            homes[0].append(member)
        else:
            anchors.append([member])
    grouped = [sorted(disparity, key=lambda item: item.severity) for disparity in anchors]
    return sorted(grouped, key=lambda disparity: disparity[0].severity)


def _also_text(related: Sequence[_Member]) -> str:
    if not related:
        return ""
    parts = [f"{member.comparison['group']} ({member.slice_id}, {member.metric}: "
             f"{format.points_number(float(member.comparison['difference']))} points)" for member in related]
    return " The same disparity shows in " + "; ".join(parts) + "."


def build_findings(significant: Sequence[tuple[ProbeSpec, str, str, dict[str, str], dict[str, Any]]],
                   *, settings: StatsSettings) -> list[Finding]:
    """One finding per disparity from ``(probe, slice id, metric, group values, comparison entry)``
    tuples (``group values`` maps each attribute of the slice to the group's value).

    In the one order every output shows them (see :func:`finding_order`): by the leading comparison.
    """
    members = [_Member(probe, slice_id, metric, frozenset(values.items()), comparison)
               for probe, slice_id, metric, values, comparison in significant]
    findings = []
    for disparity in group_disparities(members):
        lead, related = disparity[0], disparity[1:]
        probe, slice_id, metric, comparison = lead.probe, lead.slice_id, lead.metric, lead.comparison
        n, successes = int(comparison["n"]), int(comparison["successes"])
        bounds = interval(successes, n, method=settings.interval, confidence=settings.confidence)
        value, ci_low, ci_high = successes / n, float(bounds.low), float(bounds.high)
        reference = str(comparison["reference"])
        difference_ci = (float(comparison["difference_ci_low"]), float(comparison["difference_ci_high"]))
        text = finding_text(group=comparison["group"], metric=metric, probe_id=probe.id, value=value,
                            ci_low=ci_low, ci_high=ci_high, reference_value=comparison["reference_value"],
                            confidence=settings.confidence, p_adjusted=comparison["p_adjusted"],
                            correction=settings.correction, reference=reference, difference_ci=difference_ci,
                            worse=bool(comparison["worse"]),
                            simultaneous_ci=(float(comparison["simultaneous_ci_low"]),
                                             float(comparison["simultaneous_ci_high"]))) + _also_text(related)
        findings.append(Finding(probe=probe.id, slice=slice_id, group=comparison["group"], metric=metric,
                                value=value, reference_value=float(comparison["reference_value"]),
                                difference=float(comparison["difference"]), ci_low=ci_low, ci_high=ci_high,
                                p_value=float(comparison["p_value"]), p_adjusted=float(comparison["p_adjusted"]),
                                significant=bool(comparison["significant"]), text=text, reference=reference,
                                difference_ci_low=difference_ci[0], difference_ci_high=difference_ci[1],
                                test=comparison["test"], worse=bool(comparison["worse"]), n=n,
                                alpha=float(settings.alpha), min_effect=float(settings.min_effect),
                                effect=float(comparison["effect"]), effect_measure=str(comparison["effect_measure"]),
                                simultaneous_ci_low=comparison["simultaneous_ci_low"],
                                simultaneous_ci_high=comparison["simultaneous_ci_high"],
                                slices=_unique(member.slice_id for member in disparity),
                                metrics=_unique(member.metric for member in disparity),
                                groups=_unique(member.comparison["group"] for member in disparity),
                                related=[_related_entry(member) for member in related]))
    return findings


def _unique(items: Any) -> list[str]:
    return list(dict.fromkeys(str(item) for item in items))


def severity_key(*, worse: bool | None, difference: float, p_adjusted: float) -> tuple[int, float, float]:
    """The one order of findings in every output (audit findings, sweep findings): groups worse
    off first, then the largest difference, then the smallest adjusted p-value."""
    return (0 if worse in (True, None) else 1, -abs(difference), p_adjusted)


def finding_order(finding: Finding) -> tuple:
    """:func:`severity_key`, then probe, slice, metric and group so the order is deterministic.
    results.json lists findings in this order and every output keeps it."""
    return (*severity_key(worse=finding.worse, difference=finding.difference, p_adjusted=finding.p_adjusted),
            finding.probe, finding.slice, finding.metric, finding.group)
