"""Taxonomy sensitivity studies: one model, one dataset, many versions of the question.

A sweep scores the base taxonomy and each variant on the same images. Images are encoded once
(and usually come from the cache); each variant costs a few text embeddings and a matrix
product. Because every variant sees the same images, each change in a group's rate is a paired
comparison: Newcombe's paired interval and the exact McNemar test on per-image outcomes,
with one multiple-testing correction over the whole sweep.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from clipaudit.documents import check_own, stamped, to_json_bytes
from clipaudit.errors import TaxonomyError
from clipaudit.files import write_output_files
from clipaudit.pipeline.encode import encode_images, score_taxonomies
from clipaudit.pipeline.inputs import load_inputs
from clipaudit.pipeline.manifest import run_manifest
from clipaudit.stats.engine import attribute_codes_of, group_counts, metric_names, metric_outcomes, slice_groups
from clipaudit.stats.intervals import interval
from clipaudit.stats.multiple import adjust_p_values
from clipaudit.stats.paired import paired_difference
from clipaudit.sweep.spec import SweepSpec, generated_variant_documents
from clipaudit.taxonomy import Taxonomy

BASE = "base"
CLASS_CHANGES_LISTED = 20
MOST_SENSITIVE_LISTED = 15


@dataclass(frozen=True)
class SweepVariant:
    """One version of a taxonomy in the sweep; the base taxonomy is the variant 'base'."""

    taxonomy_name: str
    id: str
    description: str
    taxonomy: Taxonomy

    @property
    def key(self) -> str:
        return f"{self.taxonomy_name}/{self.id}"


@dataclass
class SweepRun:
    document: dict                 # sweep.json
    table: pd.DataFrame            # sweep.parquet: one row per variant x probe x slice x metric x group
    timings: dict[str, float] = field(default_factory=dict)


def sweep_variants(taxonomy: Taxonomy, spec: SweepSpec | None = None) -> list[SweepVariant]:
    """The base, every declared variant, then every variant the sweep spec generates."""
    base_name = taxonomy.name
    variants = [SweepVariant(base_name, BASE, "the taxonomy as written", taxonomy)]
    for declared in taxonomy.variants:
        variants.append(SweepVariant(base_name, declared.id, declared.description, taxonomy.apply_variant(declared.id)))
    if spec is not None:
        documents = generated_variant_documents(spec)
        extended = taxonomy.with_variant_documents(documents, source=str(spec.path))
        for document in documents:
            variants.append(
                SweepVariant(base_name, document["id"], document.get("description", ""), extended.apply_variant(document["id"]))
            )
    ids = [variant.id for variant in variants]
    duplicates = sorted({variant_id for variant_id in ids if ids.count(variant_id) > 1})
    if duplicates:
        raise TaxonomyError(f"{base_name}: variant id {duplicates[0]!r} is used twice in the sweep (declared and generated?)")
    return variants


def run_sweep(
    *,
    taxonomies: list[Taxonomy],
    data: str,
    model: str,
    options,
    settings,
    spec: SweepSpec | None = None,
) -> SweepRun:
    """Encode the images once, score every variant, and compare each with its base."""
    started = time.perf_counter()
    variants = [variant for taxonomy in taxonomies for variant in sweep_variants(taxonomy, spec)]
    inputs = load_inputs(taxonomies=[v.taxonomy for v in variants], data=data, model=model, options=options)
    images = encode_images(inputs, options)
    scored = score_taxonomies(inputs, images, [variant.taxonomy for variant in variants])
    timings = {**inputs.timings, "embed_images_s": images.seconds, "embed_texts_s": scored.embed_texts_s,
               "score_s": scored.score_s}
    predictions = {variant.key: frame for variant, frame in zip(variants, scored.predictions)}

    mark = time.perf_counter()
    rows, class_changes = compare_variants(variants, predictions, settings=settings)
    table = pd.DataFrame(rows)
    timings["statistics_s"] = time.perf_counter() - mark
    timings["total_s"] = time.perf_counter() - started
    manifest = {**run_manifest(inputs, images, data=data, options=options),
                "timings": {name: round(seconds, 3) for name, seconds in timings.items()}}
    document = sweep_document(variants, table, class_changes, manifest=manifest, settings=settings)
    return SweepRun(document=document, table=table, timings=timings)


@dataclass
class _BaseProbe:
    """What every variant of one probe is compared with, computed once: the same images in all."""

    rows: pd.DataFrame
    outcomes: dict
    groups: list  # (slice attributes, SliceGroups) for each slice of the probe


def compare_variants(variants: list[SweepVariant], predictions: dict[str, pd.DataFrame], *, settings) -> tuple[list[dict], list[dict]]:
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
    _adjust(rows, settings)
    return rows, class_changes


def _probe_frame(predictions: pd.DataFrame, probe_id: str) -> pd.DataFrame:
    return predictions[predictions["probe"] == probe_id].reset_index(drop=True)


def _base_probe(base_probe, base_rows: pd.DataFrame) -> _BaseProbe:
    everything = np.arange(len(base_rows))
    attribute_codes = {
        attribute: attribute_codes_of(base_rows[attribute], everything, attribute)
        for attribute in dict.fromkeys(a for slice_attributes in base_probe.slices for a in slice_attributes)
    }
    groups = [(slice_attributes, slice_groups(attribute_codes, slice_attributes)) for slice_attributes in base_probe.slices]
    return _BaseProbe(rows=base_rows, outcomes=metric_outcomes(base_rows, everything, base_probe), groups=groups)


def _group_rows(variant, probe, base: _BaseProbe, variant_rows, settings) -> list[dict]:
    variant_outcomes = metric_outcomes(variant_rows, np.arange(len(variant_rows)), probe)
    rows = []
    for slice_attributes, groups in base.groups:
        for metric in metric_names(probe):
            if metric not in base.outcomes:
                continue  # e.g. a category the variant introduced: no base rate to compare with
            counted, success = variant_outcomes[metric]
            _, base_success = base.outcomes[metric]
            counts = group_counts(groups, counted, success)
            base_counts = group_counts(groups, counted, base_success)
            rate = interval(counts.successes, counts.n, method=settings.interval, confidence=settings.confidence)
            for index, label in enumerate(counts.labels):
                n = int(counts.n[index])
                if n == 0:
                    continue
                in_group = (groups.codes == index) & counted
                row = {
                    "taxonomy": variant.taxonomy_name,
                    "variant": variant.id,
                    "probe": probe.id,
                    "slice": " x ".join(slice_attributes),
                    "metric": metric,
                    "group": label,
                    "n": n,
                    "successes": int(counts.successes[index]),
                    "value": int(counts.successes[index]) / n,
                    "ci_low": float(rate.low[index]),
                    "ci_high": float(rate.high[index]),
                    "base_value": int(base_counts.successes[index]) / n,
                    "small": n < settings.min_n,
                }
                row.update(_paired_change(success[in_group], base_success[in_group], variant.id, n, settings))
                rows.append(row)
    return rows


def _paired_change(variant_success: np.ndarray, base_success: np.ndarray, variant_id: str, n: int, settings) -> dict:
    """Change from the base for one group: variant rate minus base rate, paired."""
    both = int(np.count_nonzero(variant_success & base_success))
    only_variant = int(np.count_nonzero(variant_success & ~base_success))
    only_base = int(np.count_nonzero(~variant_success & base_success))
    neither = n - both - only_variant - only_base
    change = paired_difference(both, only_variant, only_base, neither, confidence=settings.confidence)
    tested = variant_id != BASE and n >= settings.min_n
    return {
        "difference": change.difference,
        "difference_ci_low": change.ci_low,
        "difference_ci_high": change.ci_high,
        "images_now_counted": only_variant,
        "images_no_longer_counted": only_base,
        "test": "exact McNemar" if tested else None,
        "p_value": change.test.p_value if tested else None,
    }


def _adjust(rows: list[dict], settings) -> None:
    """One correction over every paired test of the sweep; significance needs the effect size too."""
    tested = [row for row in rows if row["p_value"] is not None]
    adjusted = adjust_p_values(np.asarray([row["p_value"] for row in tested]), method=settings.correction) if tested else []
    for row, p_adjusted in zip(tested, adjusted):
        row["p_adjusted"] = float(p_adjusted)
        row["significant"] = bool(
            p_adjusted < settings.alpha and abs(row["difference"]) >= settings.min_effect
        )
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


def sweep_document(variants: list[SweepVariant], table: pd.DataFrame, class_changes: list[dict], *, manifest: dict, settings) -> dict:
    """sweep.json: manifest, the protocol of every variant, changes, class moves and findings."""
    records = json.loads(table.to_json(orient="records")) if len(table) else []
    tests = int(table["p_value"].notna().sum()) if len(table) else 0
    return stamped("sweep", {
        "manifest": {
            **manifest,
            "statistics": {
                **settings.to_dict(),
                "family": (
                    f"every paired change from the base (variant x probe x slice x metric x group with n >= "
                    f"{settings.min_n}) in this sweep: {tests} exact McNemar tests"
                ),
                "tests": tests,
            },
        },
        "variants": [
            {
                "taxonomy": variant.taxonomy_name,
                "id": variant.id,
                "description": variant.description,
                "sha256": variant.taxonomy.sha256,
                "probes": variant.taxonomy.to_dict()["probes"],
            }
            for variant in variants
        ],
        "changes": records,
        "most_sensitive": most_sensitive_groups(table),
        "class_changes": class_changes,
        "findings": sweep_findings(table),
    })


def most_sensitive_groups(table: pd.DataFrame, limit: int = MOST_SENSITIVE_LISTED) -> list[dict]:
    """Groups whose rate moves most across variants (largest absolute change from the base)."""
    changed = table[(table["variant"] != BASE) & ~table["small"]] if len(table) else table
    if not len(changed):
        return []
    changed = changed.assign(abs_difference=changed["difference"].abs())
    top = changed.sort_values(["abs_difference", "p_value"], ascending=[False, True]).head(limit)
    return [
        {key: _plain(row[key]) for key in (
            "taxonomy", "variant", "probe", "slice", "metric", "group", "n", "base_value", "value",
            "difference", "difference_ci_low", "difference_ci_high", "p_adjusted", "significant",
        )}
        for _, row in top.iterrows()
    ]


def sweep_findings(table: pd.DataFrame) -> list[dict]:
    """Every significant change, as one plain sentence with its numbers."""
    if not len(table):
        return []
    significant = table[table["significant"]].copy()
    significant = significant.assign(abs_difference=significant["difference"].abs())
    significant = significant.sort_values(["p_adjusted", "abs_difference"], ascending=[True, False])
    findings = []
    for _, row in significant.iterrows():
        direction = "rose" if row["difference"] > 0 else "fell"
        p_text = "p < 0.001" if row["p_adjusted"] < 0.001 else f"p = {row['p_adjusted']:.3g}"
        text = (
            f"With variant '{row['variant']}', the {row['metric'].replace('_', ' ')} of images labelled {row['group']} "
            f"({row['probe']}, by {row['slice']}) {direction} from {row['base_value']:.1%} to {row['value']:.1%}: "
            f"{row['difference'] * 100:+.1f} points (95% CI {row['difference_ci_low'] * 100:+.1f} to "
            f"{row['difference_ci_high'] * 100:+.1f}; exact McNemar, adjusted {p_text})."
        )
        findings.append({
            "taxonomy": row["taxonomy"], "variant": row["variant"], "probe": row["probe"], "slice": row["slice"],
            "metric": row["metric"], "group": row["group"], "base_value": float(row["base_value"]),
            "value": float(row["value"]), "difference": float(row["difference"]),
            "p_value": float(row["p_value"]), "p_adjusted": float(row["p_adjusted"]), "text": text,
        })
    return findings


def write_sweep_outputs(run: SweepRun, out_dir: Path) -> list[Path]:
    """sweep.json, sweep.parquet and sweep.html, all or nothing."""
    import io

    from clipaudit.report.sweep_view import render_sweep_report

    check_own(run.document, "sweep")
    parquet = io.BytesIO()
    run.table.to_parquet(parquet, index=False)
    files = {
        "sweep.json": to_json_bytes(run.document),
        "sweep.parquet": parquet.getvalue(),
        "sweep.html": render_sweep_report(run.document).encode("utf-8"),
    }
    return write_output_files(Path(out_dir), files)


def _plain(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return None if np.isnan(value) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    return value
