"""Taxonomies: what to ask the model, as typed objects read from YAML.

A taxonomy file lists *probes*. An ``attribute`` probe asks the model for something the
dataset labels (gender, race, age) and is scored by accuracy; a ``harm`` probe offers
classes some of which carry a harm ``category`` (crime, non_human) and is scored by how
often a group's images land in them. *Variants* are named edits of the taxonomy for
sensitivity studies (add a 'child' class, other templates, ...).

The file format and its checks live in :mod:`clipaudit.taxonomy_yaml`; this module
builds the frozen objects other modules use (contract: docs/internals.md).
"""
from __future__ import annotations

import hashlib
import importlib.resources
from dataclasses import dataclass, replace
from pathlib import Path
from collections.abc import Sequence
from typing import Any, Callable, Literal

from clipaudit.errors import TaxonomyError
from clipaudit.taxonomy_yaml import (
    DocumentChecker,
    LocatedYaml,
    Problem,
    apply_variant_edits,
    child_path,
    fill_template,
    read_located_yaml_file,
)

__all__ = [
    "Probe",
    "Problem",
    "Taxonomy",
    "TaxonomyClass",
    "Variant",
    "check_against_dataset",
    "check_against_model",
    "load_taxonomy",
    "shipped_taxonomies",
    "validate_taxonomy_file",
]

ProbeKind = Literal["attribute", "harm"]
SHIPPED_PACKAGE = "clipaudit.taxonomies"
_REPO_TAXONOMIES = Path(__file__).resolve().parent.parent / "taxonomies"


@dataclass(frozen=True)
class TaxonomyClass:
    """One class the model can pick. ``category`` None means neutral (not a harm)."""

    id: str
    label: str
    category: str | None = None
    prompts: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Probe:
    """One zero-shot question: its classes in score order and the slices to report."""

    id: str
    kind: ProbeKind
    target: str | None
    classes: tuple[TaxonomyClass, ...]
    slices: tuple[tuple[str, ...], ...] = ()
    templates: tuple[str, ...] | None = None

    def class_ids(self) -> list[str]:
        return [cls.id for cls in self.classes]

    def categories(self) -> list[str]:
        """Sorted distinct harm categories (empty for attribute probes)."""
        return sorted({cls.category for cls in self.classes if cls.category is not None})


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
        built = _build(derived, path=self.path, sha256=self.sha256)
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
                    "classes": [
                        {"id": cls.id, "label": cls.label, "category": cls.category,
                         "prompts": list(self.prompts_for(probe, cls))}
                        for cls in probe.classes
                    ],
                }
                for probe in self.probes
            ],
            "variants": [{"id": variant.id, "description": variant.description} for variant in self.variants],
        }

    def _where(self) -> str:
        return str(self.path) if self.path else self.name


def combine_taxonomies(taxonomies: Sequence[Taxonomy]) -> Taxonomy:
    """One taxonomy with the probes of several, for an audit that asks all their questions at once.

    Each probe keeps the templates it had (its taxonomy's become its own), so every prompt is
    unchanged; probe ids must not collide. The sha256 covers every part's sha256. Variants stay
    with their own files (a variant's edits are written against one taxonomy), so the
    combination declares none.
    """
    taxonomies = list(taxonomies)
    if len(taxonomies) == 1:
        return taxonomies[0]
    probes: list[Probe] = []
    seen: dict[str, str] = {}
    for taxonomy in taxonomies:
        for probe in taxonomy.probes:
            if probe.id in seen:
                raise TaxonomyError(
                    f"probe id '{probe.id}' is in both {seen[probe.id]} and {taxonomy._where()}; "
                    "probe ids must be unique across the taxonomies of one audit"
                )
            seen[probe.id] = taxonomy._where()
            templates = probe.templates if probe.templates is not None else taxonomy.templates
            probes.append(replace(probe, templates=tuple(templates)))
    parts = tuple((t.name, str(t.path) if t.path else None, t.sha256) for t in taxonomies)
    combined_sha256 = hashlib.sha256("".join(sha for _, _, sha in parts).encode()).hexdigest()
    return Taxonomy(
        name=" & ".join(t.name for t in taxonomies),
        description=" ".join(t.description for t in taxonomies if t.description),
        templates=taxonomies[0].templates,
        probes=tuple(probes),
        sha256=combined_sha256,
        intended_use=next((t.intended_use for t in taxonomies if t.intended_use), None),
        out_of_scope_use=next((t.out_of_scope_use for t in taxonomies if t.out_of_scope_use), None),
        source="; ".join(t.source for t in taxonomies if t.source) or None,
        parts=parts,
    )


