"""What is compared: one check per rule and slice, after checking that both audits can answer it."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from clipaudit.compare.inputs import AuditOutput
from clipaudit.compare.thresholds import Rule, Thresholds, default_rules, rule_location
from clipaudit.errors import CompareError
from clipaudit.stats import metric_names
from clipaudit.taxonomy import Probe
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
        _check_slice_in(audit, role, attributes, where)


def _check_slice_in(audit: AuditOutput, role: str, attributes: Sequence[str], where: str) -> None:
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
        thresholds = _default_thresholds(baseline, candidate, notes)
    added, removed = probes_on_one_side(baseline, candidate)
    if added:
        notes.append(f"probes added in the candidate, not compared: {', '.join(added)}")
    if removed:
        notes.append(f"probes removed from the candidate, not compared: {', '.join(removed)}")
    checks: list[Check] = []
    for rule in thresholds.rules:
        for attributes in _rule_slices(baseline, candidate, rule):
            check_slice(baseline, candidate, attributes, _slice_location(rule))
            checks.append(Check(rule=rule, attributes=tuple(attributes)))
    return thresholds, checks, notes


def probes_on_one_side(baseline: AuditOutput, candidate: AuditOutput | PlannedAudit) -> tuple[list[str], list[str]]:
    """(added: in the candidate only, removed: in the baseline only), in each audit's order."""
    added = [probe_id for probe_id in candidate.probes if probe_id not in baseline.probes]
    removed = [probe_id for probe_id in baseline.probes if probe_id not in candidate.probes]
    return added, removed


@dataclass(frozen=True)
class PlannedAudit:
    """The candidate of `audit --baseline` before it runs: its label and its taxonomy's probes (no predictions yet)."""

    label: str
    probes: Mapping[str, Probe]


def check_rules_before_run(baseline: AuditOutput, thresholds: Thresholds | None, candidate: PlannedAudit) -> None:
    """What :func:`plan_checks` will check that the baseline and the candidate's taxonomy already answer.

    `audit --baseline` calls this before it loads data or a model, so that a rule naming a probe,
    metric or slice attribute that cannot be compared stops the audit at once rather than after
    encoding. The candidate's attributes are known only once its dataset loads; slices are checked
    against the baseline here and against both sides by :func:`plan_checks` afterwards.
    """
    rules = (thresholds or _default_thresholds(baseline, candidate)).rules
    for rule in rules:
        for attributes in _rule_slices(baseline, candidate, rule):
            _check_slice_in(baseline, "baseline", attributes, _slice_location(rule))


def _default_thresholds(baseline: AuditOutput, candidate: AuditOutput | PlannedAudit,
                        notes: list[str] | None = None) -> Thresholds:
    """No significant worsening of any metric both audits measure, for every probe both have.

    A probe or metric on one side only is growth (or a removal), not a failure: it is left out
    and ``notes`` says so, as it does for a probe whose kind or target changed.
    """
    notes = [] if notes is None else notes
    compared: dict[str, list[str]] = {}
    for probe_id in [probe_id for probe_id in baseline.probes if probe_id in candidate.probes]:
        try:
            check_probes_match(baseline, candidate, [probe_id])
        except CompareError as error:
            notes.append(f"not compared: {error}")
            continue
        metrics = []
        for metric in metric_names(baseline.probes[probe_id]):
            try:
                check_metric(baseline, candidate, probe_id, metric, "default rules (no significant worsening)")
            except CompareError as error:
                notes.append(f"not compared: {error}")
                continue
            metrics.append(metric)
        for metric in metric_names(candidate.probes[probe_id]):
            if metric not in metric_names(baseline.probes[probe_id]):
                notes.append(f"probe {probe_id!r}: metric {metric} is new in the candidate, not compared")
        if metrics:
            compared[probe_id] = metrics
    if not compared:
        raise CompareError("the baseline and the candidate have no probe and metric in common to compare "
                           f"(baseline probes: {', '.join(baseline.probes) or 'none'}; candidate probes: "
                           f"{', '.join(candidate.probes) or 'none'})")
    return default_rules(compared)


def _rule_slices(baseline: AuditOutput, candidate: AuditOutput | PlannedAudit, rule: Rule) -> list[tuple[str, ...]]:
    """The slices a rule checks, once its probe and metric are seen to exist on both sides."""
    if rule.probe not in baseline.probes and rule.probe not in candidate.probes:
        known = sorted(set(baseline.probes) | set(candidate.probes))
        raise CompareError(f"{rule_location(rule, 'probe')}: probe {rule.probe!r} is in neither audit "
                           f"(probes: {', '.join(known)})")
    try:
        check_probes_match(baseline, candidate, [rule.probe])
    except CompareError as error:
        raise CompareError(f"{rule_location(rule, 'probe')}: {error}") from None
    check_metric(baseline, candidate, rule.probe, rule.metric, rule_location(rule, "metric"))
    if rule.slice is not None:
        return [tuple(rule.slice)]
    return list(dict.fromkeys([*baseline.probes[rule.probe].slices, *candidate.probes[rule.probe].slices]))


def _slice_location(rule: Rule) -> str:
    return rule_location(rule, "slice" if rule.slice else "probe")
