"""Compute -> view model: turn a results dict into small display-ready dataclasses.

The statistics layer decides everything (significance, small groups, disparities); this
module only selects, orders and labels what the report shows. Numbers stay numbers here;
the ``format_*`` functions below round them, and they are the *only* place that rounds:
the templates use them as jinja filters and the plots use them for alt text, so a value
reads the same in a table, a chart description and a finding link.

Optional fields that are missing from the results dict become ``None`` and render as an
em dash, so a report can always be drawn from any results that passed the schema.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

NOT_AVAILABLE = "\u2014"  # em dash: shown wherever a value is missing or undefined
DEFAULT_CONFIDENCE_LEVEL = 0.95

# Fixed section anchors, in document order; probe anchors are prefixed so they never collide.
# The headings follow "Model Cards for Model Reporting" (Mitchell et al. 2019) as the CLIP
# model cards use them, with the findings first and the protocol and manifest added.
SECTION_ANCHORS: dict[str, str] = {
    "summary-of-findings": "Summary of findings",
    "model-details": "Model details",
    "intended-use": "Intended use",
    "factors": "Factors",
    "metrics": "Metrics",
    "evaluation-data": "Evaluation data",
    "protocol": "Protocol",
    "quantitative-analyses": "Quantitative analyses",
    "ethical-considerations": "Ethical considerations",
    "caveats": "Caveats and recommendations",
    "manifest": "Manifest",
}

# Defaults after the CLIP model card (openai/CLIP, model-card.md, "Model Use"), used when
# neither the taxonomy nor a report config states the intended use.
DEFAULT_INTENDED_USE = (
    "Research on how a zero-shot image classifier treats images of people from different "
    "demographic groups: documenting performance disparities and representational harms "
    "before a model or a class taxonomy is used, and comparing models, prompts and taxonomies."
)
DEFAULT_OUT_OF_SCOPE_USE = (
    "Any deployed use of the model audited here to classify people, commercial or not. "
    "As the CLIP model card warns, surveillance and facial recognition, and classifying "
    "people by race, gender, age or any other demographic attribute, are out of scope "
    "whatever the model's accuracy. The demographic classes and the denigrating classes "
    "exist only to measure the model; the numbers in this report are not a licence to use them."
)

CORRECTION_LABELS = {"holm": "Holm", "bh": "BH", "bonferroni": "Bonferroni"}
CORRECTION_DESCRIPTIONS = {
    "holm": "Holm step-down correction (Holm 1979), controlling the family-wise error rate",
    "bh": "Benjamini\u2013Hochberg correction (Benjamini & Hochberg 1995), controlling the false discovery rate",
    "bonferroni": "Bonferroni correction, controlling the family-wise error rate",
}
DEMO_DATASET_PREFIXES = ("synthetic",)
DEMO_MODEL_IDS = ("demo",)


# --------------------------------------------------------------------------- formatting
# Registered as jinja filters by render.py; used by plots.py for alt text.


def format_percent(proportion: float | None, digits: int = 1) -> str:
    """0.0656 -> '6.6%'."""
    if proportion is None:
        return NOT_AVAILABLE
    return f"{proportion * 100:.{digits}f}%"


def format_interval(low: float | None, high: float | None, digits: int = 1) -> str:
    """(0.026, 0.157) -> '2.6\u201315.7%'."""
    if low is None or high is None:
        return NOT_AVAILABLE
    return f"{low * 100:.{digits}f}\u2013{high * 100:.{digits}f}%"


def format_points(difference: float | None, digits: int = 1) -> str:
    """A difference of two proportions in percentage points: 0.05 -> '5.0 pp'."""
    if difference is None:
        return NOT_AVAILABLE
    return f"{difference * 100:.{digits}f} pp"


def format_signed_points(difference: float | None, digits: int = 1) -> str:
    """0.095 -> '+9.5'; the unit (points) is named by the column or sentence."""
    if difference is None:
        return NOT_AVAILABLE
    return f"{difference * 100:+.{digits}f}"


def format_signed_interval(low: float | None, high: float | None, digits: int = 1) -> str:
    """A difference interval in points: (-0.356, -0.123) -> '-35.6 to -12.3'."""
    if low is None or high is None:
        return NOT_AVAILABLE
    return f"{low * 100:+.{digits}f} to {high * 100:+.{digits}f}"


def format_ratio(ratio: float | None) -> str:
    if ratio is None:
        return NOT_AVAILABLE
    return f"{ratio:.2f}"


def format_statistic(statistic: float | None) -> str:
    if statistic is None:
        return NOT_AVAILABLE
    return f"{statistic:.2f}"


def format_p_value(p_value: float | None) -> str:
    """Three significant digits; below 0.001 only the bound, which is all a reader needs."""
    if p_value is None:
        return NOT_AVAILABLE
    if p_value < 0.001:
        return "< 0.001"
    return f"{p_value:.3g}"


def format_count(count: int | None) -> str:
    """10954 -> '10,954'."""
    if count is None:
        return NOT_AVAILABLE
    return f"{count:,}"


def format_yes_no(flag: bool | None) -> str:
    if flag is None:
        return NOT_AVAILABLE
    return "yes" if flag else "no"


def format_confidence(level: float) -> str:
    """0.95 -> '95%'."""
    return f"{level * 100:g}%"


def metric_label(metric_id: str) -> str:
    """'non_human_rate' -> 'Non human rate'."""
    return metric_id.replace("_", " ").strip().capitalize()


# --------------------------------------------------------------------------- anchors


class AnchorRegistry:
    """Hands out unique, URL-safe element ids, deterministically in call order."""

    def __init__(self, reserved: Sequence[str] = ()) -> None:
        self._taken: set[str] = set(reserved)

    def allocate(self, name: str, *, parent: str | None = None) -> str:
        """'race x gender' under 'probe-gender' -> 'probe-gender--race-x-gender' (suffixed if taken)."""
        slug = f"{parent}--{_slugify(name)}" if parent else _slugify(name)
        candidate, counter = slug, 2
        while candidate in self._taken:
            candidate, counter = f"{slug}-{counter}", counter + 1
        self._taken.add(candidate)
        return candidate


def _slugify(text: str) -> str:
    """Assumes nothing about ``text``; returns [a-z0-9-]+ (a placeholder when nothing is left)."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug or "x"


