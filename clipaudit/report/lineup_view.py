"""The several-models page (models.html) from a lineup document (:mod:`clipaudit.lineup`).

First screen: a verdict (which model has the smallest gap most often, and how sure), and a
scorecard of probe x slice on each probe's headline metric: every model's gap with its interval,
its rank with a rank interval and the share of bootstrap resamples it ranked first. Below, one
folded table per probe x slice x metric: each model's group rates and each model against the first.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clipaudit import format

from .templating import environment

LINEUP_TEMPLATE = "models.html.j2"


@dataclass(frozen=True)
class LineupView:
    title: str
    models: Sequence[Mapping[str, Any]]
    verdict: str
    headline: Sequence[Mapping[str, Any]]  # the first metric's table of every probe x slice
    tables: Sequence[Mapping[str, Any]]
    document: Mapping[str, Any]


def build_lineup_view(lineup: Mapping[str, Any]) -> LineupView:
    tables = lineup["tables"]
    seen: set[tuple[str, str]] = set()
    headline = []
    for table in tables:
        if (table["probe"], table["slice"]) not in seen:
            seen.add((table["probe"], table["slice"]))
            headline.append(table)
    return LineupView(title=f"Models compared: {lineup['taxonomy']}", models=lineup["models"],
                      verdict=lineup_verdict(lineup["models"], headline, lineup["settings"]["confidence"]),
                      headline=headline, tables=tables, document=lineup)


def lineup_verdict(models: Sequence[Mapping[str, Any]], headline: Sequence[Mapping[str, Any]],
                   confidence: float) -> str:
    """Which model has the smallest gap in the most probe x slice rows, and in how many of them that is
    clear (its rank interval is 1 to 1: first in at least the interval's share of resamples)."""
    first = [0] * len(models)
    clear = [0] * len(models)
    for table in headline:
        for index, gap in enumerate(table["gaps"]):
            if gap["rank"] == 1:
                first[index] += 1
                clear[index] += gap["rank_high"] == 1
    best = max(range(len(models)), key=lambda index: (first[index], clear[index]))
    return (f"{models[best]['label']} has the smallest gap between groups in {first[best]} of the "
            f"{len(headline)} probe \u00d7 slice comparisons, clearly (its {format.confidence(confidence)} rank "
            f"interval is first only) in {clear[best]}; "
            + "; ".join(f"{model['label']}: smallest in {first[i]}" for i, model in enumerate(models) if i != best)
            + ".")


def render_lineup_html(lineup: Mapping[str, Any]) -> str:
    """models.html: self-contained, no script, every string autoescaped."""
    return environment().get_template(LINEUP_TEMPLATE).render(view=build_lineup_view(lineup))
