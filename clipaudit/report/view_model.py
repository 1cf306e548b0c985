"""The report's view model: small display-ready dataclasses, built by :mod:`.audit_view`.

Numbers stay numbers here (proportions, counts, p-values); the templates round them through
the filters of :mod:`.render`, which are :mod:`clipaudit.format`'s functions. A field is
``None`` only where results.schema.json lets the value be missing or null.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from clipaudit.stats.multiple import CORRECTION_DESCRIPTIONS, CORRECTION_NAMES
from clipaudit.taxonomy import TaxonomyClass

if TYPE_CHECKING:  # built from this module's classes, so defined after them
    from .summary_view import KeyFinding, Scorecard


@dataclass(frozen=True)
class Rate:
    """One proportion with its confidence interval (value and interval are None only when n is 0)."""

    n: int
    successes: int
    value: float | None
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True)
class Comparison:
    """One group against the metric's reference (``metric.comparisons`` in the results)."""

    difference: float
    ci_low: float | None  # None against a data-chosen reference (best): no per-comparison interval
    ci_high: float | None
    p_value: float | None
    p_adjusted: float | None
    significant: bool
    worse: bool
    test: str | None
    note: str | None


@dataclass(frozen=True)
class GroupRow:
    """One group of a slice: its rate, flags and comparison with the reference."""

    group: str
    rate: Rate
    small: bool
    named_in_finding: bool
    values: Mapping[str, str]  # attribute -> value, for heatmaps
    mdd: float | None = None  # minimum detectable difference at the configured power
    comparison: Comparison | None = None


@dataclass(frozen=True)
class Disparity:
    """The spread across the groups a slice compared: gap (max - min) and ratio (min / max)."""

    gap: float | None
    ratio: float | None
    max_group: str | None
    min_group: str | None
    groups_compared: int
    gap_ci_low: float | None = None
    gap_ci_high: float | None = None
    gap_family_ci_low: float | None = None  # at the tests' strictness (clipaudit.stats.verdicts)
    gap_family_ci_high: float | None = None
    family_level: float | None = None


@dataclass(frozen=True)
class Verdict:
    """Do the groups differ on this metric: any of its tests significant after the family's correction."""

    significant: bool
    p_adjusted: float
    source: str  # omnibus, trend or pairwise
    group: str | None  # the compared group of a pairwise source


@dataclass(frozen=True)
class GroupTest:
    """An omnibus or trend test across the groups of a slice, with its adjusted p-value."""

    name: str
    statistic: float
    df: int
    p_value: float
    p_adjusted: float
    significant: bool
    groups_tested: int


@dataclass(frozen=True)
class MetricTable:
    """One slice x metric: the group table, its disparity and test, and (via plots) a chart."""

    anchor: str
    probe_id: str
    slice_id: str
    metric: str
    metric_label: str
    rows: tuple[GroupRow, ...]
    empty_groups: tuple[str, ...]
    disparity: Disparity
    test: GroupTest | None
    overall: Rate
    attributes: tuple[str, ...]
    trend: GroupTest | None = None
    verdict: Verdict | None = None  # None: no test could run
    reference_label: str | None = None
    direction: str | None = None
    note: str | None = None

    @property
    def has_comparisons(self) -> bool:
        return any(row.comparison is not None for row in self.rows)

    @property
    def has_mdd(self) -> bool:
        return any(row.mdd is not None for row in self.rows)


@dataclass(frozen=True)
class SliceView:
    """One slice (e.g. race x gender) of a probe: a table per metric."""

    anchor: str
    id: str
    attributes: tuple[str, ...]
    tables: tuple[MetricTable, ...]


@dataclass(frozen=True)
class Confusion:
    """Counts per (target, prediction); rows are targets, columns predictions."""

    anchor: str
    probe_id: str
    labels: tuple[str, ...]
    counts: tuple[tuple[int, ...], ...]

    def row_total(self, index: int) -> int:
        return sum(self.counts[index])


@dataclass(frozen=True)
class ProbeView:
    """One probe: its protocol (classes, templates), overall rates, slices and confusion matrix."""

    anchor: str
    id: str
    kind: str
    target: str | None
    classes: tuple[TaxonomyClass, ...]  # in score order, each with its exact prompts
    overall: Mapping[str, Rate]  # metric -> its rate over all images, in the probe's metric order
    slices: tuple[SliceView, ...]
    templates: tuple[str, ...] = ()
    confusion: Confusion | None = None

    def tables(self) -> list[MetricTable]:
        return [table for slice_view in self.slices for table in slice_view.tables]


