"""Element ids for the report: fixed section anchors, and unique slugs for probes, slices and tables."""
from __future__ import annotations

import re
from collections.abc import Sequence

# Fixed section anchors, in document order; probe anchors are prefixed so they never collide.
# The headings follow "Model Cards for Model Reporting" (Mitchell et al. 2019) as the CLIP
# model cards use them, with the findings first and the protocol and manifest added.
SECTION_ANCHORS: dict[str, str] = {
    "summary-of-findings": "Summary of findings",
    "model-details": "Model details",
    "intended-use": "Intended use",
    "factors": "Factors",
    "metrics": "Metrics",
    "evaluation-data": "Evaluation data",
    "protocol": "Protocol",
    "quantitative-analyses": "Quantitative analyses",
    "ethical-considerations": "Ethical considerations",
    "caveats": "Caveats and recommendations",
    "manifest": "Manifest",
}


class AnchorRegistry:
    """Hands out unique, URL-safe element ids, deterministically in call order."""

    def __init__(self, reserved: Sequence[str] = ()) -> None:
        self._taken: set[str] = set(reserved)

    def allocate(self, name: str, *, parent: str | None = None) -> str:
        """'race x gender' under 'probe-gender' -> 'probe-gender--race-x-gender' (suffixed if taken)."""
        slug = f"{parent}--{slugify(name)}" if parent else slugify(name)
        candidate, counter = slug, 2
        while candidate in self._taken:
            candidate, counter = f"{slug}-{counter}", counter + 1
        self._taken.add(candidate)
        return candidate


def slugify(text: str) -> str:
    """Assumes nothing about ``text``; returns [a-z0-9-]+ (a placeholder when nothing is left)."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug or "x"
