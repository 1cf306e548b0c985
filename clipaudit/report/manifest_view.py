"""The manifest as the report lists it: nested keys as dotted terms, values as text."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clipaudit import format
from clipaudit.files import shown_location

from .view_model import ManifestEntry


def flatten_manifest(node: Mapping[str, Any]) -> tuple[ManifestEntry, ...]:
    """Nested manifest dict -> dotted terms, in the manifest's own order."""
    return tuple(_flatten(node, ""))


def _flatten(node: Any, prefix: str) -> list[ManifestEntry]:
    if isinstance(node, Mapping) and (not prefix or node):
        entries: list[ManifestEntry] = []
        for key, value in node.items():
            entries.extend(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return entries
    in_timings = prefix.startswith("timings.")
    return [ManifestEntry(term=prefix, values=_values(node, in_timings=in_timings))]


def _values(value: Any, *, in_timings: bool) -> tuple[str, ...]:
    if isinstance(value, list):
        if not value:
            return ("none",)
        return tuple(_scalar(item, in_timings=in_timings) for item in value)
    return (_scalar(value, in_timings=in_timings),)


def _scalar(value: Any, *, in_timings: bool) -> str:
    if value is None:
        return format.NOT_AVAILABLE
    if isinstance(value, bool):
        return format.yes_no(value)
    if isinstance(value, (int, float)) and in_timings:
        return format.seconds(value)
    if isinstance(value, float):
        return format.number(value)
    if isinstance(value, Mapping):
        if not value:
            return "none"
        return ", ".join(f"{key}: {_scalar(item, in_timings=False)}" for key, item in value.items())
    return shown_location(str(value))


def skipped_image_lines(dataset: Mapping[str, Any]) -> tuple[str, ...]:
    """'val/17.jpg (unreadable)' for each image the audit skipped (manifest.dataset.skipped_images)."""
    return tuple(f"{item['image_id']} ({item['reason']})" for item in dataset.get("skipped_images") or ())