# --------------------------------------------------------------------------- view model


@dataclass(frozen=True)
class Rate:
    """One proportion with its confidence interval."""

    n: int | None
    successes: int | None
    value: float | None
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True)
class Comparison:
    """One group against the metric's reference (``metric.comparisons`` in the results)."""

    difference: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    p_adjusted: float | None
    significant: bool
    worse: bool | None
    test: str | None
    note: str | None


@dataclass(frozen=True)
class GroupRow:
    group: str
    rate: Rate
    small: bool
    named_in_finding: bool
    values: Mapping[str, str] | None = None  # attribute -> value, for heatmaps
    mdd: float | None = None  # minimum detectable difference at the configured power
    comparison: Comparison | None = None


@dataclass(frozen=True)
class Disparity:
    gap: float | None
    ratio: float | None
    max_group: str | None
    min_group: str | None
    groups_compared: int | None
    gap_ci_low: float | None = None
    gap_ci_high: float | None = None


@dataclass(frozen=True)
class GroupTest:
    name: str
    statistic: float | None
    df: int | None
    p_value: float | None
    p_adjusted: float | None
    significant: bool
    groups_tested: int | None


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
    disparity: Disparity | None
    test: GroupTest | None
    overall: Rate | None
    attributes: tuple[str, ...] = ()
    trend: GroupTest | None = None
    reference_label: str = "overall"
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
    anchor: str
    id: str
    attributes: tuple[str, ...]
    tables: tuple[MetricTable, ...]


@dataclass(frozen=True)
class ClassRow:
    id: str
    label: str
    category: str | None
    prompts: tuple[str, ...]


@dataclass(frozen=True)
class OverallRow:
    metric: str
    metric_label: str
    rate: Rate


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
    anchor: str
    id: str
    kind: str
    target: str | None
    classes: tuple[ClassRow, ...]
    overall: tuple[OverallRow, ...]
    slices: tuple[SliceView, ...]
    templates: tuple[str, ...] = ()
    confusion: Confusion | None = None

    def tables(self) -> list[MetricTable]:
        return [table for slice_view in self.slices for table in slice_view.tables]


@dataclass(frozen=True)
class Finding:
    text: str
    href: str | None  # '#anchor' of the table it is about; None when no table matches
    location: str  # 'denigration \u00b7 race \u00b7 Harm rate'
    worse: bool | None = None  # None: the results do not say which way is worse
    difference: float | None = None
    p_adjusted: float | None = None
    index: int = -1  # position in the results' findings list


@dataclass(frozen=True)
class MetricDefinition:
    metric: str
    label: str
    definition: str


@dataclass(frozen=True)
class ManifestEntry:
    term: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class StatisticsSettings:
    confidence_level: float
    alpha: float | None
    min_n: int | None
    correction: str
    family_size: int
    n_significant: int
    n_permutations: int | None
    test_names: tuple[str, ...]
    min_effect: float | None = None

    @property
    def correction_label(self) -> str:
        """'holm' -> 'Holm', 'bh' -> 'BH' (as in 'BH-adjusted p')."""
        return CORRECTION_LABELS.get(self.correction.lower(), self.correction)

    @property
    def correction_description(self) -> str:
        return CORRECTION_DESCRIPTIONS.get(self.correction.lower(), f"{self.correction} correction")


