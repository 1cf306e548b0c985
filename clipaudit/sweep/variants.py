"""The versions of a taxonomy a sweep scores: the base, its declared variants, the spec's generated ones."""
from __future__ import annotations

from dataclasses import dataclass

from clipaudit.errors import TaxonomyError
from clipaudit.sweep.spec import SweepSpec, generated_variant_documents
from clipaudit.taxonomy import Taxonomy

BASE = "base"


@dataclass(frozen=True)
class SweepVariant:
    """One version of a taxonomy in the sweep; the base taxonomy is the variant 'base'."""

    taxonomy_name: str
    id: str
    description: str
    taxonomy: Taxonomy
    generated: bool = False  # made by a sweep spec's combinations, not written in the taxonomy

    @property
    def key(self) -> str:
        return f"{self.taxonomy_name}/{self.id}"


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
                SweepVariant(base_name, document["id"], document.get("description", ""),
                             extended.apply_variant(document["id"]), generated=True)
            )
    ids = [variant.id for variant in variants]
    duplicates = sorted({variant_id for variant_id in ids if ids.count(variant_id) > 1})
    if duplicates:
        raise TaxonomyError(f"{base_name}: variant id {duplicates[0]!r} is used twice in the sweep (declared and generated?)")
    return variants


def distinct_variants(variants: list[SweepVariant]) -> tuple[list[SweepVariant], list[str]]:
    """The variants without generated copies, and a note for each generated variant dropped because
    it asks exactly what an earlier one asks (a spec's template set equal to the taxonomy's own
    templates generates copies of the base and of every synonym variant: tests wasted on no change).
    Variants written in the taxonomy stay, copies or not: an author may keep one as a control."""
    kept: list[SweepVariant] = []
    first_with: dict[str, SweepVariant] = {}
    notes = []
    for variant in variants:
        question = what_the_model_is_asked(variant.taxonomy)
        if variant.generated and question in first_with:
            earlier = first_with[question]
            notes.append(f"variant '{variant.id}' of {variant.taxonomy_name} asks exactly what '{earlier.id}' asks "
                         "(same classes, categories and prompts); dropped")
            continue
        first_with.setdefault(question, variant)
        kept.append(variant)
    return kept, notes


def what_the_model_is_asked(taxonomy: Taxonomy) -> str:
    """Every probe's classes, categories and prompts as sent, slices and target: equal means equal results."""
    import json

    probes = [[probe.id, probe.kind, probe.target, [list(slice_) for slice_ in probe.slices],
               [[cls.id, cls.category, list(taxonomy.prompts_for(probe, cls))] for cls in probe.classes]]
              for probe in taxonomy.probes]
    return json.dumps(probes)
