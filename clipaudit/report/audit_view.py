"""results.json -> :class:`~.view_model.ReportView`: select, order and label what the report shows.

The statistics decide everything (significance, small groups, disparities, the order of the
findings); this module only reads results.json, which the schema describes: what the schema
requires is read as present, what it leaves optional may be ``None``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from clipaudit.files import shown_location
from clipaudit.models.demo import DEMO_MODEL_SPEC
from clipaudit.stats.verdicts import metric_verdict
from clipaudit.taxonomy import protocol_class
from clipaudit.vocabulary import metric_label

from . import caveats, summary_view
from .anchors import SECTION_ANCHORS, AnchorRegistry
from .manifest_view import flatten_manifest, skipped_image_lines
from .view_model import (
    Comparison,
    Confusion,
    Disparity,
    Factor,
    Finding,
    GroupRow,
    GroupTest,
    MetricTable,
    ProbeView,
    Rate,
    ReportView,
    SliceView,
    StatisticsSettings,
    TaxonomyPart,
    Verdict,
)

DEMO_DATASET_PREFIX = "synthetic"

TableKey = tuple[str, str, str]  # (probe, slice, metric)


def build_report_view(
    results: Mapping[str, Any], *, report_config: Mapping[str, Any] | None = None
) -> ReportView:
    """The one entry point: a results dict (results.json, schema-valid) -> the report's view.

    ``report_config`` may set ``title``, ``intended_use`` and ``out_of_scope_use``; it wins
    over the taxonomy's fields of the same name, which win over the defaults.
    """
    config: Mapping[str, Any] = report_config or {}
    manifest: Mapping[str, Any] = results["manifest"]
    model: Mapping[str, Any] = manifest["model"]
    dataset: Mapping[str, Any] = manifest["dataset"]
    taxonomy: Mapping[str, Any] = manifest["taxonomy"]
    raw_findings: Sequence[Mapping[str, Any]] = results["findings"]
    raw_probes: Sequence[Mapping[str, Any]] = results["probes"]

    anchors = AnchorRegistry(reserved=list(SECTION_ANCHORS))
    named = {(f["probe"], f["slice"], f["metric"], f["group"]) for f in raw_findings}
    probes = tuple(_build_probe(raw_probe, anchors, named, taxonomy) for raw_probe in raw_probes)
    table_anchors = {(t.probe_id, t.slice_id, t.metric): t.anchor for probe in probes for t in probe.tables()}
    dataset_spec = _optional_location(dataset.get("spec"))
    view = ReportView(
        title=str(config.get("title") or f"Fairness audit: {taxonomy['name']}"),
        taxonomy_name=str(taxonomy["name"]),
        taxonomy_sha256=str(taxonomy["sha256"]),
        model_id=_optional_location(model.get("id")),
        model_revision=_optional_str(model.get("revision")),
        dataset_spec=dataset_spec,
        dataset_fingerprint=_optional_str(dataset.get("fingerprint")),
        n_images=dataset.get("n_images"),
        n_skipped=dataset.get("n_skipped"),
        device=str(manifest["device"]),
        dtype=str(manifest["dtype"]),
        clipaudit_version=str(manifest["clipaudit_version"]),
        created_at=str(manifest["created_at"]),
        schema_version=str(results["schema_version"]),
        statistics=_build_statistics(manifest["statistics"], probes),
        # results.json lists findings in the one order the statistics decided; it is kept.
        findings=tuple(_build_finding(raw, table_anchors) for raw in raw_findings),
        probes=probes,
        metric_definitions=caveats.metric_definitions(
            raw_probes, {probe.id: probe.classes for probe in probes}),
        n_small_groups=sum(1 for probe in probes for table in probe.tables() for row in table.rows if row.small),
        n_empty_groups=sum(len(table.empty_groups) for probe in probes for table in probe.tables()),
        manifest=flatten_manifest(manifest),
        section_titles=SECTION_ANCHORS,
        intended_use=caveats.intended_use(config, taxonomy),
        model_facts=flatten_manifest(model),
        taxonomy_description=_optional_str(taxonomy.get("description")),
        taxonomy_source=_optional_str(taxonomy.get("source")),
        taxonomy_templates=tuple(str(template) for template in taxonomy.get("templates") or ()),
        taxonomy_parts=tuple(TaxonomyPart(name=str(part["name"]), path=_optional_location(part.get("path")),
                                          sha256=_optional_str(part.get("sha256")))
                             for part in taxonomy.get("parts") or ()),
        taxonomy_variant=_optional_str(taxonomy.get("variant")),
        factors=_build_factors(probes, dataset),
        skipped_images=skipped_image_lines(dataset),
        input_warnings=tuple(str(warning) for warning in manifest.get("warnings") or ()),
        alerts=tuple(str(alert) for alert in manifest.get("alerts") or ()),
        synthetic_data=(dataset_spec or "").split(":")[0] == DEMO_DATASET_PREFIX,
        demo_model=model.get("spec") == DEMO_MODEL_SPEC,
        method_notes=caveats.method_notes(manifest["statistics"]),
    )
    tables = view.tables()
    return replace(
        view, caveats=caveats.caveats(view), recommendations=caveats.recommendations(view),
        verdict=summary_view.verdict(view.findings, tables, view.statistics),
        scorecard=summary_view.scorecard(view.probes, view.findings),
        key_findings=summary_view.key_findings(view.findings, tables),
    )


def _build_factors(probes: Sequence[ProbeView], dataset: Mapping[str, Any]) -> tuple[Factor, ...]:
    """Attributes in first-seen order; value counts from the first one-attribute slice that has them."""
    attributes: dict[str, None] = dict.fromkeys(str(a) for a in dataset.get("attributes") or ())
    slices_by_attribute: dict[str, dict[str, None]] = {}
    counts: dict[str, list[tuple[str, int]]] = {}
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


def _build_probe(raw_probe: Mapping[str, Any], anchors: AnchorRegistry, named: set[tuple[str, str, str, str]],
                 taxonomy: Mapping[str, Any]) -> ProbeView:
    probe_id = str(raw_probe["id"])
    probe_anchor = anchors.allocate(f"probe {probe_id}")
    overall: Mapping[str, Any] = raw_probe["overall"]
    slices = tuple(
        _build_slice(raw_slice, probe_id, probe_anchor, overall, anchors, named) for raw_slice in raw_probe["slices"]
    )
    # A probe's templates are null when it uses the taxonomy's.
    templates = raw_probe.get("templates")
    if templates is None:
        templates = taxonomy.get("templates") or ()
    return ProbeView(
        anchor=probe_anchor,
        id=probe_id,
        kind=str(raw_probe["kind"]),
        target=_optional_str(raw_probe["target"]),
        classes=tuple(protocol_class(detail) for detail in raw_probe["class_details"]),
        overall={metric: _rate(overall[metric]) for metric in raw_probe["metrics"]},
        slices=slices,
        templates=tuple(str(template) for template in templates),
        confusion=_confusion(raw_probe.get("confusion"), probe_id, probe_anchor, anchors),
    )


def _confusion(raw: Mapping[str, Any] | None, probe_id: str, probe_anchor: str,
               anchors: AnchorRegistry) -> Confusion | None:
    if raw is None:
        return None
    return Confusion(
        anchor=anchors.allocate("confusion", parent=probe_anchor),
        probe_id=probe_id,
        labels=tuple(str(label) for label in raw["labels"]),
        counts=tuple(tuple(int(count) for count in row) for row in raw["counts"]),
    )


def _build_slice(raw_slice: Mapping[str, Any], probe_id: str, probe_anchor: str, overall: Mapping[str, Any],
                 anchors: AnchorRegistry, named: set[tuple[str, str, str, str]]) -> SliceView:
    slice_id = str(raw_slice["id"])
    slice_anchor = anchors.allocate(slice_id, parent=probe_anchor)
    attributes = tuple(str(attribute) for attribute in raw_slice["attributes"])
    tables = []
    for raw_metric in raw_slice["metrics"]:
        metric = str(raw_metric["metric"])
        comparisons = {str(raw["group"]): _comparison(raw) for raw in raw_metric.get("comparisons") or ()}
        reference = raw_metric.get("reference")
        tables.append(MetricTable(
            anchor=anchors.allocate(metric, parent=slice_anchor),
            probe_id=probe_id,
            slice_id=slice_id,
            metric=metric,
            metric_label=metric_label(metric),
            rows=tuple(
                GroupRow(
                    group=str(raw_group["group"]),
                    rate=_rate(raw_group),
                    small=bool(raw_group["small"]),
                    named_in_finding=(probe_id, slice_id, metric, raw_group["group"]) in named,
                    values={str(key): str(value) for key, value in raw_group["values"].items()},
                    mdd=raw_group.get("mdd"),
                    comparison=comparisons.get(str(raw_group["group"])),
                )
                for raw_group in raw_metric["groups"]
            ),
            empty_groups=tuple(str(group) for group in raw_metric["empty_groups"]),
            disparity=_disparity(raw_metric["disparity"]),
            test=_group_test(raw_metric["test"]),
            verdict=_verdict(raw_metric),
            overall=_rate(overall[metric]),
            attributes=attributes,
            trend=_group_test(raw_metric.get("trend")),
            reference_label=None if reference is None else str(reference["group"] or reference["kind"]) + (
                " (the best-off group, chosen from the data: p selection-adjusted, no per-comparison interval)"
                if any(c.get("selection_factor", 1) > 1 for c in raw_metric["comparisons"]) else ""),
            direction=_optional_str(raw_metric.get("direction")),
            note=_optional_str(raw_metric.get("note")),
        ))
    return SliceView(anchor=slice_anchor, id=slice_id, attributes=attributes, tables=tuple(tables))


def _comparison(raw: Mapping[str, Any]) -> Comparison:
    return Comparison(
        difference=float(raw["difference"]),
        ci_low=raw["difference_ci_low"],
        ci_high=raw["difference_ci_high"],
        p_value=raw["p_value"],
        p_adjusted=raw["p_adjusted"],
        significant=bool(raw["significant"]),
        worse=bool(raw["worse"]),
        test=_optional_str(raw["test"]),
        note=_optional_str(raw.get("note")),
    )


def _rate(raw: Mapping[str, Any]) -> Rate:
    return Rate(n=int(raw["n"]), successes=int(raw["successes"]), value=raw["value"],
                ci_low=raw["ci_low"], ci_high=raw["ci_high"])


def _disparity(raw: Mapping[str, Any]) -> Disparity:
    return Disparity(
        gap=raw["gap"],
        ratio=raw["ratio"],
        max_group=_optional_str(raw["max_group"]),
        min_group=_optional_str(raw["min_group"]),
        groups_compared=int(raw["groups_compared"]),
        gap_ci_low=raw.get("gap_ci_low"),
        gap_ci_high=raw.get("gap_ci_high"),
        gap_family_ci_low=raw.get("gap_family_ci_low"),
        gap_family_ci_high=raw.get("gap_family_ci_high"),
        family_level=raw.get("family_level"),
    )


def _verdict(raw_metric: Mapping[str, Any]) -> Verdict | None:
    # results.json written before verdicts existed: the same rule, applied to its tests here.
    raw = raw_metric["verdict"] if "verdict" in raw_metric else metric_verdict(dict(raw_metric))
    if raw is None:
        return None
    return Verdict(significant=bool(raw["significant"]), p_adjusted=float(raw["p_adjusted"]),
                   source=str(raw["source"]), group=_optional_str(raw["group"]))


def _group_test(raw: Mapping[str, Any] | None) -> GroupTest | None:
    if raw is None:
        return None
    return GroupTest(name=str(raw["name"]), statistic=float(raw["statistic"]), df=int(raw["df"]),
                     p_value=float(raw["p_value"]), p_adjusted=float(raw["p_adjusted"]),
                     significant=bool(raw["significant"]), groups_tested=int(raw["groups_tested"]))


def _build_finding(raw: Mapping[str, Any], table_anchors: Mapping[TableKey, str]) -> Finding:
    """A finding links to the table of its probe, slice and metric."""
    key = (raw["probe"], raw["slice"], raw["metric"])
    return Finding(text=str(raw["text"]), href=f"#{table_anchors[key]}",
                   location=" \u00b7 ".join((raw["probe"], raw["slice"], metric_label(raw["metric"]))),
                   worse=raw.get("worse"), related=len(raw.get("related") or ()))


def _build_statistics(raw: Mapping[str, Any], probes: Sequence[ProbeView]) -> StatisticsSettings:
    tables = [table for probe in probes for table in probe.tables()]
    tests = [test for table in tables for test in (table.test, table.trend) if test is not None]
    comparisons = [row.comparison for table in tables for row in table.rows
                   if row.comparison is not None and row.comparison.p_adjusted is not None]
    return StatisticsSettings(
        confidence_level=float(raw["confidence"]),
        alpha=float(raw["alpha"]),
        min_n=int(raw["min_n"]),
        correction=str(raw["correction"]),
        family_size=raw.get("family_size"),
        n_significant=sum(1 for test in tests if test.significant)
        + sum(1 for comparison in comparisons if comparison.significant),
        test_names=tuple(sorted({test.name for test in tests} | {c.test for c in comparisons if c.test})),
        min_effect=raw.get("min_effect"),
        interval=raw.get("interval"),
        findings_from=_optional_str(raw.get("findings_from")),
    )


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _optional_location(value: Any) -> str | None:
    """A path or spec as the page may show it: never an absolute local path (see files.shown_location)."""
    return None if value is None else shown_location(str(value))