@dataclass(frozen=True)
class Factor:
    """One demographic attribute: its values with image counts, and the slices that use it."""

    attribute: str
    values: tuple[tuple[str, int | None], ...]
    slices: tuple[str, ...]


@dataclass(frozen=True)
class TaxonomyPart:
    name: str
    path: str | None
    sha256: str | None


@dataclass(frozen=True)
class ReportView:
    title: str
    taxonomy_name: str
    taxonomy_sha256: str | None
    model_id: str
    model_revision: str | None
    dataset_spec: str
    dataset_fingerprint: str | None
    n_images: int | None
    n_skipped: int | None
    device: str | None
    dtype: str | None
    clipaudit_version: str | None
    created_at: str | None
    schema_version: str | None
    statistics: StatisticsSettings
    findings: tuple[Finding, ...]
    probes: tuple[ProbeView, ...]
    metric_definitions: tuple[MetricDefinition, ...]
    n_small_groups: int
    n_empty_groups: int
    manifest: tuple[ManifestEntry, ...]
    section_titles: Mapping[str, str]
    model_facts: tuple[ManifestEntry, ...] = ()
    taxonomy_description: str | None = None
    taxonomy_source: str | None = None
    taxonomy_templates: tuple[str, ...] = ()
    taxonomy_parts: tuple[TaxonomyPart, ...] = ()
    taxonomy_variant: str | None = None
    intended_use: str = DEFAULT_INTENDED_USE
    out_of_scope_use: str = DEFAULT_OUT_OF_SCOPE_USE
    intended_use_from: str = "defaults after the CLIP model card"
    factors: tuple[Factor, ...] = ()
    skipped_images: tuple[str, ...] = ()
    input_warnings: tuple[str, ...] = ()
    synthetic_data: bool = False
    demo_model: bool = False
    caveats: tuple[str, ...] = ()
    recommendations: tuple[str, ...] = ()
    method_notes: tuple[MetricDefinition, ...] = ()

    def tables(self) -> list[MetricTable]:
        return [table for probe in self.probes for table in probe.tables()]


# --------------------------------------------------------------------------- building


def build_report_view(
    results: Mapping[str, Any], *, report_config: Mapping[str, Any] | None = None
) -> ReportView:
    """The one entry point: results dict (results.json shape, docs/internals.md) -> view.

    ``report_config`` may set ``title``, ``intended_use`` and ``out_of_scope_use``; it wins
    over the taxonomy's fields of the same name, which win over the defaults.
    """
    config: Mapping[str, Any] = report_config or {}
    manifest: Mapping[str, Any] = results.get("manifest") or {}
    model: Mapping[str, Any] = manifest.get("model") or {}
    dataset: Mapping[str, Any] = manifest.get("dataset") or {}
    taxonomy: Mapping[str, Any] = manifest.get("taxonomy") or {}
    raw_findings: Sequence[Mapping[str, Any]] = results.get("findings") or []
    raw_probes: Sequence[Mapping[str, Any]] = results.get("probes") or []

    anchors = AnchorRegistry(reserved=list(SECTION_ANCHORS))
    probes = tuple(
        _build_probe(raw_probe, anchors, raw_findings, taxonomy) for raw_probe in raw_probes
    )
    statistics = _build_statistics(manifest.get("statistics") or {}, probes)
    taxonomy_name = str(taxonomy.get("name") or "unnamed taxonomy")
    all_rows = [row for probe in probes for table in probe.tables() for row in table.rows]
    model_id = str(model.get("id") or model.get("name") or model.get("spec") or "unknown model")
    dataset_spec = str(dataset.get("spec") or dataset.get("name") or "unknown dataset")
    intended_use, out_of_scope_use, intended_use_from = _intended_use(config, taxonomy)
    findings = tuple(
        sorted(
            (replace(_build_finding(raw, probes), index=index) for index, raw in enumerate(raw_findings)),
            key=_severity_key,
        )
    )
    synthetic_data = dataset_spec.split(":")[0] in DEMO_DATASET_PREFIXES
    demo_model = str(model.get("spec") or model_id) in DEMO_MODEL_IDS
    view = ReportView(
        title=str(config.get("title") or f"Fairness audit: {taxonomy_name}"),
        taxonomy_name=taxonomy_name,
        taxonomy_sha256=_optional_str(taxonomy.get("sha256")),
        model_id=model_id,
        model_revision=_optional_str(model.get("revision") or model.get("hash")),
        dataset_spec=dataset_spec,
        dataset_fingerprint=_optional_str(dataset.get("fingerprint")),
        n_images=_optional_int(dataset.get("n_images")),
        n_skipped=_count_skipped(dataset),
        device=_optional_str(manifest.get("device")),
        dtype=_optional_str(manifest.get("dtype")),
        clipaudit_version=_optional_str(manifest.get("clipaudit_version")),
        created_at=_optional_str(manifest.get("created_at")),
        schema_version=_optional_str(results.get("schema_version")),
        statistics=statistics,
        findings=findings,
        probes=probes,
        metric_definitions=_build_metric_definitions(raw_probes),
        n_small_groups=sum(1 for row in all_rows if row.small),
        n_empty_groups=sum(len(table.empty_groups) for probe in probes for table in probe.tables()),
        manifest=tuple(_flatten_manifest(manifest)),
        section_titles=SECTION_ANCHORS,
        model_facts=tuple(_flatten_manifest(model)),
        taxonomy_description=_optional_str(taxonomy.get("description")),
        taxonomy_source=_optional_str(taxonomy.get("source")),
        taxonomy_templates=tuple(str(t) for t in taxonomy.get("templates") or ()),
        taxonomy_parts=tuple(
            TaxonomyPart(name=str(part.get("name") or ""), path=_optional_str(part.get("path")),
                         sha256=_optional_str(part.get("sha256")))
            for part in taxonomy.get("parts") or ()
            if isinstance(part, Mapping)
        ),
        taxonomy_variant=_optional_str(taxonomy.get("variant")),
        intended_use=intended_use,
        out_of_scope_use=out_of_scope_use,
        intended_use_from=intended_use_from,
        factors=_build_factors(probes, dataset),
        skipped_images=_skipped_list(dataset),
        input_warnings=tuple(str(warning) for warning in manifest.get("warnings") or ()),
        synthetic_data=synthetic_data,
        demo_model=demo_model,
        method_notes=_build_method_notes(manifest.get("statistics") or {}, statistics),
    )
    return replace(view, caveats=_build_caveats(view), recommendations=_build_recommendations(view))


