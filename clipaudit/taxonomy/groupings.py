"""Coarser outcomes and coarser groups: a grouping maps values (class ids, dataset values) to groups.

Two places in a taxonomy use the same shape:

- a probe's ``outcome_groups`` score the probe again on coarser outcomes: DataComp's
  ``race_binary`` counts a race prediction right when prediction and truth fall in the same
  group (White, or any other race class), the metric ``accuracy_race_binary``;
- the taxonomy's ``attribute_groups`` add a coarser column that slices can use, e.g.
  ``race_binary`` (White / non-White) from ``race``.

A group lists its members, or is the ``rest`` group: every value no other group lists
(one rest group at most). A value in no group and with no rest group has no group (None).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from clipaudit.vocabulary import grouped_accuracy_metric


@dataclass(frozen=True)
class ValueGroup:
    """One coarse group: its id and the values it holds (``rest``: every value no other group holds)."""

    id: str
    members: tuple[str, ...] = ()
    rest: bool = False


@dataclass(frozen=True)
class Grouping:
    """Values -> coarse groups. ``attribute`` is the dataset column grouped (attribute groups only)."""

    id: str
    groups: tuple[ValueGroup, ...]
    attribute: str | None = None

    def group_ids(self) -> list[str]:
        return [group.id for group in self.groups]

    def group_of(self, value: Any) -> str | None:
        """The group holding ``value`` (None for a missing value, or one no group holds)."""
        if value is None or (isinstance(value, float) and pd.isna(value)):
            return None
        text = str(value)
        for group in self.groups:
            if text in group.members:
                return group.id
        return next((group.id for group in self.groups if group.rest), None)

    @property
    def metric(self) -> str:
        """The metric an outcome grouping adds to its probe: ``accuracy_<id>``."""
        return grouped_accuracy_metric(self.id)

    def to_document(self, member_key: str) -> dict[str, Any]:
        document: dict[str, Any] = {"id": self.id}
        if self.attribute is not None:
            document["attribute"] = self.attribute
        document["groups"] = [{"id": group.id, "rest": True} if group.rest else
                              {"id": group.id, member_key: list(group.members)} for group in self.groups]
        return document


def build_grouping(document: dict[str, Any], member_key: str) -> Grouping:
    """A grouping from a checked document; ``member_key`` is 'classes' or 'values'."""
    return Grouping(
        id=document["id"],
        attribute=document.get("attribute"),
        groups=tuple(ValueGroup(id=group["id"], members=tuple(group.get(member_key, ())),
                                rest=bool(group.get("rest", False)))
                     for group in document["groups"]))


def with_attribute_groups(frame: pd.DataFrame, groupings: Sequence[Grouping]) -> pd.DataFrame:
    """``frame`` with one more column per attribute grouping whose attribute it has (the group of each row).

    A column of that name already in the frame is replaced, so applying twice changes nothing.
    """
    usable = [grouping for grouping in groupings if grouping.attribute in frame.columns]
    if not usable:
        return frame
    frame = frame.copy()
    for grouping in usable:
        grouped = frame[grouping.attribute].map(grouping.group_of).astype(object)
        frame[grouping.id] = grouped.where(grouped.notna(), None)
    return frame
