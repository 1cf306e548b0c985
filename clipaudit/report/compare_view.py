"""compare.html: a compare.json document -> display-ready dataclasses -> jinja2 template (autoescape on).

The comparison decides everything (pass, fail, skipped; significance); this module only orders
and labels it: violations first, then each check's groups side by side (baseline, candidate,
change with its interval, p and adjusted p). Numbers are rounded by :mod:`clipaudit.format`,
as in compare.md (:mod:`.compare_exports`) and the stderr lines, so a number reads the same everywhere.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from clipaudit import format
from clipaudit.vocabulary import direction_phrase

from .templating import environment

COMPARE_TEMPLATE = "compare.html.j2"
#: The group name compare.json gives a violated gap bound.
GAP_GROUP = "(gap across groups)"


def change_interval(low: float | None, high: float | None) -> str:
    """A change's interval with its unit: '+3.0 pp to +27.0 pp'."""
    if low is None or high is None:
        return format.NOT_AVAILABLE
    return f"{format.points(low)} to {format.points(high)}"


@dataclass(frozen=True)
class ChangeCells:
    """One group's numbers side by side, formatted (a gap's are in points, with no test)."""

    baseline: str
    candidate: str
    change: str
    interval: str
    p_value: str
    p_adjusted: str

    def as_tuple(self) -> tuple[str, ...]:
        return (self.baseline, self.candidate, self.change, self.interval, self.p_value, self.p_adjusted)


def change_cells(record: Mapping[str, Any], *, gap: bool = False) -> ChangeCells:
    """``record`` holds baseline, candidate, delta, ci_low, ci_high, p_value and p_adjusted (a
    compare.json violation, or a group flattened); ``gap``: the values are gaps between groups."""
    value = format.points_size if gap else format.percent
    return ChangeCells(
        baseline=value(record["baseline"]), candidate=value(record["candidate"]),
        change=format.points(record["delta"]), interval=change_interval(record["ci_low"], record["ci_high"]),
        p_value=format.p_value(record["p_value"]), p_adjusted=format.p_value(record["p_adjusted"]),
    )


def group_record(group: Mapping[str, Any]) -> dict[str, Any]:
    """A compare.json check's group entry with its two sides' values flattened, as in a violation."""
    return {"baseline": group["baseline"]["value"], "candidate": group["candidate"]["value"],
            **{key: group[key] for key in ("delta", "ci_low", "ci_high", "p_value", "p_adjusted")}}


@dataclass(frozen=True)
class RowView:
    """One group of a check, formatted."""

    group: str
    n: str
    cells: ChangeCells
    status: str          # pass, fail, skipped
    reasons: str
    notes: str
    worse: bool          # the rate moved in the worse direction


@dataclass(frozen=True)
class ViolationView:
    """One violated rule, formatted, linking to its check."""

    rule: str
    where: str
    probe: str
    metric: str
    slice: str
    group: str
    cells: ChangeCells
    reasons: str
    anchor: str


@dataclass(frozen=True)
class CheckView:
    """One rule on one probe, metric and slice: a row per group, and the gap when bounded."""

    anchor: str
    rule: str
    where: str
    probe: str
    metric: str
    slice: str
    direction: str
    passed: bool
    bounds: str
    rows: tuple[RowView, ...]
    gap: str | None


@dataclass(frozen=True)
class SideView:
    """One of the two audits compared."""

    role: str
    path: str
    model: str
    dataset: str
    fingerprint: str
    taxonomy: str
    created_at: str


@dataclass(frozen=True)
class CompareView:
    """Everything compare.html shows: the verdict, the violations, every check."""

    passed: bool
    verdict: str
    summary: Mapping[str, int]
    sides: tuple[SideView, SideView]
    pairing: str
    pairing_note: str | None
    notes: tuple[str, ...]
    settings: Mapping[str, Any]  # compare.json's settings; the template formats them with filters
    thresholds: str
    violations: tuple[ViolationView, ...]
    checks: tuple[CheckView, ...]
    clipaudit_version: str
    created_at: str


def _anchor(index: int) -> str:
    return f"check-{index + 1}"


