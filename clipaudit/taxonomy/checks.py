"""The contract of a taxonomy document, checked field by field, every problem with its line.

Reading the YAML with line numbers is :mod:`clipaudit.located_yaml`; this module knows what a
taxonomy must hold.
"""
from __future__ import annotations

import re
from typing import Any

from clipaudit.located_yaml import LocatedYaml, Problem, child_path
from clipaudit.taxonomy.variants import apply_variant_edits

TAXONOMY_SHAPE = "a mapping with 'name' and 'probes'"

# --------------------------------------------------------------------------------------

# key -> required?
TOP_LEVEL_KEYS: dict[str, bool] = {
    "name": True, "description": False, "templates": False, "probes": True, "variants": False,
    "intended_use": False, "out_of_scope_use": False, "source": False,
}
PROBE_KEYS: dict[str, bool] = {
    "id": True, "kind": True, "target": False, "templates": False, "classes": True, "slices": False,
}
CLASS_KEYS: dict[str, bool] = {"id": True, "label": False, "category": False, "prompts": False}
VARIANT_KEYS: dict[str, bool] = {
    "id": True, "description": False, "templates": False, "probe_templates": False,
    "add_classes": False, "remove_classes": False, "relabel": False, "set_prompts": False,
}
VARIANT_EDITS = ("templates", "probe_templates", "add_classes", "remove_classes", "relabel", "set_prompts")
PROBE_KINDS = ("attribute", "harm")

PROBE_ID_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")
CATEGORY_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
PLACEHOLDER = "label"


