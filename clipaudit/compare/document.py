"""compare.json (the :class:`Comparison` as a document) and the four files compare writes."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clipaudit.compare.groups import Pairing
from clipaudit.compare.inputs import AuditOutput, CompareSettings
from clipaudit.compare.plan import Check, probes_on_one_side
from clipaudit.compare.rules import GapResult, GroupResult, violation_record, violation_text
from clipaudit.compare.thresholds import Thresholds
from clipaudit.documents import check_own, stamped, to_json_bytes
from clipaudit.files import relative_location, write_output_files
from clipaudit.vocabulary import higher_is_worse


@dataclass
class Comparison:
    """Everything compare computed; :meth:`to_dict` is compare.json."""

    baseline: AuditOutput
    candidate: AuditOutput
    thresholds: Thresholds
    thresholds_path: str | None
    settings: CompareSettings
    pairing: Pairing
    checks: list[Check]
    group_results: list[GroupResult]
    gap_results: list[GapResult]
    family_size: int
    notes: list[str]

    @property
    def passed(self) -> bool:
        return not self.violations()

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def violations(self) -> list[GroupResult | GapResult]:
        failed: list[GroupResult | GapResult] = [result for result in self.group_results if result.status == "fail"]
        failed += [result for result in self.gap_results if result.status == "fail"]
        return failed

    def summary(self) -> dict[str, int]:
        results: list[GroupResult | GapResult] = [*self.group_results, *self.gap_results]
        return {"checks": len(results), "passed": sum(result.status == "pass" for result in results),
                "failed": sum(result.status == "fail" for result in results),
                "skipped": sum(result.status == "skipped" for result in results)}

    def violation_lines(self) -> list[str]:
        return [violation_text(result, self.settings) for result in self.violations()]

    def to_dict(self) -> dict[str, Any]:
        alpha = self.settings.alpha
        checks = []
        for check in self.checks:
            groups = [result for result in self.group_results if result.check is check]
            gap = next((result for result in self.gap_results if result.check is check), None)
            checks.append({
                "rule": check.rule.id, "where": check.rule.where, "probe": check.rule.probe,
                "metric": check.rule.metric, "slice": check.slice_id, "attributes": list(check.attributes),
                "higher_is_worse": higher_is_worse(check.rule.metric),
                "passed": all(result.status != "fail" for result in groups) and (gap is None or gap.status != "fail"),
                "groups": [{**result.group.to_dict(alpha), "status": result.status, "reasons": result.reasons,
                            "notes": result.notes} for result in groups],
                "gap": None if gap is None else {
                    "max_gap": check.rule.max_gap, "baseline": gap.baseline_gap, "candidate": gap.candidate_gap,
                    "max_group": gap.max_group, "min_group": gap.min_group, "groups_compared": gap.groups_compared,
                    "status": gap.status, "reasons": gap.reasons},
            })
        failures = self.violations()
        added, removed = probes_on_one_side(self.baseline, self.candidate)
        return stamped("compare", {
            "passed": self.passed,
            "exit_code": self.exit_code,
            "baseline": self.baseline.summary(),
            "candidate": self.candidate.summary(),
            "pairing": self.pairing.to_dict(),
            "settings": {
                "alpha": alpha, "confidence": self.settings.confidence, "min_n": self.settings.min_n,
                "correction": "holm", "family_size": self.family_size,
                "family": "the distinct (probe, metric, slice, group) tests of non-small groups the rules use",
                "thresholds": self.thresholds_path,
                "thresholds_description": self.thresholds.description,
                "paired_test": "exact McNemar (McNemar 1947); interval: Newcombe 1998b method 10",
                "unpaired_test": "Fisher exact (two-sided by doubling the smaller one-sided p); "
                                 "interval: Newcombe 1998 hybrid score",
            },
            "rules": [rule.to_dict() for rule in self.thresholds.rules],
            "checks": checks,
            "summary": self.summary(),
            "violations": [violation_record(result, self.settings) for result in failures],
            "notes": [*self.notes, *([self.pairing.note] if self.pairing.note else [])],
            "probes_added": added,
            "probes_removed": removed,
        })


def comparison_files(comparison: Comparison, *, out_dir: Path | None = None) -> dict[str, bytes]:
    """The four output files, rendered in memory (nothing is written here); with ``out_dir``, the
    two audit folders are named relative to it."""
    from clipaudit.report.compare_exports import render_compare_markdown, render_junit
    from clipaudit.report.compare_view import render_compare_html

    document = check_own(comparison.to_dict(), "compare")
    if out_dir is not None:
        for role in ("baseline", "candidate"):
            document[role]["path"] = relative_location(str(Path(document[role]["path"]).resolve()),
                                                       base=Path(out_dir).resolve())
    return {
        "compare.json": to_json_bytes(document),
        "compare.md": render_compare_markdown(document).encode("utf-8"),
        "compare.html": render_compare_html(document).encode("utf-8"),
        "junit.xml": render_junit(document).encode("utf-8"),
    }


OUTPUT_NAMES = ("compare.json", "compare.md", "compare.html", "junit.xml")


def write_comparison(comparison: Comparison, out_dir: Path) -> list[Path]:
    """Write compare.json, compare.md, compare.html and junit.xml into ``out_dir``, all or nothing."""
    return write_output_files(Path(out_dir), comparison_files(comparison, out_dir=out_dir))
