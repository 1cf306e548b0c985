"""`clipaudit compare`: does a candidate audit make any group worse than a baseline audit?

Two audit outputs (each a folder with ``results.json`` and ``predictions.parquet``) are compared
group by group, for every rule of a thresholds file (:mod:`clipaudit.compare.thresholds`) or, without one,
for "no significant worsening of any group in any probe".

The modules, in the order of the work: :mod:`~clipaudit.compare.inputs` (the two audit
folders), :mod:`~clipaudit.compare.plan` (one check per rule and slice),
:mod:`~clipaudit.compare.groups` (each group's change, paired or independent, through
:mod:`clipaudit.stats`), :mod:`~clipaudit.compare.rules` (pass / fail / skipped and the words),
:mod:`~clipaudit.compare.document` (compare.json and the files).

Multiple testing. Holm (1979) across the distinct (probe, metric, slice, group) tests that the
rules use, so a group checked by two rules counts once.

Everything that can be wrong with the input is checked before anything is computed or
written, and raises :class:`~clipaudit.errors.CompareError` with one line naming the folder,
rule or field.
"""
from __future__ import annotations

from pathlib import Path

from clipaudit.compare.document import Comparison
from clipaudit.compare.groups import Comparer, decide_pairing
from clipaudit.compare.inputs import AuditOutput, CompareSettings, load_audit_output
from clipaudit.compare.plan import plan_checks
from clipaudit.compare.rules import evaluate_gap, evaluate_group
from clipaudit.compare.thresholds import Thresholds, load_thresholds, rule_location
from clipaudit.errors import CompareError
from clipaudit.stats import correct_family


def compare_audits(baseline: AuditOutput, candidate: AuditOutput, thresholds: Thresholds | None = None, *,
                   settings: CompareSettings = CompareSettings()) -> Comparison:
    """Check every rule for every group; raises :class:`CompareError` when the audits do not fit together."""
    thresholds_path = thresholds.path if thresholds is not None else None
    thresholds, checks, notes = plan_checks(baseline, candidate, thresholds)
    pairing = decide_pairing(baseline, candidate, list(dict.fromkeys(check.rule.probe for check in checks)))
    comparer = Comparer(baseline, candidate, pairing, settings)
    groups_per_check = {id(check): comparer.groups(check.rule.probe, check.rule.metric, check.attributes)
                        for check in checks}
    for check in checks:
        if not any(group.n_baseline and group.n_candidate for group in groups_per_check[id(check)]):
            raise CompareError(f"{rule_location(check.rule)}: slice {check.slice_id!r} of probe {check.rule.probe!r} "
                               "has no group with images in both audits; the two datasets cannot be compared "
                               "on it")
    family = [group for group in comparer.all_groups() if not group.small and group.p_value is not None]
    corrected = correct_family([group.p_value for group in family], [abs(group.delta) for group in family],
                               correction="holm", alpha=settings.alpha, min_effect=0.0)
    for group, (p_adjusted, _) in zip(family, corrected):
        group.p_adjusted = p_adjusted
    group_results = [evaluate_group(check, group, settings)
                     for check in checks for group in groups_per_check[id(check)]]
    gap_results = [gap for check in checks if (gap := evaluate_gap(check, groups_per_check[id(check)])) is not None]
    return Comparison(baseline, candidate, thresholds, thresholds_path, settings, pairing, checks, group_results,
                      gap_results, len(family), notes)


def run_compare(baseline: str | Path, candidate: str | Path, *, thresholds: str | Path | None = None,
                settings: CompareSettings = CompareSettings()) -> Comparison:
    """`clipaudit compare` without writing: load, check, compare. Raises on bad input."""
    base = load_audit_output(baseline, role="baseline")
    cand = load_audit_output(candidate, role="candidate")
    rules = load_thresholds(thresholds) if thresholds is not None else None
    return compare_audits(base, cand, rules, settings=settings)