@dataclass(frozen=True)
class Finding:
    """One finding, in results.json's order (decided by the statistics)."""

    text: str
    href: str  # '#anchor' of the table it is about
    location: str  # 'denigration \u00b7 race \u00b7 Harm rate'
    worse: bool | None = None  # None: the results do not say
    related: int = 0  # other comparisons of the same disparity (other slices, metrics, nested groups)


@dataclass(frozen=True)
class MetricDefinition:
    """A term and what it means (metric definitions and method notes)."""

    metric: str
    label: str
    definition: str


@dataclass(frozen=True)
class ManifestEntry:
    """One manifest key (dotted) and its values as text."""

    term: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class StatisticsSettings:
    """The statistics in force (manifest.statistics) and counts over the tests shown."""

    confidence_level: float
    alpha: float
    min_n: int
    correction: str
    family_size: int | None
    n_significant: int
    test_names: tuple[str, ...]
    min_effect: float | None = None
    interval: str | None = None  # the rate interval's method: 'wilson', 'clopper-pearson', 'jeffreys'
    findings_from: str | None = None  # how the significant tests and the findings reconcile

    @property
    def correction_label(self) -> str:
        """'holm' -> 'Holm', 'bh' -> 'BH' (as in 'BH-adjusted p')."""
        return CORRECTION_NAMES[self.correction]

    @property
    def correction_description(self) -> str:
        return CORRECTION_DESCRIPTIONS[self.correction]


@dataclass(frozen=True)
class Factor:
    """One demographic attribute: its values with image counts, and the slices that use it."""

    attribute: str
    values: tuple[tuple[str, int], ...]
    slices: tuple[str, ...]


@dataclass(frozen=True)
class TaxonomyPart:
    """One taxonomy file of a combined taxonomy."""

    name: str
    path: str | None
    sha256: str | None


@dataclass(frozen=True)
class IntendedUse:
    """What the audit is for and not for, and who said so."""

    intended: str
    out_of_scope: str
    stated_by: str  # 'the taxonomy', 'the report configuration', ...


@dataclass(frozen=True)
class ReportView:
    """Everything report.html shows, by section."""

    title: str
    section_titles: Mapping[str, str]
    # Summary of findings
    findings: tuple[Finding, ...]
    statistics: StatisticsSettings
    # Model details
    model_id: str | None
    model_revision: str | None
    device: str
    dtype: str
    model_facts: tuple[ManifestEntry, ...]
    demo_model: bool
    # Intended use, factors, metrics
    intended_use: IntendedUse
    factors: tuple[Factor, ...]
    metric_definitions: tuple[MetricDefinition, ...]
    method_notes: tuple[MetricDefinition, ...]
    # Evaluation data
    dataset_spec: str | None
    dataset_fingerprint: str | None
    n_images: int | None
    n_skipped: int | None
    skipped_images: tuple[str, ...]
    synthetic_data: bool
    n_small_groups: int
    n_empty_groups: int
    input_warnings: tuple[str, ...]
    alerts: tuple[str, ...]  # shown before anything else (manifest.alerts)
    # Protocol
    taxonomy_name: str
    taxonomy_sha256: str
    taxonomy_description: str | None
    taxonomy_source: str | None
    taxonomy_templates: tuple[str, ...]
    taxonomy_parts: tuple[TaxonomyPart, ...]
    taxonomy_variant: str | None
    # Quantitative analyses
    probes: tuple[ProbeView, ...]
    # Manifest
    manifest: tuple[ManifestEntry, ...]
    clipaudit_version: str
    created_at: str
    schema_version: str
    # Caveats and recommendations: they follow from the rest (see caveats.py)
    caveats: tuple[str, ...] = ()
    recommendations: tuple[str, ...] = ()
    # The first screen: they follow from the findings and tables (see summary_view.py)
    verdict: str = ""
    scorecard: Scorecard | None = None
    key_findings: tuple[KeyFinding, ...] = ()

    def tables(self) -> list[MetricTable]:
        return [table for probe in self.probes for table in probe.tables()]