# --------------------------------------------------------------------------------------
# Reading files
# --------------------------------------------------------------------------------------

def validate_taxonomy_file(path: str | Path) -> list[Problem]:
    """Every problem of a taxonomy file, each with its line and field (empty list = valid)."""
    _, _, problems = _read_and_check(Path(path))
    return problems


def load_taxonomy(path_or_name: str | Path) -> Taxonomy:
    """Load a taxonomy file, or a shipped one by bare name (``clip_denigration``).

    Raises TaxonomyError with the first problem and how many more there are.
    """
    path = resolve_taxonomy_path(path_or_name)
    raw, located, problems = _read_and_check(path)
    errors = [problem for problem in problems if problem.severity == "error"]
    if errors:
        more = len(errors) - 1
        suffix = "" if more == 0 else \
            f" (and {more} more problem{'s' if more > 1 else ''}; run clipaudit validate {path})"
        raise TaxonomyError(f"{errors[0]}{suffix}")
    if raw is None or located is None:  # cannot happen without an error above; kept for the type checker
        raise TaxonomyError(f"{path}: cannot read the taxonomy")
    return _build(located.data, path=path, sha256=hashlib.sha256(raw).hexdigest())


def resolve_taxonomy_path(path_or_name: str | Path) -> Path:
    """A file path as given, or the shipped file for a bare name; unknown names list the shipped ones."""
    text = str(path_or_name)
    looks_like_path = isinstance(path_or_name, Path) or "/" in text or "\\" in text \
        or text.endswith((".yaml", ".yml"))
    if not looks_like_path:
        shipped = shipped_taxonomies()
        if text in shipped:
            return shipped[text]
        if not Path(text).is_file():
            raise TaxonomyError(f"unknown taxonomy '{text}': not a file and not a shipped taxonomy "
                                f"({', '.join(sorted(shipped)) or 'none shipped'})")
    path = Path(text)
    if not path.is_file():
        raise TaxonomyError(f"taxonomy file not found: {path}")
    return path


def shipped_taxonomies() -> dict[str, Path]:
    """Shipped taxonomy files by name (file stem), from the installed package or the repo."""
    folder = _shipped_folder()
    if folder is None:
        return {}
    return {path.stem: path for path in sorted(folder.glob("*.yaml"))}


def _shipped_folder() -> Path | None:
    try:
        folder = Path(str(importlib.resources.files(SHIPPED_PACKAGE)))
        if folder.is_dir() and any(folder.glob("*.yaml")):
            return folder
    except (ModuleNotFoundError, TypeError):
        pass  # running from a checkout that is not installed: use the repo's folder
    return _REPO_TAXONOMIES if _REPO_TAXONOMIES.is_dir() else None


def _read_and_check(path: Path) -> tuple[bytes | None, LocatedYaml | None, list[Problem]]:
    raw, located, problems = read_located_yaml_file(path, str(path))
    if located is not None:
        problems = problems + DocumentChecker(located, str(path)).check()
        problems.sort(key=lambda problem: (problem.line or 0))
    return raw, located, problems


# --------------------------------------------------------------------------------------
# Building objects from a checked document
# --------------------------------------------------------------------------------------

def _build(document: dict[str, Any], *, path: Path | None, sha256: str) -> Taxonomy:
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
    )


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
    return document


def _class_in(probe: Probe, class_id: str, where: str) -> TaxonomyClass:
    for cls in probe.classes:
        if cls.id == class_id:
            return cls
    raise TaxonomyError(f"{where}: no class '{class_id}' in probe '{probe.id}'; "
                        f"classes: {', '.join(probe.class_ids())}")


# --------------------------------------------------------------------------------------
# Checks against a dataset and a model (run before the expensive part of an audit)
# --------------------------------------------------------------------------------------

