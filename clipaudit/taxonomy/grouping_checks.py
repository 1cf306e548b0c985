"""The checks of a taxonomy's groupings (``outcome_groups``, ``attribute_groups``) and ``published_tables``.

A mixin of :class:`~clipaudit.taxonomy.checks.DocumentChecker`, which supplies ``report``,
``mapping``, ``string``, ``string_list``, ``located`` and ``file``. The shape is
:mod:`clipaudit.taxonomy.groupings`.
"""
from __future__ import annotations

from typing import Any

from clipaudit.located_yaml import child_path
from clipaudit.taxonomy.keys import (
    ATTRIBUTE_GROUPING_KEYS,
    CATEGORY_PATTERN,
    GROUPING_KEYS,
    PUBLISHED_LAYOUTS,
    PUBLISHED_TABLES_KEYS,
    class_ids_of,
    type_name,
    unknown_class,
)

#: What DataComp's tables read (eval_utils/fairness_eval.py, FF_PRED_LABELS and FairFaceEvaluator).
DATACOMP_NEEDS = "probes race, gender and age (attribute) and toxic (harm, categories crime and non_human), " \
                 "an outcome grouping race_binary of probe race and an attribute grouping race_binary of race"


class GroupingChecks:
    def outcome_groups(self, value: Any, path: str, probe: dict, kind: Any) -> None:
        """A probe's coarser outcomes: groups of its class ids (attribute probes only)."""
        if kind == "harm":
            self.report(path, "outcome_groups apply to attribute probes; a harm probe groups its classes "
                              "with 'category'")
            return
        self.groupings(value, path, GROUPING_KEYS, "classes", class_ids_of(probe), probe)

    def attribute_groups(self, value: Any) -> None:
        """The taxonomy's coarser dataset columns: groups of an attribute's values."""
        self.groupings(value, "attribute_groups", ATTRIBUTE_GROUPING_KEYS, "values", None, None)

    def groupings(self, value: Any, path: str, keys: dict[str, bool], member_key: str,
                  known: set[str] | None, probe: dict | None) -> None:
        if not isinstance(value, list) or not value:
            self.report(path, f"must be a non-empty list of groupings (id, groups), got {type_name(value)}")
            return
        seen: set[str] = set()
        for index, raw in enumerate(value):
            item_path = child_path(path, index)
            grouping = self.mapping(raw, item_path, keys, "a grouping")
            if grouping is None:
                continue
            grouping_id = self.string(grouping["id"], child_path(item_path, "id"), "grouping id") \
                if "id" in grouping else None
            if grouping_id is not None:
                if not CATEGORY_PATTERN.match(grouping_id):
                    self.report(child_path(item_path, "id"),
                                f"grouping id {grouping_id!r} must be lower-case letters, digits and '_' "
                                "(it names a metric or a column)")
                elif grouping_id in seen:
                    self.report(child_path(item_path, "id"), f"duplicate grouping id '{grouping_id}'")
                seen.add(grouping_id)
            if "attribute" in grouping:
                attribute = self.string(grouping["attribute"], child_path(item_path, "attribute"), "attribute")
                if attribute is not None and attribute == grouping_id:
                    self.report(child_path(item_path, "id"),
                                f"grouping id '{grouping_id}' names a new column; it must differ from its attribute")
            if "groups" in grouping:
                self.value_groups(grouping["groups"], child_path(item_path, "groups"), member_key, known, probe)

    def value_groups(self, value: Any, path: str, member_key: str, known: set[str] | None,
                     probe: dict | None) -> None:
        if not isinstance(value, list) or len(value) < 2:
            self.report(path, f"groups must be a list of at least 2 groups, got "
                              f"{type_name(value) if not isinstance(value, list) else f'{len(value)}'}")
            return
        owner: dict[str, str] = {}
        group_ids: set[str] = set()
        rest_groups = 0
        for index, raw in enumerate(value):
            item_path = child_path(path, index)
            group = self.mapping(raw, item_path, {"id": True, member_key: False, "rest": False}, "a group")
            if group is None:
                continue
            group_id = self.string(group["id"], child_path(item_path, "id"), "group id") if "id" in group else None
            if group_id is not None:
                if group_id in group_ids:
                    self.report(child_path(item_path, "id"), f"duplicate group id '{group_id}'")
                group_ids.add(group_id)
            if ("rest" in group) == (member_key in group):
                self.report(item_path, f"a group lists its '{member_key}' or is 'rest: true' (every other value), "
                                       "exactly one of the two")
                continue
            if "rest" in group:
                if group["rest"] is not True:
                    self.report(child_path(item_path, "rest"), f"rest must be true, got {type_name(group['rest'])}")
                rest_groups += 1
                if rest_groups == 2:
                    self.report(child_path(item_path, "rest"), "only one group can be the rest group")
                continue
            members = self.string_list(group[member_key], child_path(item_path, member_key), member_key)
            for position, member in enumerate(members or []):
                member_path = child_path(child_path(item_path, member_key), position)
                if known is not None and probe is not None and member not in known:
                    self.report(member_path, unknown_class(member, probe, known))
                elif member in owner:
                    self.report(member_path, f"'{member}' is already in group '{owner[member]}'; "
                                             "a value belongs to one group")
                owner.setdefault(member, str(group_id))
        if known is not None and rest_groups == 0:
            missing = sorted(known - set(owner))
            if missing:
                self.report(path, f"classes {', '.join(map(repr, missing))} are in no group; list them or add "
                                  "a group with 'rest: true'")

    def published_tables(self, value: Any, document: dict) -> None:
        """Which published tables to reproduce, and whether the taxonomy has what they read."""
        tables = self.mapping(value, "published_tables", PUBLISHED_TABLES_KEYS, "published_tables")
        if tables is None:
            return
        if "race_order" in tables:
            self.string_list(tables["race_order"], "published_tables.race_order", "race_order")
        layout = tables.get("layout")
        if "layout" in tables and layout not in PUBLISHED_LAYOUTS:
            self.report("published_tables.layout",
                        f"unknown layout {layout!r}; layouts: {', '.join(PUBLISHED_LAYOUTS)}")
            return
        if layout == "datacomp" and not _has_datacomp_parts(document):
            self.report("published_tables.layout", f"DataComp's tables need {DATACOMP_NEEDS}")


def _has_datacomp_parts(document: dict) -> bool:
    probes = {probe.get("id"): probe for probe in document.get("probes") or [] if isinstance(probe, dict)}
    kinds_ok = all(probes.get(probe_id, {}).get("kind") == "attribute" for probe_id in ("race", "gender", "age")) \
        and probes.get("toxic", {}).get("kind") == "harm"
    if not kinds_ok:
        return False
    categories = {cls.get("category") for cls in probes["toxic"].get("classes") or [] if isinstance(cls, dict)}
    outcome_ids = {item.get("id") for item in probes["race"].get("outcome_groups") or [] if isinstance(item, dict)}
    attribute_groups = {(item.get("id"), item.get("attribute"))
                        for item in document.get("attribute_groups") or [] if isinstance(item, dict)}
    return {"crime", "non_human"} <= categories and "race_binary" in outcome_ids \
        and ("race_binary", "race") in attribute_groups
