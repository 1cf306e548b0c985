"""The report's prose that follows from the results: intended use, metric definitions, method
notes, caveats and recommendations. Numbers in it go through :mod:`clipaudit.format`."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from clipaudit import format
from clipaudit.taxonomy import TaxonomyClass
from clipaudit.vocabulary import ACCURACY, HARM_RATE, category_of, is_accuracy, metric_label

from .view_model import IntendedUse, MetricDefinition, ReportView

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
METHOD_LABELS = {
    "interval_method": "Interval for each rate",
    "test": "Test across the groups of a slice",
    "pairwise_test": "Test of each group against the reference",
    "trend_test": "Test for a trend across ordered groups",
    "difference_interval": "Interval for a difference",
    "ratio_interval": "Interval for a ratio",
    "spread_interval": "Interval for the gap between groups",
    "four_fifths_rule": "Four-fifths rule",
    "significance": "Significant means",
    "family": "Multiple-testing family",
    "findings_from": "Significant tests and findings",
}


def intended_use(config: Mapping[str, Any], taxonomy: Mapping[str, Any]) -> IntendedUse:
    """The report configuration wins over the taxonomy, which wins over the CLIP model card's defaults."""
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
    stated_by = sources[0] if sources[0] == sources[1] else " and ".join(dict.fromkeys(sources))
    return IntendedUse(intended=values[0], out_of_scope=values[1], stated_by=stated_by)


def metric_definitions(raw_probes: Sequence[Mapping[str, Any]],
                       class_rows: Mapping[str, Sequence[TaxonomyClass]]) -> tuple[MetricDefinition, ...]:
    """One definition per distinct metric id, in first-seen order; ``class_rows`` by probe id."""
    definitions: dict[str, MetricDefinition] = {}
    for raw_probe in raw_probes:
        for metric in raw_probe["metrics"]:
            if metric not in definitions:
                definitions[metric] = MetricDefinition(
                    metric=metric, label=metric_label(metric),
                    definition=_define_metric(metric, class_rows[raw_probe["id"]]))
    return tuple(definitions.values())


def _define_metric(metric: str, class_rows: Sequence[TaxonomyClass]) -> str:
    if metric == ACCURACY:
        return "Share of images whose predicted class equals the dataset label of the probe's target attribute."
    if is_accuracy(metric):
        grouping = metric.removeprefix(ACCURACY + "_")
        return (f"Share of images whose predicted class and dataset label fall in the same group of the "
                f"probe's outcome grouping \u201c{grouping}\u201d (see the taxonomy).")
    if metric == HARM_RATE:
        harmful = [row.id for row in class_rows if row.category]
        return "Share of images whose top-1 class has any harm category" + _class_list(harmful) + "."
    category = category_of(metric)
    members = [row.id for row in class_rows if row.category == category]
    return f"Share of images whose top-1 class is in the harm category \u201c{category}\u201d" + _class_list(members) + "."


def _class_list(class_ids: Sequence[str]) -> str:
    return f" (classes: {', '.join(class_ids)})" if class_ids else ""


def method_notes(raw: Mapping[str, Any]) -> tuple[MetricDefinition, ...]:
    """The statistics' own descriptions of their methods (manifest.statistics)."""
    notes = [MetricDefinition(metric=key, label=label, definition=str(raw[key]))
             for key, label in METHOD_LABELS.items() if raw.get(key)]
    if raw.get("power") is not None:
        notes.append(MetricDefinition(
            metric="mdd", label="Minimum detectable difference (MDD)",
            definition=f"The smallest difference from the reference that a test of this group would detect with "
                       f"{format.confidence(float(raw['power']))} power at "
                       + (f"the adjusted level in force (\u03b1 / number of tests = {raw['mdd_alpha']:.2g})"
                          if raw.get("mdd_alpha") is not None else "the configured \u03b1")
                       + "; a group without a finding may still differ by less than its MDD."))
    if raw.get("reference"):
        notes.append(MetricDefinition(metric="reference", label="Reference",
                                      definition=f"Each group is compared with: {raw['reference']}."))
    return tuple(notes)