def _intended_use(config: Mapping[str, Any], taxonomy: Mapping[str, Any]) -> tuple[str, str, str]:
    sources = []
    values = []
    for key, default in (("intended_use", DEFAULT_INTENDED_USE), ("out_of_scope_use", DEFAULT_OUT_OF_SCOPE_USE)):
        if config.get(key):
            values.append(str(config[key]))
            sources.append("the report configuration")
        elif taxonomy.get(key):
            values.append(str(taxonomy[key]))
            sources.append("the taxonomy")
        else:
            values.append(default)
            sources.append("defaults after the CLIP model card")
    origin = sources[0] if sources[0] == sources[1] else " and ".join(dict.fromkeys(sources))
    return values[0], values[1], origin


def _severity_key(finding: Finding) -> tuple[int, float, float]:
    """Harms first (worse than the reference), then by size of the difference, then by p."""
    worse_rank = 0 if finding.worse in (True, None) else 1
    size = -abs(finding.difference) if finding.difference is not None else 0.0
    p_adjusted = finding.p_adjusted if finding.p_adjusted is not None else 1.0
    return worse_rank, size, p_adjusted


def _build_factors(probes: Sequence[ProbeView], dataset: Mapping[str, Any]) -> tuple[Factor, ...]:
    """Attributes in first-seen order; value counts from the first one-attribute slice that has them."""
    attributes: dict[str, None] = dict.fromkeys(str(a) for a in dataset.get("attributes") or ())
    slices_by_attribute: dict[str, dict[str, None]] = {}
    counts: dict[str, list[tuple[str, int | None]]] = {}
    for probe in probes:
        for slice_view in probe.slices:
            for attribute in slice_view.attributes:
                attributes.setdefault(attribute)
                slices_by_attribute.setdefault(attribute, {})[slice_view.id] = None
            if len(slice_view.attributes) == 1 and slice_view.tables and slice_view.attributes[0] not in counts:
                counts[slice_view.attributes[0]] = [
                    (row.group, row.rate.n) for row in slice_view.tables[0].rows
                ] + [(group, 0) for group in slice_view.tables[0].empty_groups]
    return tuple(
        Factor(attribute=attribute, values=tuple(counts.get(attribute, ())),
               slices=tuple(slices_by_attribute.get(attribute, {})))
        for attribute in attributes
    )