def check_against_dataset(taxonomy: Taxonomy, attributes: dict[str, set[str]]) -> list[Problem]:
    """What the taxonomy asks of the dataset that the dataset lacks.

    ``attributes`` maps each dataset column to the values it holds. Errors: a target or
    slice column the dataset lacks; an attribute probe none of whose class ids occur in
    its target column (a vocabulary mismatch). Warnings: a class id the target never
    holds (no image can confirm it), a target value with no class (those images can
    never be classified correctly, which lowers their group's accuracy by construction).
    """
    located = _Locator(taxonomy)
    problems: list[Problem] = []
    available = ", ".join(sorted(attributes)) or "(none)"
    for probe_index, probe in enumerate(taxonomy.probes):
        probe_path = child_path("probes", probe_index)
        for slice_index, slice_ in enumerate(probe.slices):
            for position, column in enumerate(slice_):
                if column not in attributes:
                    field = child_path(probe_path, "slices") + f"[{slice_index}]" + \
                        (f"[{position}]" if len(slice_) > 1 else "")
                    problems.append(located.problem(field, f"slice column '{column}' is not in the dataset; "
                                                           f"its columns: {available}"))
        if probe.target is None:
            continue
        target_path = child_path(probe_path, "target")
        if probe.target not in attributes:
            problems.append(located.problem(target_path, f"target column '{probe.target}' is not in the dataset; "
                                                         f"its columns: {available}"))
            continue
        problems.extend(_target_vocabulary(probe, probe_path, attributes[probe.target], located))
    return problems


def _target_vocabulary(probe: Probe, probe_path: str, values: set[str], located: _Locator) -> list[Problem]:
    class_ids = probe.class_ids()
    values_shown = ", ".join(sorted(values))
    if values and not values.intersection(class_ids):
        return [located.problem(child_path(probe_path, "classes"),
                                f"no class id of probe '{probe.id}' occurs in column '{probe.target}' "
                                f"(its values: {values_shown}); class ids must be the dataset's values")]
    problems = []
    for class_index, class_id in enumerate(class_ids):
        if class_id not in values:
            problems.append(located.problem(
                child_path(child_path(child_path(probe_path, "classes"), class_index), "id"),
                f"class '{class_id}' never occurs in column '{probe.target}' (its values: {values_shown})",
                severity="warning"))
    for value in sorted(values - set(class_ids)):
        problems.append(located.problem(
            child_path(probe_path, "classes"),
            f"dataset value '{value}' of column '{probe.target}' has no class; its images can never be "
            "classified correctly", severity="warning"))
    return problems


def check_against_model(taxonomy: Taxonomy, count_tokens: Callable[[str], int], max_tokens: int) -> list[Problem]:
    """Prompts longer than the model's text context (they would be silently truncated).

    ``count_tokens`` must count the way the model's tokenizer does, special tokens included.
    """
    located = _Locator(taxonomy)
    problems: list[Problem] = []
    for probe_index, probe in enumerate(taxonomy.probes):
        for class_index, cls in enumerate(probe.classes):
            class_path = child_path(child_path(child_path("probes", probe_index), "classes"), class_index)
            for prompt_index, prompt in enumerate(taxonomy.prompts_for(probe, cls)):
                token_count = count_tokens(prompt)
                if token_count > max_tokens:
                    field = child_path(child_path(class_path, "prompts"), prompt_index) \
                        if cls.prompts is not None else class_path
                    problems.append(located.problem(
                        field, f"prompt {prompt!r} has {token_count} tokens; the model reads at most "
                               f"{max_tokens}, so it would be truncated"))
    return problems


class _Locator:
    """Lines for a taxonomy's fields, re-read from its file when the file is unchanged.

    Variants renumber classes, so only an unmodified taxonomy gets line numbers.
    """

    def __init__(self, taxonomy: Taxonomy) -> None:
        self.file = str(taxonomy.path) if taxonomy.path else taxonomy.name
        self.located: LocatedYaml | None = None
        if taxonomy.path is not None and taxonomy.variant is None:
            raw, located, _ = read_located_yaml_file(taxonomy.path, self.file)
            if raw is not None and hashlib.sha256(raw).hexdigest() == taxonomy.sha256:
                self.located = located

    def problem(self, field: str, message: str, *, severity: Literal["error", "warning"] = "error") -> Problem:
        line = self.located.line_of(field) if self.located is not None else None
        return Problem(self.file, line, field, message, severity)