def template_problem(template: str) -> str | None:
    """Why ``template`` cannot be filled with a label, or None when it can.

    The only field is ``{label}``; literal braces are written ``{{`` and ``}}``
    (Python's str.format rules, which is how templates are filled).
    """
    import string

    try:
        fields = [(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(template)
                  if name is not None]
    except ValueError as error:
        return f"unbalanced braces in template {template!r} ({error}); write literal braces as '{{{{' and '}}}}'"
    unknown = sorted({name for name, _, _ in fields if name != PLACEHOLDER})
    if unknown:
        shown = ", ".join("{" + name + "}" for name in unknown)
        return f"unknown placeholder {shown} in template {template!r}; the only placeholder is {{label}}"
    if any(spec or conversion for _, spec, conversion in fields):
        return f"template {template!r} formats {{label}}; write it plainly as {{label}}"
    if not fields:
        return f"template {template!r} has no {{label}}; every template must contain {{label}}"
    return None


def fill_template(template: str, label: str) -> str:
    """The prompt a template gives for a label (template already checked)."""
    return template.format(label=label)


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _suggestion(key: str, allowed: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(key, allowed, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


class DocumentChecker:
    """Collects every problem of a taxonomy document, each with its field path and line.

    Checks run in order structure -> values -> cross references; a part that is
    structurally broken is skipped by later checks so one mistake gives one message.
    """

    def __init__(self, located: LocatedYaml, file: str) -> None:
        self.located = located
        self.file = file
        self.problems: list[Problem] = []

    # ---- reporting and generic shapes ------------------------------------------------
    def report(self, path: str, message: str, *, line: int | None = None) -> None:
        where = line if line is not None else self.located.line_of(path)
        self.problems.append(Problem(self.file, where, path, message))

    def mapping(self, value: Any, path: str, keys: dict[str, bool], what: str) -> dict[str, Any] | None:
        """``value`` as a mapping with only ``keys``; reports unknown and missing keys."""
        if not isinstance(value, dict):
            self.report(path, f"{what} must be a mapping, got {_type_name(value)}")
            return None
        allowed = list(keys)
        for key in value:
            if key not in keys:
                self.report(child_path(path, key),
                            f"unknown key '{key}'{_suggestion(key, allowed)}; allowed keys: {', '.join(allowed)}")
        for key, required in keys.items():
            if required and key not in value:
                self.report(child_path(path, key), f"missing required key '{key}' in {what}")
        return {key: item for key, item in value.items() if key in keys}

    def string(self, value: Any, path: str, what: str) -> str | None:
        """``value`` as a non-empty string without surrounding spaces, else None (reported)."""
        if not isinstance(value, str):
            hint = "; quote it" if isinstance(value, (bool, int, float)) else ""
            self.report(path, f"{what} must be a string, got {_type_name(value)}{hint}")
            return None
        if not value.strip():
            self.report(path, f"{what} must not be empty")
            return None
        if value != value.strip():
            self.report(path, f"{what} {value!r} has leading or trailing spaces")
            return None
        return value

    def string_list(self, value: Any, path: str, what: str) -> list[str] | None:
        """A non-empty list of non-empty, distinct strings; None if any item is wrong."""
        if not isinstance(value, list):
            self.report(path, f"{what} must be a list of strings, got {_type_name(value)}")
            return None
        if not value:
            self.report(path, f"{what} must not be an empty list")
            return None
        items = [self.string(item, child_path(path, index), f"each of {what}") for index, item in enumerate(value)]
        if any(item is None for item in items):
            return None
        seen: set[str] = set()
        for index, item in enumerate(items):
            if item in seen:
                self.report(child_path(path, index), f"{item!r} is listed twice in {what}")
            seen.add(item)
        return [item for item in items if item is not None]

    def templates(self, value: Any, path: str) -> list[str] | None:
        templates = self.string_list(value, path, "templates")
        if templates is None:
            return None
        broken = False
        for index, template in enumerate(templates):
            problem = template_problem(template)
            if problem:
                self.report(child_path(path, index), problem)
                broken = True
        return None if broken else templates

    # ---- the document ---------------------------------------------------------------
    def check(self, *, with_variants: bool = True) -> list[Problem]:
        document = self.mapping(self.located.data, "", TOP_LEVEL_KEYS, "a taxonomy")
        if document is None:
            return self.problems
        name = self.string(document.get("name"), "name", "name") if "name" in document else None
        if name is not None and "+" in name:
            self.report("name", f"name {name!r} must not contain '+', which marks a variant (name+variant)")
        for key in ("description", "intended_use", "out_of_scope_use", "source"):
            if key in document and not isinstance(document[key], str):
                self.report(key, f"{key} must be a string, got {_type_name(document[key])}")
        top_templates = self.templates(document["templates"], "templates") if "templates" in document else None
        probes = self.probes(document.get("probes"), top_templates, "templates" in document)
        if with_variants and "variants" in document:
            self.variants(document["variants"], probes, clean_so_far=not self.problems)
        return self.problems

    def probes(self, value: Any, top_templates: list[str] | None, has_top_templates: bool) -> dict[str, dict]:
        """Checks every probe; returns the well-formed ones by id (for variant references)."""
        if value is None:
            return {}
        if not isinstance(value, list) or not value:
            self.report("probes", f"probes must be a non-empty list of probes, got {_type_name(value)}"
                        if not isinstance(value, list) else "probes must not be an empty list")
            return {}
        by_id: dict[str, dict] = {}
        for index, raw_probe in enumerate(value):
            path = child_path("probes", index)
            probe = self.probe(raw_probe, path, top_templates, has_top_templates)
            if probe is None or not isinstance(probe.get("id"), str):
                continue
            if probe["id"] in by_id:
                self.report(child_path(path, "id"), f"duplicate probe id '{probe['id']}'; probe ids must be unique")
                continue
            by_id[probe["id"]] = probe
        return by_id

    def probe(self, value: Any, path: str, top_templates: list[str] | None,
              has_top_templates: bool) -> dict | None:
        probe = self.mapping(value, path, PROBE_KEYS, "a probe")
        if probe is None:
            return None
        probe_id = self.string(probe["id"], child_path(path, "id"), "probe id") if "id" in probe else None
        if probe_id is not None and not PROBE_ID_PATTERN.match(probe_id):
            self.report(child_path(path, "id"),
                        f"probe id {probe_id!r} may hold only letters, digits, '_' and '-'")
        kind = probe.get("kind")
        if "kind" in probe and kind not in PROBE_KINDS:
            self.report(child_path(path, "kind"), f"kind must be 'attribute' or 'harm', got {kind!r}")
        self.target(probe, path, kind)
        probe_templates = self.templates(probe["templates"], child_path(path, "templates")) \
            if "templates" in probe else None
        classes = self.classes(probe.get("classes"), child_path(path, "classes"), kind) if "classes" in probe else None
        if "slices" in probe:
            self.slices(probe["slices"], child_path(path, "slices"))
        if classes is not None:
            templates = probe_templates if "templates" in probe else top_templates
            templates_declared = "templates" in probe or has_top_templates
            self.prompts(classes, path, templates, templates_declared)
        return probe

    def target(self, probe: dict, path: str, kind: Any) -> None:
        target_path = child_path(path, "target")
        if kind == "attribute" and "target" not in probe:
            self.report(target_path, "attribute probes need 'target', the dataset column with the true class")
        elif kind == "harm" and "target" in probe:
            self.report(target_path, "harm probes have no ground truth; remove 'target' (or use kind: attribute)")
        elif "target" in probe:
            self.string(probe["target"], target_path, "target")

    def classes(self, value: Any, path: str, kind: Any) -> list[dict] | None:
        """Checks the class list; returns it only if every class is well formed."""
        if not isinstance(value, list):
            self.report(path, f"classes must be a list of classes, got {_type_name(value)}")
            return None
        if len(value) < 2:
            self.report(path, f"a probe needs at least 2 classes to choose between, got {len(value)}")
        classes = [self.one_class(item, child_path(path, index), kind) for index, item in enumerate(value)]
        # Duplicates and categories are judged on the raw items, so a class with another
        # mistake still counts here and every problem is reported at once.
        raw_classes = [item for item in value if isinstance(item, dict)]
        seen: set[str] = set()
        for index, item in enumerate(value):
            class_id = item.get("id") if isinstance(item, dict) else None
            if isinstance(class_id, str):
                if class_id in seen:
                    self.report(child_path(child_path(path, index), "id"),
                                f"duplicate class id '{class_id}'; class ids must be unique within a probe")
                seen.add(class_id)
        if kind == "harm" and raw_classes and not any("category" in item for item in raw_classes):
            self.report(path, "a harm probe needs at least one class with a 'category' (e.g. crime, non_human); "
                              "otherwise no prediction counts as harm")
        if any(cls is None or "id" not in cls for cls in classes):
            return None
        return [cls for cls in classes if cls is not None]

    def one_class(self, value: Any, path: str, kind: Any) -> dict | None:
        cls = self.mapping(value, path, CLASS_KEYS, "a class")
        if cls is None:
            return None
        ok = True
        if "id" in cls:
            ok &= self.string(cls["id"], child_path(path, "id"), "class id") is not None
        if "label" in cls:
            ok &= self.string(cls["label"], child_path(path, "label"), "label") is not None
        if "category" in cls:
            category = self.string(cls["category"], child_path(path, "category"), "category")
            ok &= category is not None
            if category is not None and not CATEGORY_PATTERN.match(category):
                self.report(child_path(path, "category"),
                            f"category {category!r} must be lower-case letters, digits and '_' "
                            "(it names a metric, '<category>_rate')")
                ok = False
            if category is not None and kind == "attribute":
                self.report(child_path(path, "category"),
                            "categories only apply to harm probes; attribute probes are scored by accuracy")
                ok = False
        if "prompts" in cls:
            prompts = self.string_list(cls["prompts"], child_path(path, "prompts"), "prompts")
            ok &= prompts is not None
            for index, prompt in enumerate(prompts or []):
                if "{" + PLACEHOLDER + "}" in prompt:
                    self.report(child_path(child_path(path, "prompts"), index),
                                f"prompt {prompt!r} is used as written, so {{label}} is not filled in; "
                                "put it in 'templates' instead")
                    ok = False
        return cls if ok else None

    def prompts(self, classes: list[dict], probe_path: str, templates: list[str] | None,
                templates_declared: bool) -> None:
        """Every class must end up with prompts, and no two classes with the same ones."""
        needing_templates = [cls["id"] for cls in classes if "prompts" not in cls]
        if needing_templates and not templates_declared:
            self.report(probe_path, f"classes {', '.join(map(repr, needing_templates))} have no 'prompts', and "
                                    "neither this probe nor the taxonomy sets 'templates' to make them")
            return
        if needing_templates and templates is None:
            return  # the broken templates were reported already
        owner_of: dict[tuple[str, ...], str] = {}
        for index, cls in enumerate(classes):
            label = cls.get("label", cls["id"])
            prompts = tuple(cls["prompts"]) if "prompts" in cls \
                else tuple(fill_template(template, label) for template in templates or [])
            if prompts in owner_of:
                self.report(child_path(child_path(probe_path, "classes"), index),
                            f"class '{cls['id']}' has the same prompts as class '{owner_of[prompts]}' "
                            f"({prompts[0]!r}); the model cannot tell them apart")
            owner_of.setdefault(prompts, cls["id"])

    def slices(self, value: Any, path: str) -> None:
        if not isinstance(value, list):
            self.report(path, f"slices must be a list whose items are a column name or a list of column names, "
                              f"got {_type_name(value)}")
            return
        seen: set[tuple[str, ...]] = set()
        for index, item in enumerate(value):
            item_path = child_path(path, index)
            if isinstance(item, str):
                columns = [self.string(item, item_path, "slice")]
            elif isinstance(item, list) and item:
                columns = [self.string(column, child_path(item_path, position), "slice column")
                           for position, column in enumerate(item)]
            else:
                self.report(item_path, f"a slice must be a column name or a non-empty list of column names "
                                       f"(an intersection such as [race, gender]), got {_type_name(item)}")
                continue
            if any(column is None for column in columns):
                continue
            key = tuple(columns)
            if len(set(key)) != len(key):
                self.report(item_path, f"slice {list(key)} names a column twice")
            elif key in seen:
                self.report(item_path, f"slice {list(key)} is listed twice")
            seen.add(key)

    # ---- variants -------------------------------------------------------------------
    def variants(self, value: Any, probes: dict[str, dict], *, clean_so_far: bool) -> None:
        if not isinstance(value, list):
            self.report("variants", f"variants must be a list of variants, got {_type_name(value)}")
            return
        seen: set[str] = set()
        for index, raw_variant in enumerate(value):
            path = child_path("variants", index)
            before = len(self.problems)
            variant = self.variant(raw_variant, path, probes)
            if variant is None:
                continue
            variant_id = variant.get("id")
            if isinstance(variant_id, str):
                if variant_id in seen:
                    self.report(child_path(path, "id"), f"duplicate variant id '{variant_id}'")
                seen.add(variant_id)
            if clean_so_far and len(self.problems) == before:
                self.variant_result(variant, path)

    def variant(self, value: Any, path: str, probes: dict[str, dict]) -> dict | None:
        variant = self.mapping(value, path, VARIANT_KEYS, "a variant")
        if variant is None:
            return None
        if "id" in variant:
            variant_id = self.string(variant["id"], child_path(path, "id"), "variant id")
            if variant_id is not None and not PROBE_ID_PATTERN.match(variant_id):
                self.report(child_path(path, "id"),
                            f"variant id {variant_id!r} may hold only letters, digits, '_' and '-'")
        if "description" in variant and not isinstance(variant["description"], str):
            self.report(child_path(path, "description"),
                        f"description must be a string, got {_type_name(variant['description'])}")
        if not any(key in variant for key in VARIANT_EDITS):
            self.report(path, f"a variant must change something: give one of {', '.join(VARIANT_EDITS)}")
        if "templates" in variant:
            self.templates(variant["templates"], child_path(path, "templates"))
        removed = self.variant_per_probe(variant, path, probes, "remove_classes", self.removed_classes)
        added = self.variant_per_probe(variant, path, probes, "add_classes", self.added_classes)
        context = {"removed": removed, "added": added}
        self.variant_per_probe(variant, path, probes, "probe_templates",
                               lambda items, item_path, probe, _: self.templates(items, item_path))
        self.variant_per_probe(variant, path, probes, "relabel",
                               lambda items, item_path, probe, _: self.class_edits(
                                   items, item_path, probe, context, "relabel"))
        self.variant_per_probe(variant, path, probes, "set_prompts",
                               lambda items, item_path, probe, _: self.class_edits(
                                   items, item_path, probe, context, "set_prompts"))
        return variant

    def variant_per_probe(self, variant: dict, path: str, probes: dict[str, dict], key: str,
                          check_items: Any) -> dict[str, Any]:
        """Checks a ``{probe_id: ...}`` edit; returns what ``check_items`` gave per known probe."""
        if key not in variant:
            return {}
        edit_path = child_path(path, key)
        edits = variant[key]
        if not isinstance(edits, dict) or not edits:
            self.report(edit_path, f"{key} must be a non-empty mapping from probe id to its edits, "
                                   f"got {_type_name(edits)}")
            return {}
        results: dict[str, Any] = {}
        for probe_id, items in edits.items():
            item_path = child_path(edit_path, probe_id)
            if probe_id not in probes:
                self.report(item_path, f"unknown probe '{probe_id}'; probes: {', '.join(probes) or '(none)'}")
                continue
            results[probe_id] = check_items(items, item_path, probes[probe_id], key)
        return results

    def removed_classes(self, items: Any, path: str, probe: dict, _: str) -> set[str]:
        class_ids = self.string_list(items, path, "class ids to remove") or []
        known = _class_ids(probe)
        for index, class_id in enumerate(class_ids):
            if class_id not in known:
                self.report(child_path(path, index), _unknown_class(class_id, probe, known))
        return set(class_ids)

    def added_classes(self, items: Any, path: str, probe: dict, _: str) -> set[str]:
        if not isinstance(items, list) or not items:
            self.report(path, f"add_classes needs a non-empty list of classes, got {_type_name(items)}")
            return set()
        added = [self.one_class(item, child_path(path, index), probe.get("kind")) for index, item in enumerate(items)]
        return {cls["id"] for cls in added if cls is not None and isinstance(cls.get("id"), str)}

    def class_edits(self, items: Any, path: str, probe: dict, context: dict, key: str) -> None:
        """relabel / set_prompts: ``{class_id: new value}`` for classes that exist after removals and additions."""
        if not isinstance(items, dict) or not items:
            self.report(path, f"{key} needs a mapping from class id to its new value, got {_type_name(items)}")
            return
        probe_id = probe["id"]
        known = (_class_ids(probe) - context["removed"].get(probe_id, set())) | context["added"].get(probe_id, set())
        explicit = {cls["id"] for cls in probe["classes"] if isinstance(cls, dict) and "prompts" in cls}
        for class_id, new_value in items.items():
            item_path = child_path(path, class_id)
            if class_id not in known:
                self.report(item_path, _unknown_class(class_id, probe, known))
            elif key == "relabel":
                if self.string(new_value, item_path, "new label") and class_id in explicit:
                    self.report(item_path, f"class '{class_id}' has explicit prompts, so a new label changes no "
                                           "prompt; use set_prompts")
            else:
                prompts = self.string_list(new_value, item_path, "prompts")
                for index, prompt in enumerate(prompts or []):
                    if "{" + PLACEHOLDER + "}" in prompt:
                        self.report(child_path(item_path, index),
                                    f"prompt {prompt!r} is used as written, so {{label}} is not filled in")

    def variant_result(self, variant: dict, path: str) -> None:
        """A variant whose edits look right must also give a valid taxonomy (>= 2 classes, ...)."""
        derived = apply_variant_edits(self.located.data, variant)
        result_problems = DocumentChecker(LocatedYaml(derived), self.file).check(with_variants=False)
        for problem in result_problems:
            self.report(path, f"applying variant '{variant['id']}' breaks the taxonomy: "
                              f"{problem.field}: {problem.message}")


def _class_ids(probe: dict) -> set[str]:
    classes = probe.get("classes")
    if not isinstance(classes, list):
        return set()
    return {cls["id"] for cls in classes if isinstance(cls, dict) and isinstance(cls.get("id"), str)}


def _unknown_class(class_id: str, probe: dict, known: set[str]) -> str:
    return f"unknown class '{class_id}' in probe '{probe['id']}'; its classes: {', '.join(sorted(known))}"