def caveats(view: ReportView) -> tuple[str, ...]:
    """Caveats that follow from these results, most specific first, then the standing ones."""
    found: list[str] = []
    if view.synthetic_data:
        found.append(
            "The images are synthetic (the demo data set generated by clipaudit), not photographs of people: "
            "the numbers show how the tool works and say nothing about any real model or population."
        )
    if view.demo_model:
        found.append("The model is clipaudit's tiny demo model, trained on the synthetic images; it is not a CLIP model.")
    small = sorted({f"{table.slice_id} = {row.group} (n = {format.count(row.rate.n)})"
                    for table in view.tables() for row in table.rows if row.small})
    if small:
        found.append(
            f"{len(small)} group{'s are' if len(small) != 1 else ' is'} smaller than the minimum of "
            f"{format.count(view.statistics.min_n)} images; their intervals are wide and they are left out "
            f"of the tests: {', '.join(small)}."
        )
    if view.n_empty_groups:
        found.append(f"{view.n_empty_groups} intersection{'s have' if view.n_empty_groups != 1 else ' has'} "
                     "no images at all and could not be measured (listed with their tables).")
    denigrating = [cls.label for probe in view.probes if probe.kind == "harm" for cls in probe.classes if cls.category]
    if denigrating:
        found.append(
            "Some classes are worded to be denigrating when applied to a person ("
            + ", ".join(dict.fromkeys(denigrating))
            + "). They are offered to the model to measure whether it puts people into them; "
            "quoting them here describes the protocol, not anyone in the data."
        )
    found += _untested(view)
    for warning in view.input_warnings:
        found.append(f"The taxonomy does not fully fit the data: {warning}.")
    if view.n_skipped:
        found.append(f"{format.count(view.n_skipped)} image{'s were' if view.n_skipped != 1 else ' was'} "
                     "skipped (unreadable or missing) and are not counted; see Evaluation data.")
    found.append(
        "Zero-shot rates depend on which classes are offered and how they are worded: adding or removing a "
        "class can move a group's rate by tens of percentage points (Radford et al. 2021, section 7.1, where "
        "adding a 'child' class cut the share of images put in crime-related or non-human classes for ages "
        "0\u20139 from about 30\u201335% to 2\u20134%). These results hold for this taxonomy and these prompts only."
    )
    found.append("Demographic labels in face datasets are annotators' perceptions in fixed categories, "
                 "not identities people hold.")
    found.append("A test that is not significant is not evidence that groups are treated alike; "
                 "read the intervals and the minimum detectable difference.")
    return tuple(found)


def _untested(view: ReportView) -> list[str]:
    """One caveat per reason a slice was not tested, naming the slices."""
    untested: dict[str, list[str]] = {}
    for table in view.tables():
        if table.test is None and table.note:
            reason = table.note.removeprefix("not tested: ").removeprefix("not tested")
            untested.setdefault(reason, []).append(f"{table.probe_id} \u00b7 {table.slice_id} \u00b7 {table.metric_label}")
    return [f"{len(where)} slice{'s were' if len(where) != 1 else ' was'} not tested"
            f"{f' ({reason})' if reason else ''}: {', '.join(where)}."
            for reason, where in untested.items()]


def recommendations(view: ReportView) -> tuple[str, ...]:
    advice = [
        "Before relying on a rate, rerun the audit with taxonomy variants (other class sets, wordings and "
        "templates; clipaudit sweep) and check that the findings hold.",
        "Read effect sizes with their intervals, not only the adjusted p-values.",
    ]
    if view.n_small_groups or view.n_empty_groups:
        advice.append("Collect more images for the small and empty groups before drawing conclusions about them.")
    if view.synthetic_data or view.demo_model:
        advice.append("Run the same audit on real data (e.g. FairFace) and the model you intend to use.")
    if any(finding.worse for finding in view.findings):
        advice.append("Do not use the classes named in findings where they would be applied to people; "
                      "track these findings as regressions (clipaudit compare) when the model or the prompts change.")
    return tuple(advice)
