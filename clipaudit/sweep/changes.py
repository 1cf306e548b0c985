"""Every variant against its base, group by group: rates with intervals and paired changes.

Every variant sees the same images as its base, so each change in a group's rate is paired
(:func:`clipaudit.stats.changes.paired_changes`: Newcombe's paired interval, exact McNemar), and
every test of the sweep is one family for the correction (:func:`clipaudit.stats.correct_family`).
Groups are the audit's (:func:`clipaudit.stats.probe_slice_groups`), in the audit's order.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from clipaudit.stats import StatsSettings, correct_family, group_counts, metric_names, metric_outcomes
from clipaudit.stats import probe_slice_groups
from clipaudit.stats.changes import paired_changes
from clipaudit.stats.groups import SliceGroups
from clipaudit.stats.intervals import interval
from clipaudit.sweep.variants import BASE, SweepVariant
from clipaudit.vocabulary import slice_id

CLASS_CHANGES_LISTED = 20


@dataclass
class _BaseProbe:
    """What every variant of one probe is compared with, computed once: the same images in all."""

    rows: pd.DataFrame
    outcomes: dict
    groups: list[SliceGroups]


def compare_variants(variants: list[SweepVariant], predictions: dict[str, pd.DataFrame], *,
                     settings: StatsSettings) -> tuple[list[dict], list[dict]]:
    """Rates per group for every variant and paired changes from its base, corrected together."""
    rows: list[dict] = []
    class_changes: list[dict] = []
    bases = {variant.taxonomy_name: variant for variant in variants if variant.id == BASE}
    base_probes: dict[tuple[str, str], _BaseProbe] = {}
    for variant in variants:
        base = bases[variant.taxonomy_name]
        for probe in variant.taxonomy.probes:
            key = (base.taxonomy_name, probe.id)
            if key not in base_probes:
                base_probes[key] = _base_probe(base.taxonomy.probe(probe.id), _probe_frame(predictions[base.key], probe.id))
            variant_rows = _probe_frame(predictions[variant.key], probe.id)
            rows += _group_rows(variant, probe, base_probes[key], variant_rows, settings)
            if variant.id != BASE:
                class_changes.append(_class_changes(variant, probe.id, base_probes[key].rows, variant_rows))
    _correct(rows, settings)
    return rows, class_changes


def _probe_frame(predictions: pd.DataFrame, probe_id: str) -> pd.DataFrame:
    return predictions[predictions["probe"] == probe_id].reset_index(drop=True)


def _base_probe(base_probe, base_rows: pd.DataFrame) -> _BaseProbe:
    everything = np.arange(len(base_rows))
    return _BaseProbe(rows=base_rows, outcomes=metric_outcomes(base_rows, everything, base_probe),
                      groups=probe_slice_groups(base_rows, everything, base_probe.slices))


def _group_rows(variant: SweepVariant, probe, base: _BaseProbe, variant_rows: pd.DataFrame,
                settings: StatsSettings) -> list[dict]:
    variant_outcomes = metric_outcomes(variant_rows, np.arange(len(variant_rows)), probe)
    rows = []
    for groups in base.groups:
        for metric in metric_names(probe):
            if metric not in base.outcomes:
                continue  # e.g. a category the variant introduced: no base rate to compare with
            counted, success = variant_outcomes[metric]
            _, base_success = base.outcomes[metric]
            counts = group_counts(groups, counted, success)
            rate = interval(counts.successes, counts.n, method=settings.interval, confidence=settings.confidence)
            changes = paired_changes(groups, counted, base_success, success, confidence=settings.confidence)
            for change in changes:
                if change.n == 0:
                    continue  # no image of the group counts for this metric: no rate to compare
                index = counts.labels.index(change.group)
                tested = variant.id != BASE and change.n >= settings.min_n
                rows.append({
                    "taxonomy": variant.taxonomy_name,
                    "variant": variant.id,
                    "probe": probe.id,
                    "slice": slice_id(groups.attributes),
                    "metric": metric,
                    "group": change.group,
                    "n": change.n,
                    "successes": change.successes_after,
                    "value": change.value_after,
                    "ci_low": float(rate.low[index]),
                    "ci_high": float(rate.high[index]),
                    "base_value": change.value_before,
                    "small": change.n < settings.min_n,
                    "difference": change.difference,
                    "difference_ci_low": change.ci_low,
                    "difference_ci_high": change.ci_high,
                    "images_now_counted": change.now_counted,
                    "images_no_longer_counted": change.no_longer_counted,
                    "test": change.test if tested else None,
                    "p_value": change.p_value if tested else None,
                })
    return rows


def _correct(rows: list[dict], settings: StatsSettings) -> None:
    """One correction over every paired test of the sweep; significance needs the effect size too."""
    tested = [row for row in rows if row["p_value"] is not None]
    corrected = correct_family([row["p_value"] for row in tested], [abs(row["difference"]) for row in tested],
                               correction=settings.correction, alpha=settings.alpha, min_effect=settings.min_effect)
    for row, (p_adjusted, significant) in zip(tested, corrected):
        row["p_adjusted"] = p_adjusted
        row["significant"] = significant
    for row in rows:
        row.setdefault("p_adjusted", None)
        row.setdefault("significant", False)


def _class_changes(variant: SweepVariant, probe_id: str, base_rows: pd.DataFrame, variant_rows: pd.DataFrame) -> dict:
    """Which images moved from which class to which, for one variant and probe."""
    moved = base_rows["prediction"].to_numpy() != variant_rows["prediction"].to_numpy()
    transitions = (
        pd.DataFrame({"from": base_rows["prediction"][moved], "to": variant_rows["prediction"][moved]})
        .value_counts()
        .reset_index(name="count")
    )
    listed = transitions.head(CLASS_CHANGES_LISTED)
    return {
        "taxonomy": variant.taxonomy_name,
        "variant": variant.id,
        "probe": probe_id,
        "n_images": int(len(base_rows)),
        "n_changed": int(moved.sum()),
        "transitions": [
            {"from": str(row["from"]), "to": str(row["to"]), "count": int(row["count"])} for _, row in listed.iterrows()
        ],
        "transitions_not_listed": int(len(transitions) - len(listed)),
    }
