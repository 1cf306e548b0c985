"""Variants: named edits of a taxonomy document (add or remove classes, relabel, other templates)."""
from __future__ import annotations

from typing import Any


def apply_variant_edits(document: dict, variant: dict) -> dict:
    """A copy of ``document`` (without its variants) with ``variant``'s edits applied.

    Order: templates, probe_templates, remove_classes, add_classes, relabel, set_prompts,
    so a variant may relabel or set prompts of a class it adds. References to unknown
    probes or classes are skipped here; the checker reports them.
    """
    import copy

    derived = {key: copy.deepcopy(value) for key, value in document.items() if key != "variants"}
    if "templates" in variant:
        derived["templates"] = list(variant["templates"])
    probes = {probe["id"]: probe for probe in derived.get("probes", [])
              if isinstance(probe, dict) and isinstance(probe.get("id"), str)}

    def edits(key: str) -> list[tuple[dict, Any]]:
        return [(probes[probe_id], items) for probe_id, items in (variant.get(key) or {}).items()
                if probe_id in probes]

    for probe, templates in edits("probe_templates"):
        probe["templates"] = list(templates)
    for probe, class_ids in edits("remove_classes"):
        probe["classes"] = [cls for cls in probe["classes"] if cls.get("id") not in set(class_ids)]
    for probe, new_classes in edits("add_classes"):
        probe["classes"] = list(probe["classes"]) + copy.deepcopy(list(new_classes))
    for probe, labels in edits("relabel"):
        for cls in probe["classes"]:
            if cls.get("id") in labels:
                cls["label"] = labels[cls["id"]]
    for probe, prompts in edits("set_prompts"):
        for cls in probe["classes"]:
            if cls.get("id") in prompts:
                cls["prompts"] = list(prompts[cls["id"]])
    return derived