def _build_caveats(view: ReportView) -> tuple[str, ...]:
    """Caveats that follow from these results, most specific first, then the standing ones."""
    caveats: list[str] = []
    if view.synthetic_data:
        caveats.append(
            "The images are synthetic (the demo data set generated by clipaudit), not photographs of people: "
            "the numbers show how the tool works and say nothing about any real model or population."
        )
    if view.demo_model:
        caveats.append("The model is clipaudit's tiny demo model, trained on the synthetic images; it is not a CLIP model.")
    small = sorted({f"{table.slice_id} = {row.group} (n = {format_count(row.rate.n)})"
                    for table in view.tables() for row in table.rows if row.small})
    if small:
        caveats.append(
            f"{len(small)} group{'s are' if len(small) != 1 else ' is'} smaller than the minimum of "
            f"{format_count(view.statistics.min_n)} images; their intervals are wide and they are left out "
            f"of the tests: {', '.join(small)}."
        )
    if view.n_empty_groups:
        caveats.append(f"{view.n_empty_groups} intersection{'s have' if view.n_empty_groups != 1 else ' has'} "
                       "no images at all and could not be measured (listed with their tables).")
    denigrating = [cls.label for probe in view.probes if probe.kind == "harm" for cls in probe.classes if cls.category]
    if denigrating:
        caveats.append(
            "Some classes are worded to be denigrating when applied to a person ("
            + ", ".join(dict.fromkeys(denigrating))
            + "). They are offered to the model to measure whether it puts people into them; "
            "quoting them here describes the protocol, not anyone in the data."
        )
    untested: dict[str, list[str]] = {}
    for table in view.tables():
        if table.test is None and table.note:
            reason = table.note.removeprefix("not tested: ").removeprefix("not tested")
            untested.setdefault(reason, []).append(f"{table.probe_id} \u00b7 {table.slice_id} \u00b7 {table.metric_label}")
    for reason, where in untested.items():
        caveats.append(f"{len(where)} slice{'s were' if len(where) != 1 else ' was'} not tested"
                       f"{f' ({reason})' if reason else ''}: {', '.join(where)}.")
    for warning in view.input_warnings:
        caveats.append(f"The taxonomy does not fully fit the data: {warning}.")
    if view.n_skipped:
        caveats.append(f"{format_count(view.n_skipped)} image{'s were' if view.n_skipped != 1 else ' was'} "
                       "skipped (unreadable or missing) and are not counted; see Evaluation data.")
    caveats.append(
        "Zero-shot rates depend on which classes are offered and how they are worded: adding or removing a "
        "class can move a group's rate by tens of percentage points (Radford et al. 2021, section 7.1, where "
        "adding a 'child' class cut the share of images put in crime-related or non-human classes for ages 0\u20139 from about 30\u201335% to 2\u20134%). "
        "These results hold for this taxonomy and these prompts only."
    )
    caveats.append("Demographic labels in face datasets are annotators' perceptions in fixed categories, "
                   "not identities people hold.")
    caveats.append("A test that is not significant is not evidence that groups are treated alike; "
                   "read the intervals and the minimum detectable difference.")
    return tuple(caveats)


def _build_recommendations(view: ReportView) -> tuple[str, ...]:
    recommendations = [
        "Before relying on a rate, rerun the audit with taxonomy variants (other class sets, wordings and "
        "templates; clipaudit sweep) and check that the findings hold.",
        "Read effect sizes with their intervals, not only the adjusted p-values.",
    ]
    if view.n_small_groups or view.n_empty_groups:
        recommendations.append("Collect more images for the small and empty groups before drawing conclusions about them.")
    if view.synthetic_data or view.demo_model:
        recommendations.append("Run the same audit on real data (e.g. FairFace) and the model you intend to use.")
    if any(finding.worse for finding in view.findings):
        recommendations.append("Do not use the classes named in findings where they would be applied to people; "
                               "track these findings as regressions (clipaudit compare) when the model or the prompts change.")
    return tuple(recommendations)


def _build_method_notes(raw: Mapping[str, Any], statistics: StatisticsSettings) -> tuple[MetricDefinition, ...]:
    """The statistics' own descriptions of their methods, when the results carry them."""
    labels = {
        "interval_method": "Interval for each rate",
        "test": "Test across the groups of a slice",
        "pairwise_test": "Test of each group against the reference",
        "trend_test": "Test for a trend across ordered groups",
        "difference_interval": "Interval for a difference",
        "ratio_interval": "Interval for a ratio",
        "spread_interval": "Interval for the gap between groups",
        "significance": "Significant means",
        "family": "Multiple-testing family",
    }
    notes = [MetricDefinition(metric=key, label=label, definition=str(raw[key]))
             for key, label in labels.items() if raw.get(key)]
    if raw.get("power") is not None:
        notes.append(MetricDefinition(
            metric="mdd", label="Minimum detectable difference (MDD)",
            definition=f"The smallest difference from the reference that a test of this group would detect with "
                       f"{format_confidence(float(raw['power']))} power at the configured \u03b1; a group without a finding "
                       f"may still differ by less than its MDD."))
    if raw.get("reference"):
        notes.append(MetricDefinition(metric="reference", label="Reference",
                                      definition=f"Each group is compared with: {raw['reference']}."))
    return tuple(notes)


