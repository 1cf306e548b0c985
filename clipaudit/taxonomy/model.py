"""Taxonomies: what to ask the model, as typed objects read from YAML.

A taxonomy file lists *probes*. An ``attribute`` probe asks the model for something the
dataset labels (gender, race, age) and is scored by accuracy; a ``harm`` probe offers
classes some of which carry a harm ``category`` (crime, non_human) and is scored by how
often a group's images land in them. *Variants* are named edits of the taxonomy for
sensitivity studies (add a 'child' class, other templates, ...).

The file format and its checks live in :mod:`clipaudit.taxonomy.checks`; this module
builds the frozen objects other modules use (contract: docs/internals.md). Reading files
is :mod:`clipaudit.taxonomy.loading`; checks against a dataset or a model are
:mod:`clipaudit.taxonomy.fit`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from clipaudit.errors import TaxonomyError
from clipaudit.located_yaml import LocatedYaml
from clipaudit.taxonomy.checks import DocumentChecker
from clipaudit.taxonomy.groupings import Grouping, build_grouping
from clipaudit.taxonomy.templates import fill_template
from clipaudit.taxonomy.variants import apply_variant_edits

ProbeKind = Literal["attribute", "harm"]


@dataclass(frozen=True)
class TaxonomyClass:
    """One class the model can pick. ``category`` None means neutral (not a harm)."""

    id: str
    label: str
    category: str | None = None
    prompts: tuple[str, ...] | None = None


def protocol_class(detail: dict[str, Any]) -> TaxonomyClass:
    """A class as results.json records it under ``class_details`` (its exact prompts included)."""
    return TaxonomyClass(id=str(detail["id"]), label=str(detail["label"]), category=detail["category"],
                         prompts=tuple(detail["prompts"]) if detail.get("prompts") is not None else None)


@dataclass(frozen=True)
class Probe:
    """One zero-shot question: its classes in score order and the slices to report."""

    id: str
    kind: ProbeKind
    target: str | None
    classes: tuple[TaxonomyClass, ...]
    slices: tuple[tuple[str, ...], ...] = ()
    templates: tuple[str, ...] | None = None
    # Coarser outcomes scored as well (attribute probes): metric accuracy_<grouping id> each.
    outcome_groups: tuple[Grouping, ...] = ()

    def class_ids(self) -> list[str]:
        return [cls.id for cls in self.classes]

    def categories(self) -> list[str]:
        """Sorted distinct harm categories (empty for attribute probes)."""
        return sorted({cls.category for cls in self.classes if cls.category is not None})


@dataclass(frozen=True)
class PublishedTables:
    """Published tables to reproduce from this taxonomy's predictions (``clipaudit.stats.published_tables``).

    ``race_order`` is the race order of the publication's own data (its group indices).
    """

    layout: str
    race_order: tuple[str, ...]


@dataclass(frozen=True)
class Variant:
    """A named edit of a taxonomy. Edits are flat records so the object stays hashable.

    Applied in this order: templates, probe_templates, remove_classes, add_classes,
    relabel, set_prompts.
    """

    id: str
    description: str = ""
    templates: tuple[str, ...] | None = None
    probe_templates: tuple[tuple[str, tuple[str, ...]], ...] = ()        # (probe_id, templates)
    add_classes: tuple[tuple[str, TaxonomyClass], ...] = ()              # (probe_id, class)
    remove_classes: tuple[tuple[str, str], ...] = ()                     # (probe_id, class_id)
    relabel: tuple[tuple[str, str, str], ...] = ()                       # (probe_id, class_id, label)
    set_prompts: tuple[tuple[str, str, tuple[str, ...]], ...] = ()       # (probe_id, class_id, prompts)

    def to_document(self) -> dict[str, Any]:
        """The variant in the YAML contract's form."""
        document: dict[str, Any] = {"id": self.id}
        if self.description:
            document["description"] = self.description
        if self.templates is not None:
            document["templates"] = list(self.templates)
        if self.probe_templates:
            document["probe_templates"] = {probe_id: list(templates) for probe_id, templates in self.probe_templates}
        if self.add_classes:
            document["add_classes"] = {}
            for probe_id, cls in self.add_classes:
                document["add_classes"].setdefault(probe_id, []).append(_class_document(cls))
        if self.remove_classes:
            document["remove_classes"] = {}
            for probe_id, class_id in self.remove_classes:
                document["remove_classes"].setdefault(probe_id, []).append(class_id)
        if self.relabel:
            document["relabel"] = {}
            for probe_id, class_id, label in self.relabel:
                document["relabel"].setdefault(probe_id, {})[class_id] = label
        if self.set_prompts:
            document["set_prompts"] = {}
            for probe_id, class_id, prompts in self.set_prompts:
                document["set_prompts"].setdefault(probe_id, {})[class_id] = list(prompts)
        return document


