"""The contract of a taxonomy document, checked field by field, every problem with its line.

Reading the YAML with line numbers is :mod:`clipaudit.located_yaml`; this module knows what a
taxonomy must hold.
"""
from __future__ import annotations

from typing import Any

from clipaudit.located_yaml import LocatedYaml, Problem, child_path
from clipaudit.taxonomy.keys import (
    CATEGORY_PATTERN,
    CLASS_KEYS,
    PROBE_ID_PATTERN,
    PROBE_KEYS,
    PROBE_KINDS,
    TOP_LEVEL_KEYS,
    suggestion,
    type_name,
)
from clipaudit.taxonomy.grouping_checks import GroupingChecks
from clipaudit.taxonomy.templates import PLACEHOLDER, fill_template, template_problem
from clipaudit.taxonomy.variant_checks import VariantChecks

TAXONOMY_SHAPE = "a mapping with 'name' and 'probes'"

class DocumentChecker(VariantChecks, GroupingChecks):
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
            self.report(path, f"{what} must be a mapping, got {type_name(value)}")
            return None
        allowed = list(keys)
        for key in value:
            if key not in keys:
                self.report(child_path(path, key),
                            f"unknown key '{key}'{suggestion(key, allowed)}; allowed keys: {', '.join(allowed)}")
        for key, required in keys.items():
            if required and key not in value:
                self.report(child_path(path, key), f"missing required key '{key}' in {what}")
        return {key: item for key, item in value.items() if key in keys}

    def string(self, value: Any, path: str, what: str) -> str | None:
        """``value`` as a non-empty string without surrounding spaces, else None (reported)."""
        if not isinstance(value, str):
            hint = "; quote it" if isinstance(value, (bool, int, float)) else ""
            self.report(path, f"{what} must be a string, got {type_name(value)}{hint}")
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
            self.report(path, f"{what} must be a list of strings, got {type_name(value)}")
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
                self.report(key, f"{key} must be a string, got {type_name(document[key])}")
        top_templates = self.templates(document["templates"], "templates") if "templates" in document else None
        probes = self.probes(document.get("probes"), top_templates, "templates" in document)
        if "attribute_groups" in document:
            self.attribute_groups(document["attribute_groups"])
        if "published_tables" in document:
            self.published_tables(document["published_tables"], document)
        if with_variants and "variants" in document:
            self.variants(document["variants"], probes, clean_so_far=not self.problems)
        return self.problems

    def probes(self, value: Any, top_templates: list[str] | None, has_top_templates: bool) -> dict[str, dict]:
        """Checks every probe; returns the well-formed ones by id (for variant references)."""
        if value is None:
            return {}
        if not isinstance(value, list) or not value:
            self.report("probes", f"probes must be a non-empty list of probes, got {type_name(value)}"
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
        if "outcome_groups" in probe:
            self.outcome_groups(probe["outcome_groups"], child_path(path, "outcome_groups"), probe, kind)
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
            self.report(path, f"classes must be a list of classes, got {type_name(value)}")
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
                              f"got {type_name(value)}")
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
                                       f"(an intersection such as [race, gender]), got {type_name(item)}")
                continue
            if any(column is None for column in columns):
                continue
            key = tuple(columns)
            if len(set(key)) != len(key):
                self.report(item_path, f"slice {list(key)} names a column twice")
            elif key in seen:
                self.report(item_path, f"slice {list(key)} is listed twice")
            seen.add(key)