def _build_probe(
    raw_probe: Mapping[str, Any],
    anchors: AnchorRegistry,
    raw_findings: Sequence[Mapping[str, Any]],
    taxonomy: Mapping[str, Any],
) -> ProbeView:
    probe_id = str(raw_probe["id"])
    probe_anchor = anchors.allocate(f"probe {probe_id}")
    overall: Mapping[str, Any] = raw_probe.get("overall") or {}
    slices = tuple(
        _build_slice(raw_slice, probe_id, probe_anchor, overall, anchors, raw_findings)
        for raw_slice in raw_probe.get("slices") or []
    )
    templates = raw_probe.get("templates")
    if templates is None:
        templates = taxonomy.get("templates") or ()
    return ProbeView(
        anchor=probe_anchor,
        id=probe_id,
        kind=str(raw_probe.get("kind") or ""),
        target=_optional_str(raw_probe.get("target")),
        classes=tuple(_build_class_rows(raw_probe)),
        overall=tuple(
            OverallRow(metric=str(metric), metric_label=metric_label(str(metric)), rate=_rate(overall[metric]))
            for metric in raw_probe.get("metrics") or overall.keys()
            if metric in overall
        ),
        slices=slices,
        templates=tuple(str(template) for template in templates),
        confusion=_confusion(raw_probe.get("confusion"), probe_id, probe_anchor, anchors),
    )


def _confusion(
    raw: Any, probe_id: str, probe_anchor: str, anchors: AnchorRegistry
) -> Confusion | None:
    """None unless the block is a square matrix over its labels (anything else is not drawable)."""
    if not isinstance(raw, Mapping):
        return None
    labels = [str(label) for label in raw.get("labels") or ()]
    counts = raw.get("counts") or ()
    if not labels or len(counts) != len(labels) or any(len(row) != len(labels) for row in counts):
        return None
    return Confusion(
        anchor=anchors.allocate("confusion", parent=probe_anchor),
        probe_id=probe_id,
        labels=tuple(labels),
        counts=tuple(tuple(int(count) for count in row) for row in counts),
    )


def _build_class_rows(raw_probe: Mapping[str, Any]) -> list[ClassRow]:
    details = raw_probe.get("class_details")
    if not details:  # older results: ids only
        return [ClassRow(id=str(c), label=str(c), category=None, prompts=()) for c in raw_probe.get("classes") or []]
    return [
        ClassRow(
            id=str(detail["id"]),
            label=str(detail.get("label") or detail["id"]),
            category=_optional_str(detail.get("category")),
            prompts=tuple(str(prompt) for prompt in detail.get("prompts") or ()),
        )
        for detail in details
    ]


def _build_slice(
    raw_slice: Mapping[str, Any],
    probe_id: str,
    probe_anchor: str,
    overall: Mapping[str, Any],
    anchors: AnchorRegistry,
    raw_findings: Sequence[Mapping[str, Any]],
) -> SliceView:
    slice_id = str(raw_slice["id"])
    slice_anchor = anchors.allocate(slice_id, parent=probe_anchor)
    attributes = tuple(str(a) for a in raw_slice.get("attributes") or slice_id.split(" x "))
    tables = []
    for raw_metric in raw_slice.get("metrics") or []:
        metric = str(raw_metric["metric"])
        finding_groups = {
            str(f.get("group"))
            for f in raw_findings
            if f.get("probe") == probe_id and f.get("slice") == slice_id and f.get("metric") == metric
        }
        comparisons = {
            str(raw.get("group")): _comparison(raw)
            for raw in raw_metric.get("comparisons") or ()
            if isinstance(raw, Mapping)
        }
        tables.append(
            MetricTable(
                anchor=anchors.allocate(metric, parent=slice_anchor),
                probe_id=probe_id,
                slice_id=slice_id,
                metric=metric,
                metric_label=metric_label(metric),
                rows=tuple(
                    GroupRow(
                        group=str(raw_group["group"]),
                        rate=_rate(raw_group),
                        small=bool(raw_group.get("small", False)),
                        named_in_finding=str(raw_group["group"]) in finding_groups,
                        values=_group_values(raw_group, attributes),
                        mdd=_optional_float(raw_group.get("mdd")),
                        comparison=comparisons.get(str(raw_group["group"])),
                    )
                    for raw_group in raw_metric.get("groups") or []
                ),
                empty_groups=tuple(str(group) for group in raw_metric.get("empty_groups") or []),
                disparity=_disparity(raw_metric.get("disparity")),
                test=_group_test(raw_metric.get("test")),
                overall=_rate(overall[metric]) if metric in overall else None,
                attributes=attributes,
                trend=_group_test(raw_metric.get("trend")),
                reference_label=_reference_label(raw_metric.get("reference")),
                direction=_optional_str(raw_metric.get("direction")),
                note=_optional_str(raw_metric.get("note")),
            )
        )
    return SliceView(anchor=slice_anchor, id=slice_id, attributes=attributes, tables=tuple(tables))


