"""The report's first screen: a verdict line, a scorecard (probe x slice) and the key findings.

Each is one small function of the statistics' own results (the tables and findings of the
view), so a change in how the statistics decide significance, intervals or findings shows here
without a second rule: significant is the metric's verdict (any of its tests significant after the
family's correction: :mod:`clipaudit.stats.verdicts`), the gap and its interval are the disparity's
(the interval at the tests' strictness), the findings keep results.json's order.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from clipaudit import format
from clipaudit.vocabulary import higher_is_worse

from .view_model import Finding, GroupRow, MetricTable, ProbeView, StatisticsSettings, Verdict

#: The scorecard's columns as data (:func:`scorecard_records`, ``AuditRun.scorecard()``).
SCORECARD_COLUMNS = ("probe", "slice", "metric", "worst_group", "worst_value", "gap", "gap_family_ci_low",
                     "gap_family_ci_high", "gap_ci_low", "gap_ci_high", "significant", "p_adjusted", "decided_by",
                     "findings", "small_groups", "empty_groups")
#: At most this many key findings on the first screen, one per disparity; the rest are listed below them.
KEY_FINDINGS_SHOWN = 5


@dataclass(frozen=True)
class ScorecardRow:
    """One probe x slice, on the probe's headline metric (its first: accuracy or harm rate)."""

    probe_id: str
    slice_id: str
    table: MetricTable
    worst: GroupRow | None  # the worst-off group among those compared (lowest accuracy, highest harm rate)
    significant: bool | None  # None: no test could run
    findings: int  # findings about this probe x slice, on any of its metrics
    small_groups: int
    empty_groups: int

    @property
    def href(self) -> str:
        return f"#{self.table.anchor}"


@dataclass(frozen=True)
class ScorecardLine:
    """One probe of the scorecard: a cell per slice of the scorecard (None where the probe lacks that slice)."""

    probe_id: str
    metric: str
    cells: tuple[ScorecardRow | None, ...]


@dataclass(frozen=True)
class Scorecard:
    """Probes down, slices across; ``rows`` lists every cell in the results' order."""

    slices: tuple[str, ...]
    lines: tuple[ScorecardLine, ...]
    rows: tuple[ScorecardRow, ...]


@dataclass(frozen=True)
class KeyFinding:
    """One finding (the statistics make one per disparity) with the table of its leading comparison."""

    finding: Finding
    table: MetricTable


def scorecard(probes: Sequence[ProbeView], findings: Sequence[Finding]) -> Scorecard:
    """One cell per probe x slice, in the results' order."""
    findings_per_table: dict[str, int] = {}
    for finding in findings:
        findings_per_table[finding.href] = findings_per_table.get(finding.href, 0) + 1
    rows = []
    for probe in probes:
        for slice_view in probe.slices:
            if not slice_view.tables:
                continue
            headline = slice_view.tables[0]
            rows.append(ScorecardRow(
                probe_id=probe.id,
                slice_id=slice_view.id,
                table=headline,
                worst=worst_off_group(headline),
                significant=None if headline.verdict is None else headline.verdict.significant,
                findings=sum(findings_per_table.get(f"#{table.anchor}", 0) for table in slice_view.tables),
                small_groups=sum(1 for row in headline.rows if row.small),
                empty_groups=len(headline.empty_groups),
            ))
    slices = tuple(dict.fromkeys(row.slice_id for row in rows))
    lines = []
    for probe in probes:
        cells = {row.slice_id: row for row in rows if row.probe_id == probe.id}
        if cells:
            lines.append(ScorecardLine(probe_id=probe.id, metric=next(iter(cells.values())).table.metric,
                                       cells=tuple(cells.get(slice_id) for slice_id in slices)))
    return Scorecard(slices=slices, lines=tuple(lines), rows=tuple(rows))


def decided_by(verdict: Verdict) -> str:
    """Which test a verdict's p-value is: 'across groups', 'trend' or the compared group's name."""
    if verdict.source == "pairwise" and verdict.group is not None:
        return verdict.group
    return "trend" if verdict.source == "trend" else "across groups"


def worst_off_group(table: MetricTable) -> GroupRow | None:
    """The group the disparity names at the bad end: the lowest accuracy, the highest harm rate."""
    name = table.disparity.max_group if higher_is_worse(table.metric) else table.disparity.min_group
    return next((row for row in table.rows if row.group == name), None)


def key_findings(findings: Sequence[Finding], tables: Sequence[MetricTable]) -> tuple[KeyFinding, ...]:
    """The first :data:`KEY_FINDINGS_SHOWN` findings: the statistics make one per disparity and order
    them worst first (stats.findings), so this is a cut, never a second grouping."""
    by_anchor = {f"#{table.anchor}": table for table in tables}
    return tuple(KeyFinding(finding=finding, table=by_anchor[finding.href])
                 for finding in findings[:KEY_FINDINGS_SHOWN])


def verdict(findings: Sequence[Finding], tables: Sequence[MetricTable], statistics: StatisticsSettings) -> str:
    """One sentence: how many disparities the findings name, out of how many were tested, and how."""
    tested = sum(1 for table in tables if table.verdict is not None)
    worse = sum(1 for finding in findings if finding.worse is True)
    correction = f"{statistics.correction_label} correction across {format.or_dash(statistics.family_size)} tests"
    if tested == 0:  # the manifest's alert, shown above the verdict, says why and what --min-n would allow
        return (f"No test could run, so nothing here says whether groups differ (groups under "
                f"{statistics.min_n} images are not tested).")
    if not findings:
        return (f"No significant difference between groups in any of the {tested} disparities tested "
                f"({correction}). This is not evidence of parity: see the intervals below.")
    return (f"{len(findings)} disparit{'ies' if len(findings) != 1 else 'y'} between groups found significant, "
            f"{worse} of them a group worse off ({tested} slices and metrics tested; {correction}).")


def scorecard_records(card: Scorecard) -> list[dict[str, object]]:
    """The scorecard as plain records (one per probe x slice), for a DataFrame."""
    return [
        {"probe": row.probe_id, "slice": row.slice_id, "metric": row.table.metric,
         "worst_group": None if row.worst is None else row.worst.group,
         "worst_value": None if row.worst is None else row.worst.rate.value,
         "gap": row.table.disparity.gap, "gap_family_ci_low": row.table.disparity.gap_family_ci_low,
         "gap_family_ci_high": row.table.disparity.gap_family_ci_high, "gap_ci_low": row.table.disparity.gap_ci_low,
         "gap_ci_high": row.table.disparity.gap_ci_high, "significant": row.significant,
         "p_adjusted": None if row.table.verdict is None else row.table.verdict.p_adjusted,
         "decided_by": None if row.table.verdict is None else decided_by(row.table.verdict),
         "findings": row.findings, "small_groups": row.small_groups, "empty_groups": row.empty_groups}
        for row in card.rows
    ]