@dataclass(frozen=True)
class Taxonomy:
    """A validated taxonomy. ``sha256`` is of the file bytes (kept by variants).

    ``variant`` names the variant applied (None for the file as written). The optional
    ``intended_use`` / ``out_of_scope_use`` / ``source`` strings are model-card style
    provenance shown in reports; they do not change any number.
    """

    name: str
    description: str
    templates: tuple[str, ...]
    probes: tuple[Probe, ...]
    variants: tuple[Variant, ...] = ()
    path: Path | None = None
    sha256: str = ""
    variant: str | None = None
    intended_use: str | None = None
    out_of_scope_use: str | None = None
    source: str | None = None
    # For a combination of taxonomy files (several --taxonomy): (name, path, sha256) of each.
    parts: tuple[tuple[str, str | None, str], ...] = ()
    # Coarser dataset columns slices can use (race_binary from race), and published tables to reproduce.
    attribute_groups: tuple[Grouping, ...] = ()
    published_tables: PublishedTables | None = None

    def probe(self, probe_id: str) -> Probe:
        for probe in self.probes:
            if probe.id == probe_id:
                return probe
        raise TaxonomyError(f"{self._where()}: no probe '{probe_id}'; probes: {', '.join(self.probe_ids())}")

    def probe_ids(self) -> list[str]:
        return [probe.id for probe in self.probes]

    def variant_ids(self) -> list[str]:
        return [variant.id for variant in self.variants]

    def prompts_for(self, probe: Probe | str, cls: TaxonomyClass | str) -> tuple[str, ...]:
        """The exact prompts for a class: its explicit prompts, else each template with its label.

        Probe-level templates, when set, replace the taxonomy's.
        """
        probe = self.probe(probe) if isinstance(probe, str) else probe
        if isinstance(cls, str):
            cls = _class_in(probe, cls, self._where())
        if cls.prompts is not None:
            return cls.prompts
        templates = probe.templates if probe.templates is not None else self.templates
        return tuple(fill_template(template, cls.label) for template in templates)

    def apply_variant(self, variant_id: str) -> Taxonomy:
        """A new validated taxonomy with the variant's edits; name ``<name>+<variant>``."""
        variant = next((item for item in self.variants if item.id == variant_id), None)
        if variant is None:
            known = ", ".join(self.variant_ids()) or "(none)"
            raise TaxonomyError(f"{self._where()}: no variant '{variant_id}'; variants: {known}")
        derived = apply_variant_edits(self.to_document(), variant.to_document())
        derived["name"] = self.name.split("+")[0]  # the base name: '+' is reserved for variants
        problems = DocumentChecker(LocatedYaml(derived), self._where()).check(with_variants=False)
        if problems:
            raise TaxonomyError(f"variant '{variant_id}' breaks the taxonomy: {problems[0]}")
        built = build_taxonomy(derived, path=self.path, sha256=self.sha256)
        applied = variant_id if self.variant is None else f"{self.variant}+{variant_id}"
        return replace(built, name=f"{self.name}+{variant_id}", variants=self.variants, variant=applied)

    def with_variant_documents(self, documents: Sequence[dict[str, Any]], *, source: str) -> Taxonomy:
        """This taxonomy with more variants (written elsewhere, e.g. generated by a sweep spec).

        The variants are checked exactly as if they had been written in the file; a problem is
        reported against ``source``.
        """
        document = self.to_document()
        document["variants"] = [variant.to_document() for variant in self.variants] + [dict(d) for d in documents]
        problems = DocumentChecker(LocatedYaml(document), source).check()
        if problems:
            raise TaxonomyError(f"{source}: {problems[0].field}: {problems[0].message}")
        return replace(self, variants=self.variants + tuple(_build_variant(d) for d in documents))

    def to_document(self) -> dict[str, Any]:
        """The taxonomy in the YAML contract's form (what a file with these contents holds)."""
        document: dict[str, Any] = {"name": self.name, "description": self.description,
                                    "templates": list(self.templates)}
        for key in ("intended_use", "out_of_scope_use", "source"):
            if getattr(self, key) is not None:
                document[key] = getattr(self, key)
        document["probes"] = [_probe_document(probe) for probe in self.probes]
        if self.attribute_groups:
            document["attribute_groups"] = [grouping.to_document("values") for grouping in self.attribute_groups]
        if self.published_tables is not None:
            document["published_tables"] = {"layout": self.published_tables.layout,
                                             "race_order": list(self.published_tables.race_order)}
        if self.variants:
            document["variants"] = [variant.to_document() for variant in self.variants]
        if not self.templates:
            del document["templates"]
        return document

    def to_dict(self) -> dict[str, Any]:
        """The protocol as run, for results.json: every class with its exact prompts."""
        return {
            "name": self.name,
            "description": self.description,
            "path": str(self.path) if self.path else None,
            "sha256": self.sha256,
            "parts": [{"name": name, "path": path, "sha256": sha256} for name, path, sha256 in self.parts],
            "variant": self.variant,
            "intended_use": self.intended_use,
            "out_of_scope_use": self.out_of_scope_use,
            "source": self.source,
            "templates": list(self.templates),
            "probes": [
                {
                    "id": probe.id,
                    "kind": probe.kind,
                    "target": probe.target,
                    "templates": list(probe.templates) if probe.templates is not None else None,
                    "slices": [list(slice_) for slice_ in probe.slices],
                    "outcome_groups": [grouping.to_document("classes") for grouping in probe.outcome_groups],
                    "classes": [
                        {"id": cls.id, "label": cls.label, "category": cls.category,
                         "prompts": list(self.prompts_for(probe, cls))}
                        for cls in probe.classes
                    ],
                }
                for probe in self.probes
            ],
            "variants": [{"id": variant.id, "description": variant.description} for variant in self.variants],
            "attribute_groups": [grouping.to_document("values") for grouping in self.attribute_groups],
            "published_tables": None if self.published_tables is None else
            {"layout": self.published_tables.layout, "race_order": list(self.published_tables.race_order)},
        }

    def _where(self) -> str:
        return str(self.path) if self.path else self.name


