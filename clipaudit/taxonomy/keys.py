"""The keys and value patterns a taxonomy file may use, and the words its checks share."""
from __future__ import annotations

import re
from typing import Any

# key -> required?
TOP_LEVEL_KEYS: dict[str, bool] = {
    "name": True, "description": False, "templates": False, "probes": True, "variants": False,
    "intended_use": False, "out_of_scope_use": False, "source": False,
    "attribute_groups": False, "published_tables": False,
}
PROBE_KEYS: dict[str, bool] = {
    "id": True, "kind": True, "target": False, "templates": False, "classes": True, "slices": False,
    "outcome_groups": False,
}
GROUPING_KEYS: dict[str, bool] = {"id": True, "groups": True}
ATTRIBUTE_GROUPING_KEYS: dict[str, bool] = {"id": True, "attribute": True, "groups": True}
PUBLISHED_TABLES_KEYS: dict[str, bool] = {"layout": True, "race_order": True}
#: Layouts of published tables clipaudit reproduces (see clipaudit.stats.published_tables).
PUBLISHED_LAYOUTS = ("datacomp",)
CLASS_KEYS: dict[str, bool] = {"id": True, "label": False, "category": False, "prompts": False}
VARIANT_KEYS: dict[str, bool] = {
    "id": True, "description": False, "templates": False, "probe_templates": False,
    "add_classes": False, "remove_classes": False, "relabel": False, "set_prompts": False,
}
VARIANT_EDITS = ("templates", "probe_templates", "add_classes", "remove_classes", "relabel", "set_prompts")
PROBE_KINDS = ("attribute", "harm")

PROBE_ID_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")
CATEGORY_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")


def type_name(value: Any) -> str:
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


def suggestion(key: str, allowed: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(key, allowed, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _spelling(text: str) -> str:
    """Case, spaces, underscores and punctuation collapsed: 'Latino Hispanic' ~ 'Latino_Hispanic'."""
    return re.sub(r"[\W_]+", "", text.casefold())


def closest_id(value: str, ids: list[str]) -> str | None:
    """The id ``value`` most likely means (same letters and digits, else the nearest spelling), or None."""
    import difflib

    by_spelling = {_spelling(item): item for item in ids}
    if _spelling(value) in by_spelling:
        return by_spelling[_spelling(value)]
    close = difflib.get_close_matches(_spelling(value), list(by_spelling), n=1, cutoff=0.6)
    return by_spelling[close[0]] if close else None


def class_ids_of(probe: dict) -> set[str]:
    classes = probe.get("classes")
    if not isinstance(classes, list):
        return set()
    return {cls["id"] for cls in classes if isinstance(cls, dict) and isinstance(cls.get("id"), str)}


def unknown_class(class_id: str, probe: dict, known: set[str]) -> str:
    return f"unknown class '{class_id}' in probe '{probe['id']}'; its classes: {', '.join(sorted(known))}"
