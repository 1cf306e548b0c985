"""The checks of a taxonomy's variants: every edit names what exists, and the result is a valid taxonomy.

A mixin of :class:`~clipaudit.taxonomy.checks.DocumentChecker`, which supplies ``report``,
``mapping``, ``string``, ``string_list``, ``templates``, ``one_class``, ``located`` and ``file``.
"""
from __future__ import annotations

from typing import Any

from clipaudit.located_yaml import LocatedYaml, child_path
from clipaudit.taxonomy.templates import PLACEHOLDER
from clipaudit.taxonomy.variants import apply_variant_edits
from clipaudit.taxonomy.keys import (
    PROBE_ID_PATTERN,
    VARIANT_EDITS,
    VARIANT_KEYS,
    class_ids_of,
    type_name,
    unknown_class,
)


class VariantChecks:
    def variants(self, value: Any, probes: dict[str, dict], *, clean_so_far: bool) -> None:
        if not isinstance(value, list):
            self.report("variants", f"variants must be a list of variants, got {type_name(value)}")
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
                        f"description must be a string, got {type_name(variant['description'])}")
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
                                   f"got {type_name(edits)}")
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
        known = class_ids_of(probe)
        for index, class_id in enumerate(class_ids):
            if class_id not in known:
                self.report(child_path(path, index), unknown_class(class_id, probe, known))
        return set(class_ids)

    def added_classes(self, items: Any, path: str, probe: dict, _: str) -> set[str]:
        if not isinstance(items, list) or not items:
            self.report(path, f"add_classes needs a non-empty list of classes, got {type_name(items)}")
            return set()
        added = [self.one_class(item, child_path(path, index), probe.get("kind")) for index, item in enumerate(items)]
        return {cls["id"] for cls in added if cls is not None and isinstance(cls.get("id"), str)}

    def class_edits(self, items: Any, path: str, probe: dict, context: dict, key: str) -> None:
        """relabel / set_prompts: ``{class_id: new value}`` for classes that exist after removals and additions."""
        if not isinstance(items, dict) or not items:
            self.report(path, f"{key} needs a mapping from class id to its new value, got {type_name(items)}")
            return
        probe_id = probe["id"]
        known = (class_ids_of(probe) - context["removed"].get(probe_id, set())) | context["added"].get(probe_id, set())
        explicit = {cls["id"] for cls in probe["classes"] if isinstance(cls, dict) and "prompts" in cls}
        for class_id, new_value in items.items():
            item_path = child_path(path, class_id)
            if class_id not in known:
                self.report(item_path, unknown_class(class_id, probe, known))
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
        result_problems = type(self)(LocatedYaml(derived), self.file).check(with_variants=False)
        for problem in result_problems:
            self.report(path, f"applying variant '{variant['id']}' breaks the taxonomy: "
                              f"{problem.field}: {problem.message}")