# --------------------------------------------------------------------------------------
# Building objects from a checked document
# --------------------------------------------------------------------------------------

def build_taxonomy(document: dict[str, Any], *, path: Path | None, sha256: str) -> Taxonomy:
    """Objects from a document the checker passed (so every shape here is known)."""
    return Taxonomy(
        name=document["name"],
        description=document.get("description", ""),
        templates=tuple(document.get("templates", ())),
        probes=tuple(_build_probe(probe) for probe in document["probes"]),
        variants=tuple(_build_variant(variant) for variant in document.get("variants", [])),
        path=path,
        sha256=sha256,
        intended_use=document.get("intended_use"),
        out_of_scope_use=document.get("out_of_scope_use"),
        source=document.get("source"),
        attribute_groups=tuple(build_grouping(item, "values") for item in document.get("attribute_groups", [])),
        published_tables=_build_published_tables(document.get("published_tables")),
    )


def _build_published_tables(document: dict[str, Any] | None) -> PublishedTables | None:
    if document is None:
        return None
    return PublishedTables(layout=document["layout"], race_order=tuple(document["race_order"]))


def _build_class(document: dict[str, Any]) -> TaxonomyClass:
    prompts = document.get("prompts")
    return TaxonomyClass(id=document["id"], label=document.get("label", document["id"]),
                         category=document.get("category"),
                         prompts=tuple(prompts) if prompts is not None else None)


def _build_probe(document: dict[str, Any]) -> Probe:
    templates = document.get("templates")
    return Probe(
        id=document["id"],
        kind=document["kind"],
        target=document.get("target"),
        classes=tuple(_build_class(cls) for cls in document["classes"]),
        slices=tuple((item,) if isinstance(item, str) else tuple(item) for item in document.get("slices", [])),
        templates=tuple(templates) if templates is not None else None,
        outcome_groups=tuple(build_grouping(item, "classes") for item in document.get("outcome_groups", [])),
    )


def _build_variant(document: dict[str, Any]) -> Variant:
    templates = document.get("templates")
    return Variant(
        id=document["id"],
        description=document.get("description", ""),
        templates=tuple(templates) if templates is not None else None,
        probe_templates=tuple((probe_id, tuple(items))
                              for probe_id, items in document.get("probe_templates", {}).items()),
        add_classes=tuple((probe_id, _build_class(cls))
                          for probe_id, classes in document.get("add_classes", {}).items() for cls in classes),
        remove_classes=tuple((probe_id, class_id)
                             for probe_id, ids in document.get("remove_classes", {}).items() for class_id in ids),
        relabel=tuple((probe_id, class_id, label)
                      for probe_id, labels in document.get("relabel", {}).items()
                      for class_id, label in labels.items()),
        set_prompts=tuple((probe_id, class_id, tuple(prompts))
                          for probe_id, by_class in document.get("set_prompts", {}).items()
                          for class_id, prompts in by_class.items()),
    )


def _class_document(cls: TaxonomyClass) -> dict[str, Any]:
    document: dict[str, Any] = {"id": cls.id, "label": cls.label}
    if cls.category is not None:
        document["category"] = cls.category
    if cls.prompts is not None:
        document["prompts"] = list(cls.prompts)
    return document


def _probe_document(probe: Probe) -> dict[str, Any]:
    document: dict[str, Any] = {"id": probe.id, "kind": probe.kind}
    if probe.target is not None:
        document["target"] = probe.target
    if probe.templates is not None:
        document["templates"] = list(probe.templates)
    document["classes"] = [_class_document(cls) for cls in probe.classes]
    document["slices"] = [slice_[0] if len(slice_) == 1 else list(slice_) for slice_ in probe.slices]
    if probe.outcome_groups:
        document["outcome_groups"] = [grouping.to_document("classes") for grouping in probe.outcome_groups]
    return document


def _class_in(probe: Probe, class_id: str, where: str) -> TaxonomyClass:
    for cls in probe.classes:
        if cls.id == class_id:
            return cls
    raise TaxonomyError(f"{where}: no class '{class_id}' in probe '{probe.id}'; "
                        f"classes: {', '.join(probe.class_ids())}")