def _bounds(rule: Mapping[str, Any]) -> str:
    parts = []
    for key in ("max_rise", "max_drop", "max_gap"):
        if rule.get(key) is not None:
            parts.append(f"{key} {format.points_size(rule[key])}")
    for key in ("max", "min"):
        if rule.get(key) is not None:
            parts.append(f"{key} {format.percent(rule[key])}")
    if rule.get("no_significant_worsening"):
        parts.append("no significant worsening")
    if rule.get("require_significance"):
        parts.append("violations need significance")
    return ", ".join(parts)


def _row(group: Mapping[str, Any]) -> RowView:
    n = (format.count(group["n_pairs"]) + " pairs" if group["n_pairs"] is not None
         else f"{format.count(group['baseline']['n'])} / {format.count(group['candidate']['n'])}")
    worsening = group.get("worsening")
    return RowView(
        group=group["group"], n=n, cells=change_cells(group_record(group)),
        status=group["status"], reasons="; ".join(group["reasons"]), notes="; ".join(group["notes"]),
        worse=worsening is not None and worsening > 0,
    )


def _gap_text(gap: Mapping[str, Any]) -> str:
    return (f"Gap across groups (highest minus lowest candidate rate, {gap['groups_compared']} groups): "
            f"{format.points_size(gap['baseline'])} in the baseline, "
            f"{format.points_size(gap['candidate'])} in the candidate "
            f"(bound {format.points_size(gap['max_gap'])}): {gap['status']}")


def build_compare_view(document: Mapping[str, Any]) -> CompareView:
    rules = {rule["id"]: rule for rule in document.get("rules", [])}
    anchors: dict[tuple[str, str, str, str], str] = {}
    checks = []
    for index, check in enumerate(document["checks"]):
        anchor = _anchor(index)
        anchors[(check["rule"], check["probe"], check["metric"], check["slice"])] = anchor
        checks.append(CheckView(
            anchor=anchor, rule=check["rule"], where=check["where"], probe=check["probe"], metric=check["metric"],
            slice=check["slice"], direction=direction_phrase(check["metric"]),
            passed=check["passed"], bounds=_bounds(rules.get(check["rule"], {})),
            rows=tuple(_row(group) for group in check["groups"]),
            gap=None if check["gap"] is None else _gap_text(check["gap"]),
        ))
    violations = tuple(ViolationView(
        rule=violation["rule"], where=violation["where"], probe=violation["probe"], metric=violation["metric"],
        slice=violation["slice"], group=violation["group"],
        cells=change_cells(violation, gap=violation["group"] == GAP_GROUP), reasons="; ".join(violation["reasons"]),
        anchor=anchors.get((violation["rule"], violation["probe"], violation["metric"], violation["slice"]), ""),
    ) for violation in document["violations"])
    sides = tuple(SideView(
        role=role, path=document[role]["path"], model=str(format.or_dash(document[role].get("model"))),
        dataset=str(format.or_dash(document[role]["dataset"].get("spec"))),
        fingerprint=str(format.or_dash(document[role]["dataset"].get("fingerprint"))),
        taxonomy=str(format.or_dash(document[role]["taxonomy"].get("name"))),
        created_at=str(format.or_dash(document[role].get("created_at"))),
    ) for role in ("baseline", "candidate"))
    settings = document["settings"]
    return CompareView(
        passed=document["passed"], verdict="passed" if document["passed"] else "failed",
        summary=document["summary"], sides=sides,  # type: ignore[arg-type]
        pairing=document["pairing"]["reason"], pairing_note=document["pairing"]["note"],
        notes=tuple(note for note in document["notes"] if note != document["pairing"]["note"]),
        settings=settings,
        thresholds=settings["thresholds"] or settings.get("thresholds_description") or format.NOT_AVAILABLE,
        violations=violations, checks=tuple(checks), clipaudit_version=document["clipaudit_version"],
        created_at=document["created_at"],
    )


def render_compare_html(document: Mapping[str, Any]) -> str:
    """compare.html for a compare.json document: one self-contained page, violations first."""
    return environment().get_template(COMPARE_TEMPLATE).render(view=build_compare_view(document))