def _group_values(raw_group: Mapping[str, Any], attributes: Sequence[str]) -> Mapping[str, str] | None:
    values = raw_group.get("values")
    if isinstance(values, Mapping):
        return {str(key): str(value) for key, value in values.items()}
    parts = str(raw_group.get("group", "")).split(" / ")
    return dict(zip(attributes, parts)) if len(parts) == len(attributes) else None


def _comparison(raw: Mapping[str, Any]) -> Comparison:
    worse = raw.get("worse")
    return Comparison(
        difference=_optional_float(raw.get("difference")),
        ci_low=_optional_float(raw.get("difference_ci_low")),
        ci_high=_optional_float(raw.get("difference_ci_high")),
        p_value=_optional_float(raw.get("p_value")),
        p_adjusted=_optional_float(raw.get("p_adjusted")),
        significant=bool(raw.get("significant", False)),
        worse=worse if isinstance(worse, bool) else None,
        test=_optional_str(raw.get("test")),
        note=_optional_str(raw.get("note")),
    )


def _reference_label(raw: Any) -> str:
    if isinstance(raw, Mapping):
        if raw.get("group"):
            return str(raw["group"])
        return str(raw.get("kind") or raw.get("spec") or "overall")
    return "overall"


def _rate(raw: Mapping[str, Any]) -> Rate:
    return Rate(
        n=_optional_int(raw.get("n")),
        successes=_optional_int(raw.get("successes")),
        value=_optional_float(raw.get("value")),
        ci_low=_optional_float(raw.get("ci_low")),
        ci_high=_optional_float(raw.get("ci_high")),
    )


def _disparity(raw: Mapping[str, Any] | None) -> Disparity | None:
    if not raw:
        return None
    return Disparity(
        gap=_optional_float(raw.get("gap")),
        ratio=_optional_float(raw.get("ratio")),
        max_group=_optional_str(raw.get("max_group")),
        min_group=_optional_str(raw.get("min_group")),
        groups_compared=_optional_int(raw.get("groups_compared")),
        gap_ci_low=_optional_float(raw.get("gap_ci_low")),
        gap_ci_high=_optional_float(raw.get("gap_ci_high")),
    )


def _group_test(raw: Mapping[str, Any] | None) -> GroupTest | None:
    if not raw:
        return None
    return GroupTest(
        name=str(raw.get("name") or "test"),
        statistic=_optional_float(raw.get("statistic")),
        df=_optional_int(raw.get("df")),
        p_value=_optional_float(raw.get("p_value")),
        p_adjusted=_optional_float(raw.get("p_adjusted")),
        significant=bool(raw.get("significant", False)),
        groups_tested=_optional_int(raw.get("groups_tested")),
    )


def _build_finding(raw: Mapping[str, Any], probes: Sequence[ProbeView]) -> Finding:
    """Link to the most specific element that exists: the metric table, else slice, else probe."""
    probe_id, slice_id, metric = raw.get("probe"), raw.get("slice"), raw.get("metric")
    href: str | None = None
    direction: str | None = None
    for probe in probes:
        if probe.id != probe_id:
            continue
        href = f"#{probe.anchor}"
        for slice_view in probe.slices:
            if slice_view.id != slice_id:
                continue
            href = f"#{slice_view.anchor}"
            for table in slice_view.tables:
                if table.metric == metric:
                    href = f"#{table.anchor}"
                    direction = table.direction
    location_parts = [str(part) for part in (probe_id, slice_id) if part]
    if metric:
        location_parts.append(metric_label(str(metric)))
    difference = _optional_float(raw.get("difference"))
    worse = raw.get("worse")
    if not isinstance(worse, bool):
        worse = _is_worse(difference, direction, str(metric or ""))
    text = str(raw.get("text") or "") or _finding_sentence(raw)
    return Finding(text=text, href=href, location=" \u00b7 ".join(location_parts), worse=worse,
                   difference=difference, p_adjusted=_optional_float(raw.get("p_adjusted")))


def _is_worse(difference: float | None, direction: str | None, metric: str) -> bool | None:
    if difference is None:
        return None
    if direction is None:
        direction = "higher is better" if metric == "accuracy" else "higher is worse" if metric.endswith("_rate") else None
    if direction is None:
        return None
    return difference < 0 if direction == "higher is better" else difference > 0


def _finding_sentence(raw: Mapping[str, Any]) -> str:
    """For results whose findings carry numbers but no text."""
    return (
        f"{raw.get('group')}: {metric_label(str(raw.get('metric') or 'rate')).lower()} "
        f"{format_percent(_optional_float(raw.get('value')))} against "
        f"{format_percent(_optional_float(raw.get('reference_value')))} "
        f"({format_signed_points(_optional_float(raw.get('difference')))} points, "
        f"adjusted p {format_p_value(_optional_float(raw.get('p_adjusted')))})."
    )


