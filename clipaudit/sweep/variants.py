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
                SweepVariant(base_name, document["id"], document.get("description", ""), extended.apply_variant(document["id"]))
            )
    ids = [variant.id for variant in variants]
    duplicates = sorted({variant_id for variant_id in ids if ids.count(variant_id) > 1})
    if duplicates:
        raise TaxonomyError(f"{base_name}: variant id {duplicates[0]!r} is used twice in the sweep (declared and generated?)")
    return variants
