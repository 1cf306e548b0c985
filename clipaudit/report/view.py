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
from dataclasses import dataclass
from typing import Any

NOT_AVAILABLE = "\u2014"  # em dash: shown wherever a value is missing or undefined
DEFAULT_CONFIDENCE_LEVEL = 0.95

# Fixed section anchors, in document order; probe anchors are prefixed so they never collide.
SECTION_ANCHORS: dict[str, str] = {
    "summary-of-findings": "Summary of findings",
    "model-details": "Model details",
    "evaluation-data": "Evaluation data",
    "quantitative-analyses": "Quantitative analyses",
    "metrics": "Metrics",
    "caveats": "Caveats",
    "manifest": "Manifest",
}


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
class GroupRow:
    group: str
    rate: Rate
    small: bool
    named_in_finding: bool


@dataclass(frozen=True)
class Disparity:
    gap: float | None
    ratio: float | None
    max_group: str | None
    min_group: str | None
    groups_compared: int | None


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
class ProbeView:
    anchor: str
    id: str
    kind: str
    target: str | None
    classes: tuple[ClassRow, ...]
    overall: tuple[OverallRow, ...]
    slices: tuple[SliceView, ...]

    def tables(self) -> list[MetricTable]:
        return [table for slice_view in self.slices for table in slice_view.tables]


@dataclass(frozen=True)
class Finding:
    text: str
    href: str | None  # '#anchor' of the table it is about; None when no table matches
    location: str  # 'denigration \u00b7 race \u00b7 Harm rate'


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

    def tables(self) -> list[MetricTable]:
        return [table for probe in self.probes for table in probe.tables()]


# --------------------------------------------------------------------------- building


def build_report_view(results: Mapping[str, Any]) -> ReportView:
    """The one entry point: results dict (results.json shape, docs/internals.md) -> view."""
    manifest: Mapping[str, Any] = results.get("manifest") or {}
    model: Mapping[str, Any] = manifest.get("model") or {}
    dataset: Mapping[str, Any] = manifest.get("dataset") or {}
    taxonomy: Mapping[str, Any] = manifest.get("taxonomy") or {}
    raw_findings: Sequence[Mapping[str, Any]] = results.get("findings") or []

    anchors = AnchorRegistry(reserved=list(SECTION_ANCHORS))
    probes = tuple(
        _build_probe(raw_probe, anchors, raw_findings) for raw_probe in results.get("probes") or []
    )
    statistics = _build_statistics(manifest.get("statistics") or {}, probes)
    taxonomy_name = str(taxonomy.get("name") or "unnamed taxonomy")
    all_rows = [row for probe in probes for table in probe.tables() for row in table.rows]
    return ReportView(
        title=f"Fairness audit: {taxonomy_name}",
        taxonomy_name=taxonomy_name,
        taxonomy_sha256=_optional_str(taxonomy.get("sha256")),
        model_id=str(model.get("id") or model.get("name") or "unknown model"),
        model_revision=_optional_str(model.get("revision") or model.get("hash")),
        dataset_spec=str(dataset.get("spec") or dataset.get("name") or "unknown dataset"),
        dataset_fingerprint=_optional_str(dataset.get("fingerprint")),
        n_images=_optional_int(dataset.get("n_images")),
        n_skipped=_count_skipped(dataset),
        device=_optional_str(manifest.get("device")),
        dtype=_optional_str(manifest.get("dtype")),
        clipaudit_version=_optional_str(manifest.get("clipaudit_version")),
        created_at=_optional_str(manifest.get("created_at")),
        schema_version=_optional_str(results.get("schema_version")),
        statistics=statistics,
        findings=tuple(_build_finding(raw, probes) for raw in raw_findings),
        probes=probes,
        metric_definitions=_build_metric_definitions(results.get("probes") or []),
        n_small_groups=sum(1 for row in all_rows if row.small),
        n_empty_groups=sum(len(table.empty_groups) for probe in probes for table in probe.tables()),
        manifest=tuple(_flatten_manifest(manifest)),
        section_titles=SECTION_ANCHORS,
    )


def _build_probe(
    raw_probe: Mapping[str, Any],
    anchors: AnchorRegistry,
    raw_findings: Sequence[Mapping[str, Any]],
) -> ProbeView:
    probe_id = str(raw_probe["id"])
    probe_anchor = anchors.allocate(f"probe {probe_id}")
    overall: Mapping[str, Any] = raw_probe.get("overall") or {}
    slices = tuple(
        _build_slice(raw_slice, probe_id, probe_anchor, overall, anchors, raw_findings)
        for raw_slice in raw_probe.get("slices") or []
    )
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
    tables = []
    for raw_metric in raw_slice.get("metrics") or []:
        metric = str(raw_metric["metric"])
        finding_groups = {
            str(f.get("group"))
            for f in raw_findings
            if f.get("probe") == probe_id and f.get("slice") == slice_id and f.get("metric") == metric
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
                    )
                    for raw_group in raw_metric.get("groups") or []
                ),
                empty_groups=tuple(str(group) for group in raw_metric.get("empty_groups") or []),
                disparity=_disparity(raw_metric.get("disparity")),
                test=_group_test(raw_metric.get("test")),
                overall=_rate(overall[metric]) if metric in overall else None,
            )
        )
    return SliceView(
        anchor=slice_anchor,
        id=slice_id,
        attributes=tuple(str(a) for a in raw_slice.get("attributes") or slice_id.split(" x ")),
        tables=tuple(tables),
    )


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
    location_parts = [str(part) for part in (probe_id, slice_id) if part]
    if metric:
        location_parts.append(metric_label(str(metric)))
    return Finding(text=str(raw.get("text") or ""), href=href, location=" \u00b7 ".join(location_parts))


def _build_statistics(raw: Mapping[str, Any], probes: Sequence[ProbeView]) -> StatisticsSettings:
    tests = [table.test for probe in probes for table in probe.tables() if table.test is not None]
    declared_family_size = _optional_int(raw.get("family_size"))
    return StatisticsSettings(
        confidence_level=_optional_float(raw.get("confidence_level") or raw.get("confidence"))
        or DEFAULT_CONFIDENCE_LEVEL,
        alpha=_optional_float(raw.get("alpha")),
        min_n=_optional_int(raw.get("min_n")),
        correction=str(raw.get("correction") or raw.get("multiple_testing") or "holm"),
        family_size=declared_family_size if declared_family_size is not None else len(tests),
        n_significant=sum(1 for test in tests if test.significant),
        n_permutations=_optional_int(raw.get("n_permutations") or raw.get("permutations")),
        test_names=tuple(sorted({test.name for test in tests})),
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