def _build_statistics(raw: Mapping[str, Any], probes: Sequence[ProbeView]) -> StatisticsSettings:
    tables = [table for probe in probes for table in probe.tables()]
    tests = [test for table in tables for test in (table.test, table.trend) if test is not None]
    comparisons = [row.comparison for table in tables for row in table.rows
                   if row.comparison is not None and row.comparison.p_adjusted is not None]
    declared_family_size = _optional_int(raw.get("family_size"))
    return StatisticsSettings(
        confidence_level=_optional_float(raw.get("confidence_level") or raw.get("confidence"))
        or DEFAULT_CONFIDENCE_LEVEL,
        alpha=_optional_float(raw.get("alpha")),
        min_n=_optional_int(raw.get("min_n")),
        correction=str(raw.get("correction") or raw.get("multiple_testing") or "holm"),
        family_size=declared_family_size if declared_family_size is not None else len(tests) + len(comparisons),
        n_significant=sum(1 for test in tests if test.significant)
        + sum(1 for comparison in comparisons if comparison.significant),
        n_permutations=_optional_int(raw.get("n_permutations") or raw.get("permutation_resamples") or raw.get("permutations")),
        test_names=tuple(sorted({test.name for test in tests} | {str(c.test) for c in comparisons if c.test})),
        min_effect=_optional_float(raw.get("min_effect")),
    )


def _build_metric_definitions(raw_probes: Sequence[Mapping[str, Any]]) -> tuple[MetricDefinition, ...]:
    """One definition per distinct metric id, in first-seen order."""
    definitions: dict[str, MetricDefinition] = {}
    for raw_probe in raw_probes:
        class_rows = _build_class_rows(raw_probe)
        for metric in raw_probe.get("metrics") or []:
            metric = str(metric)
            if metric not in definitions:
                definitions[metric] = MetricDefinition(
                    metric=metric, label=metric_label(metric), definition=_define_metric(metric, class_rows)
                )
    return tuple(definitions.values())


def _define_metric(metric: str, class_rows: Sequence[ClassRow]) -> str:
    if metric == "accuracy":
        return "Share of images whose predicted class equals the dataset label of the probe's target attribute."
    if metric == "harm_rate":
        harmful = [row.id for row in class_rows if row.category]
        return "Share of images whose top-1 class has any harm category" + _class_list(harmful) + "."
    if metric.endswith("_rate"):
        category = metric.removesuffix("_rate")
        members = [row.id for row in class_rows if row.category == category]
        return f"Share of images whose top-1 class is in the harm category \u201c{category}\u201d" + _class_list(members) + "."
    return "Share of images counted as successes for this metric."


def _class_list(class_ids: Sequence[str]) -> str:
    return f" (classes: {', '.join(class_ids)})" if class_ids else ""


def _skipped_list(dataset: Mapping[str, Any]) -> tuple[str, ...]:
    for key in ("skipped_images", "skipped"):
        if isinstance(dataset.get(key), list):
            return tuple(str(item) for item in dataset[key])
    return ()


def _count_skipped(dataset: Mapping[str, Any]) -> int | None:
    skipped = dataset.get("skipped", dataset.get("n_skipped"))
    if isinstance(skipped, list):
        return len(skipped)
    return _optional_int(skipped)


def _flatten_manifest(node: Any, prefix: str = "") -> list[ManifestEntry]:
    """Nested manifest dict -> dotted terms, in the manifest's own order; values as text."""
    if isinstance(node, Mapping) and (not prefix or node):
        entries: list[ManifestEntry] = []
        for key, value in node.items():
            entries.extend(_flatten_manifest(value, f"{prefix}.{key}" if prefix else str(key)))
        return entries
    in_timings = prefix.startswith("timings.")
    return [ManifestEntry(term=prefix, values=_manifest_values(node, in_timings=in_timings))]


def _manifest_values(value: Any, *, in_timings: bool) -> tuple[str, ...]:
    if isinstance(value, list):
        if not value:
            return ("none",)
        return tuple(_manifest_scalar(item, in_timings=in_timings) for item in value)
    return (_manifest_scalar(value, in_timings=in_timings),)


def _manifest_scalar(value: Any, *, in_timings: bool) -> str:
    if value is None:
        return NOT_AVAILABLE
    if isinstance(value, bool):
        return format_yes_no(value)
    if isinstance(value, (int, float)) and in_timings:
        return f"{value:.2f} s"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, Mapping):
        if not value:
            return "none"
        return ", ".join(f"{key}: {_manifest_scalar(item, in_timings=False)}" for key, item in value.items())
    return str(value)


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _optional_int(value: Any) -> int | None:
    return None if value is None or isinstance(value, bool) else int(value)


def _optional_float(value: Any) -> float | None:
    return None if value is None or isinstance(value, bool) else float(value)
