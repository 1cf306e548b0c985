"""compare.html: a compare.json document -> display-ready dataclasses -> jinja2 template (autoescape on).

The comparison decides everything (pass, fail, skipped; significance); this module only orders
and labels it: violations first, then each check's groups side by side (baseline, candidate,
change with its interval, p and adjusted p). Rounding uses the report's ``format_*`` functions,
as compare.md and the stderr lines do, so a number reads the same everywhere.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from .view import NOT_AVAILABLE, format_count, format_p_value, format_percent

TEMPLATES_DIR = Path(__file__).parent / "templates"
COMPARE_TEMPLATE = "compare.html.j2"
GAP_GROUP = "(gap across groups)"


def format_signed_points(difference: float | None) -> str:
    """A change in percentage points with its sign: 0.15 -> '+15.0 pp'."""
    if difference is None:
        return NOT_AVAILABLE
    return f"{difference * 100:+.1f} pp"


def format_change_interval(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return NOT_AVAILABLE
    return f"{format_signed_points(low)} to {format_signed_points(high)}"


@dataclass(frozen=True)
class RowView:
    group: str
    n: str
    baseline: str
    candidate: str
    change: str
    interval: str
    p_value: str
    p_adjusted: str
    status: str          # pass, fail, skipped
    reasons: str
    notes: str
    worse: bool          # the rate moved in the worse direction


@dataclass(frozen=True)
class ViolationView:
    rule: str
    where: str
    probe: str
    metric: str
    slice: str
    group: str
    baseline: str
    candidate: str
    change: str
    interval: str
    p_value: str
    p_adjusted: str
    reasons: str
    anchor: str


@dataclass(frozen=True)
class CheckView:
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
    role: str
    path: str
    model: str
    dataset: str
    fingerprint: str
    taxonomy: str
    created_at: str


@dataclass(frozen=True)
class CompareView:
    passed: bool
    verdict: str
    summary: Mapping[str, int]
    sides: tuple[SideView, SideView]
    pairing: str
    pairing_note: str | None
    notes: tuple[str, ...]
    alpha: str
    confidence: str
    min_n: int
    family_size: int
    thresholds: str
    violations: tuple[ViolationView, ...]
    checks: tuple[CheckView, ...]
    clipaudit_version: str
    created_at: str


def _text(value: Any) -> str:
    return NOT_AVAILABLE if value is None else str(value)


def _anchor(index: int) -> str:
    return f"check-{index + 1}"


def _bounds(rule: Mapping[str, Any]) -> str:
    parts = []
    for key in ("max_rise", "max_drop", "max_gap"):
        if rule.get(key) is not None:
            parts.append(f"{key} {rule[key] * 100:.1f} pp")
    for key in ("max", "min"):
        if rule.get(key) is not None:
            parts.append(f"{key} {format_percent(rule[key])}")
    if rule.get("no_significant_worsening"):
        parts.append("no significant worsening")
    if rule.get("require_significance"):
        parts.append("violations need significance")
    return ", ".join(parts)


def _row(group: Mapping[str, Any]) -> RowView:
    n = (format_count(group["n_pairs"]) + " pairs" if group["n_pairs"] is not None
         else f"{format_count(group['baseline']['n'])} / {format_count(group['candidate']['n'])}")
    worsening = group.get("worsening")
    return RowView(
        group=group["group"], n=n, baseline=format_percent(group["baseline"]["value"]),
        candidate=format_percent(group["candidate"]["value"]), change=format_signed_points(group["delta"]),
        interval=format_change_interval(group["ci_low"], group["ci_high"]),
        p_value=format_p_value(group["p_value"]), p_adjusted=format_p_value(group["p_adjusted"]),
        status=group["status"], reasons="; ".join(group["reasons"]), notes="; ".join(group["notes"]),
        worse=worsening is not None and worsening > 0,
    )


def build_compare_view(document: Mapping[str, Any]) -> CompareView:
    rules = {rule["id"]: rule for rule in document.get("rules", [])}
    anchors: dict[tuple[str, str, str, str], str] = {}
    checks = []
    for index, check in enumerate(document["checks"]):
        anchor = _anchor(index)
        anchors[(check["rule"], check["probe"], check["metric"], check["slice"])] = anchor
        gap = check["gap"]
        gap_text = None
        if gap is not None:
            gap_text = (f"Gap across groups (highest minus lowest candidate rate, {gap['groups_compared']} groups): "
                        f"{format_signed_points(gap['baseline']).lstrip('+')} in the baseline, "
                        f"{format_signed_points(gap['candidate']).lstrip('+')} in the candidate "
                        f"(bound {gap['max_gap'] * 100:.1f} pp): {gap['status']}")
        checks.append(CheckView(
            anchor=anchor, rule=check["rule"], where=check["where"], probe=check["probe"], metric=check["metric"],
            slice=check["slice"], direction="higher is worse" if check["higher_is_worse"] else "lower is worse",
            passed=check["passed"], bounds=_bounds(rules.get(check["rule"], {})),
            rows=tuple(_row(group) for group in check["groups"]), gap=gap_text,
        ))
    violations = []
    for violation in document["violations"]:
        is_gap = violation["group"] == GAP_GROUP
        shown = (lambda value: format_signed_points(value).lstrip("+")) if is_gap else format_percent
        violations.append(ViolationView(
            rule=violation["rule"], where=violation["where"], probe=violation["probe"], metric=violation["metric"],
            slice=violation["slice"], group=violation["group"], baseline=shown(violation["baseline"]),
            candidate=shown(violation["candidate"]), change=format_signed_points(violation["delta"]),
            interval=format_change_interval(violation["ci_low"], violation["ci_high"]),
            p_value=format_p_value(violation["p_value"]), p_adjusted=format_p_value(violation["p_adjusted"]),
            reasons="; ".join(violation["reasons"]),
            anchor=anchors.get((violation["rule"], violation["probe"], violation["metric"], violation["slice"]), ""),
        ))
    sides = tuple(SideView(
        role=role, path=document[role]["path"], model=_text(document[role].get("model")),
        dataset=_text(document[role]["dataset"].get("spec")),
        fingerprint=_text(document[role]["dataset"].get("fingerprint")),
        taxonomy=_text(document[role]["taxonomy"].get("name")), created_at=_text(document[role].get("created_at")),
    ) for role in ("baseline", "candidate"))
    settings = document["settings"]
    return CompareView(
        passed=document["passed"], verdict="passed" if document["passed"] else "failed",
        summary=document["summary"], sides=sides,  # type: ignore[arg-type]
        pairing=document["pairing"]["reason"], pairing_note=document["pairing"]["note"],
        notes=tuple(note for note in document["notes"] if note != document["pairing"]["note"]),
        alpha=f"{settings['alpha']:g}", confidence=f"{settings['confidence'] * 100:g}%", min_n=settings["min_n"],
        family_size=settings["family_size"],
        thresholds=settings["thresholds"] or settings.get("thresholds_description") or NOT_AVAILABLE,
        violations=tuple(violations), checks=tuple(checks), clipaudit_version=document["clipaudit_version"],
        created_at=document["created_at"],
    )


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        # Group names, paths and rule ids come from user files: escape everything.
        autoescape=select_autoescape(enabled_extensions=("html", "htm", "xml", "j2"), default_for_string=True,
                                     default=True),
        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )


def render_compare_html(document: Mapping[str, Any]) -> str:
    """compare.html for a compare.json document: one self-contained page, violations first."""
    return _environment().get_template(COMPARE_TEMPLATE).render(view=build_compare_view(document))
