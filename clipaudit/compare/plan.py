"""What is compared: one check per rule and slice, after checking that both audits can answer it."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from clipaudit.compare.inputs import AuditOutput
from clipaudit.compare.thresholds import Rule, Thresholds, default_rules, rule_location
from clipaudit.errors import CompareError
from clipaudit.stats import metric_names
from clipaudit.vocabulary import HARM_RATE, category_of, slice_id


@dataclass(frozen=True)
class Check:
    """One rule on one slice."""

    rule: Rule
    attributes: tuple[str, ...]

    @property
    def slice_id(self) -> str:
        return slice_id(self.attributes)


def _role_label(audit: AuditOutput, role: str) -> str:
    return f"the {role} ({audit.label})"


def check_probes_match(baseline: AuditOutput, candidate: AuditOutput, probe_ids: Sequence[str]) -> None:
    """Each probe is in both audits, of the same kind and (attribute probes) the same target."""
    for probe_id in probe_ids:
        for role, audit, other_role, other in (("baseline", baseline, "candidate", candidate),
                                               ("candidate", candidate, "baseline", baseline)):
            if probe_id in audit.probes and probe_id not in other.probes:
                listed = ", ".join(other.probes) or "none"
                raise CompareError(f"probe {probe_id!r} is in {_role_label(audit, role)} but not in "
                                   f"{_role_label(other, other_role)} (its probes: {listed})")
        base, cand = baseline.probes[probe_id], candidate.probes[probe_id]
        if base.kind != cand.kind:
            raise CompareError(f"probe {probe_id!r} is {_a(base.kind)} probe in the baseline but {_a(cand.kind)} "
                               "probe in the candidate; their rates measure different things")
        if base.target != cand.target:
            raise CompareError(f"probe {probe_id!r} scores target column {base.target!r} in the baseline but "
                               f"{cand.target!r} in the candidate; accuracy would measure different things")


def _a(word: str) -> str:
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"


def check_metric(baseline: AuditOutput, candidate: AuditOutput, probe_id: str, metric: str, where: str) -> None:
    """The metric exists for the probe on both sides (a category rate needs the category on both)."""
    base, cand = baseline.probes[probe_id], candidate.probes[probe_id]
    known = sorted(set(metric_names(base)) | set(metric_names(cand)), key=lambda name: (name != HARM_RATE, name))
    if metric not in known:
        raise CompareError(f"{where}: metric {metric!r} is not a metric of probe {probe_id!r} "
                           f"(its metrics: {', '.join(known)})")
    for role, probe, other_role in (("baseline", base, "candidate"), ("candidate", cand, "baseline")):
        if metric not in metric_names(probe):
            category = category_of(metric)
            raise CompareError(f"{where}: probe {probe_id!r}: no class of the {role} has category {category!r} "
                               f"but the {other_role}'s do, so {metric} cannot be compared "
                               f"(the {role}'s categories: {', '.join(probe.categories()) or 'none'})")
    if metric == HARM_RATE:
        for role, probe in (("baseline", base), ("candidate", cand)):
            if not probe.categories():
                raise CompareError(f"{where}: probe {probe_id!r}: no class of the {role} has a harm category, "
                                   "so its harm_rate is 0 by construction and cannot be compared")


def check_slice(baseline: AuditOutput, candidate: AuditOutput, attributes: Sequence[str], where: str) -> None:
    for role, audit in (("baseline", baseline), ("candidate", candidate)):
        for attribute in attributes:
            if attribute not in audit.attributes:
                raise CompareError(f"{where}: slice {slice_id(attributes)!r}: attribute {attribute!r} is "
                                   f"not in the predictions of {_role_label(audit, role)} "
                                   f"(its attributes: {', '.join(audit.attributes) or 'none'})")


def plan_checks(baseline: AuditOutput, candidate: AuditOutput, thresholds: Thresholds | None) -> tuple[
        Thresholds, list[Check], list[str]]:
    """The rules (defaults without a file), one check per rule and slice, and notes; raises on mismatch."""
    notes: list[str] = []
    if thresholds is None:
        check_probes_match(baseline, candidate, list(dict.fromkeys([*baseline.probes, *candidate.probes])))
        for probe_id in baseline.probes:
            metrics = set(metric_names(baseline.probes[probe_id])) | set(metric_names(candidate.probes[probe_id]))
            for metric in sorted(metrics):
                check_metric(baseline, candidate, probe_id, metric, "default rules (no significant worsening)")
        thresholds = default_rules({probe_id: metric_names(probe) for probe_id, probe in baseline.probes.items()})
    else:
        unruled = sorted((set(baseline.probes) ^ set(candidate.probes)) - {rule.probe for rule in thresholds.rules})
        if unruled:
            notes.append(f"not compared (no rule names them, and only one audit has them): {', '.join(unruled)}")
    checks: list[Check] = []
    for rule in thresholds.rules:
        if rule.probe not in baseline.probes and rule.probe not in candidate.probes:
            known = sorted(set(baseline.probes) | set(candidate.probes))
            raise CompareError(f"{rule_location(rule, 'probe')}: probe {rule.probe!r} is in neither audit "
                               f"(probes: {', '.join(known)})")
        try:
            check_probes_match(baseline, candidate, [rule.probe])
        except CompareError as error:
            raise CompareError(f"{rule_location(rule, 'probe')}: {error}") from None
        check_metric(baseline, candidate, rule.probe, rule.metric, rule_location(rule, "metric"))
        slices = [rule.slice] if rule.slice is not None else _probe_slices(baseline, candidate, rule.probe)
        for attributes in slices:
            check_slice(baseline, candidate, attributes, rule_location(rule, "slice" if rule.slice else "probe"))
            checks.append(Check(rule=rule, attributes=tuple(attributes)))
    return thresholds, checks, notes


def _probe_slices(baseline: AuditOutput, candidate: AuditOutput, probe_id: str) -> list[tuple[str, ...]]:
    return list(dict.fromkeys([*baseline.probes[probe_id].slices, *candidate.probes[probe_id].slices]))
