"""Sweep specs: variants generated as combinations, for studies too large to write by hand.

A sweep spec is a YAML file with up to three axes; every combination of one choice per axis
becomes a variant of each swept taxonomy::

    templates:            # named template sets, each replacing the taxonomy's templates
      single: ["a photo of a {label}."]
      ensemble: ["a photo of a {label}.", "a cropped photo of a {label}."]
    class_sets:           # named class-set edits, with the keys a variant uses
      as_written: {}
      with_child: {add_classes: {denigration: [{id: child}]}}
    synonyms:             # per probe and class, other labels; choice i uses each class's i-th
      denigration:
        criminal: [offender, convict]

Generated variants are checked exactly as variants written in the taxonomy file would be.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clipaudit.errors import TaxonomyError
from clipaudit.located_yaml import child_path, read_located_yaml_file
from clipaudit.taxonomy.checks import DocumentChecker

SPEC_KEYS = {"description": False, "templates": False, "class_sets": False, "synonyms": False}
CLASS_SET_KEYS = {"add_classes": False, "remove_classes": False, "relabel": False, "set_prompts": False, "probe_templates": False}


@dataclass(frozen=True)
class SweepSpec:
    path: Path
    description: str = ""
    templates: dict[str, list[str]] = field(default_factory=dict)
    class_sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    synonyms: dict[str, dict[str, list[str]]] = field(default_factory=dict)


def shipped_sweep_specs() -> dict[str, Path]:
    """Sweep specs that ship with clipaudit, by name (file name without .yaml)."""
    from importlib import resources

    folder = resources.files("clipaudit.taxonomies.sweeps")
    return {entry.name.removesuffix(".yaml"): Path(str(entry)) for entry in folder.iterdir() if entry.name.endswith(".yaml")}


def resolve_sweep_spec_path(path_or_name: str | Path) -> Path:
    """A file path, or the name of a shipped spec (`harm_wording`)."""
    path = Path(path_or_name)
    if path.is_file():
        return path
    shipped = shipped_sweep_specs()
    name = str(path_or_name)
    if "/" not in name and not name.endswith((".yaml", ".yml")):
        if name in shipped:
            return shipped[name]
        raise TaxonomyError(f"no shipped sweep spec named {name!r}; shipped: {', '.join(sorted(shipped))}")
    raise TaxonomyError(f"{path}: no such sweep spec file")


def load_sweep_spec(path_or_name: str | Path) -> SweepSpec:
    """Read and check a sweep spec; TaxonomyError names the file, line and field of the first problem."""
    path = resolve_sweep_spec_path(path_or_name)
    _, located, problems = read_located_yaml_file(
        path, str(path), expected="a mapping with at least one of templates, class_sets, synonyms"
    )
    if located is not None and not problems:
        checker = DocumentChecker(located, str(path))
        spec = _checked_spec(checker, located.data, path)
        problems = checker.problems
    if problems:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise TaxonomyError(f"{problems[0]}{more}")
    if not (spec.templates or spec.class_sets or spec.synonyms):
        raise TaxonomyError(f"{path}: a sweep spec needs at least one of templates, class_sets, synonyms")
    return spec


def _checked_spec(checker: DocumentChecker, data: Any, path: Path) -> SweepSpec:
    document = checker.mapping(data if data is not None else {}, "", SPEC_KEYS, "a sweep spec") or {}
    templates = {}
    for name, value in _named(checker, document.get("templates"), "templates").items():
        checked = checker.templates(value, child_path("templates", name))
        if checked is not None:
            templates[name] = checked
    class_sets = {}
    for name, value in _named(checker, document.get("class_sets"), "class_sets").items():
        edits = checker.mapping(value if value is not None else {}, child_path("class_sets", name), CLASS_SET_KEYS, "a class set")
        if edits is not None:
            class_sets[name] = edits
    synonyms: dict[str, dict[str, list[str]]] = {}
    for probe_id, by_class in _named(checker, document.get("synonyms"), "synonyms").items():
        probe_path = child_path("synonyms", probe_id)
        if not isinstance(by_class, dict):
            checker.report(probe_path, "synonyms of a probe must map class ids to lists of labels")
            continue
        for class_id, labels in by_class.items():
            checked = checker.string_list(labels, child_path(probe_path, class_id), "synonyms")
            if checked is not None:
                synonyms.setdefault(probe_id, {})[class_id] = checked
    description = document.get("description") or ""
    return SweepSpec(path=path, description=str(description), templates=templates, class_sets=class_sets, synonyms=synonyms)


def _named(checker: DocumentChecker, value: Any, key: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not value:
        checker.report(key, f"{key} must be a non-empty mapping from names to choices")
        return {}
    for name in value:
        if not isinstance(name, str):
            checker.report(key, f"each name under {key} must be a string, got {name!r}")
            return {}
    return value


def generated_variant_documents(spec: SweepSpec) -> list[dict[str, Any]]:
    """One variant document per combination of the spec's axes (the all-default one excluded)."""
    template_choices = [None, *spec.templates] if spec.templates else [None]
    class_set_choices = [None, *spec.class_sets] if spec.class_sets else [None]
    longest = max((len(labels) for by_class in spec.synonyms.values() for labels in by_class.values()), default=0)
    synonym_choices = [None, *range(longest)]
    documents = []
    for template_name, class_set_name, synonym_index in itertools.product(template_choices, class_set_choices, synonym_choices):
        if template_name is None and class_set_name is None and synonym_index is None:
            continue
        document: dict[str, Any] = {}
        names, description = [], []
        if template_name is not None:
            document["templates"] = list(spec.templates[template_name])
            names.append(template_name)
            description.append(f"templates '{template_name}'")
        if class_set_name is not None:
            document.update({key: value for key, value in spec.class_sets[class_set_name].items()})
            names.append(class_set_name)
            description.append(f"class set '{class_set_name}'")
        if synonym_index is not None:
            relabel = _synonym_relabel(spec, synonym_index)
            merged = {probe: {**document.get("relabel", {}).get(probe, {}), **labels} for probe, labels in relabel.items()}
            document["relabel"] = {**document.get("relabel", {}), **merged}
            names.append(f"synonyms_{synonym_index + 1}")
            swaps = ", ".join(f"{cls} -> {label}" for labels in relabel.values() for cls, label in labels.items())
            description.append(f"synonyms {synonym_index + 1} ({swaps})")
        documents.append({"id": "__".join(names), "description": "; ".join(description) + f" (from {spec.path.name})", **document})
    return documents


def _synonym_relabel(spec: SweepSpec, index: int) -> dict[str, dict[str, str]]:
    """The i-th synonym of every class that has one; classes with fewer keep their label."""
    relabel: dict[str, dict[str, str]] = {}
    for probe_id, by_class in spec.synonyms.items():
        for class_id, labels in by_class.items():
            if index < len(labels):
                relabel.setdefault(probe_id, {})[class_id] = labels[index]
    return relabel
