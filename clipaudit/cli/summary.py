"""What the terminal shows when a run ends: what to read first, the key findings as a table, the files.

Alerts (labels that match no class, allowed on purpose; no test could run) come first, because a
reader who stops at the first lines must not miss them. Numbers are formatted by
:mod:`clipaudit.format` and every cell is made inert when :func:`~clipaudit.cli.terminal.say` prints it.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from clipaudit import format
from clipaudit.vocabulary import metric_words

KEY_FINDINGS_SHOWN = 5
COLUMNS = ("", "probe", "slice", "group", "metric", "rate", "reference", "difference", "adj. p")
MAX_CELL = 28  # a long group or probe name is cut, so the table stays one line per finding


def alert_lines(results: dict) -> list[str]:
    return [f"clipaudit: read first: {alert}" for alert in results.get("manifest", {}).get("alerts") or []]


def findings_table(findings: Sequence[dict], *, shown: int = KEY_FINDINGS_SHOWN) -> list[str]:
    """The first ``shown`` significant findings (most severe first, as results.json orders them), aligned."""
    significant = [finding for finding in findings if finding.get("significant")]
    if not significant:
        return []
    rows = [COLUMNS] + [_row(finding) for finding in significant[:shown]]
    widths = [max(len(row[column]) for row in rows) for column in range(len(COLUMNS))]
    numeric = {5, 6, 7, 8}
    lines = ["  " + "  ".join(cell.rjust(width) if column in numeric else cell.ljust(width)
                              for column, (cell, width) in enumerate(zip(row, widths))).rstrip()
             for row in rows]
    if len(significant) > shown:
        lines.append(f"  ... and {len(significant) - shown} more in report.html")
    return lines


def _row(finding: dict) -> tuple[str, ...]:
    worse = finding.get("worse")
    flag = "worse" if worse is True else "better" if worse is False else ""
    return (flag, _cut(finding["probe"]), _cut(finding["slice"]), _cut(finding["group"]),
            metric_words(finding["metric"]), format.percent(finding["value"]),
            format.percent(finding["reference_value"]), format.points(finding["difference"]),
            format.p_value(finding["p_adjusted"]))


def _cut(text: object) -> str:
    text = str(text)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "\u2026"


def written_lines(headline: str, written: Sequence[Path]) -> list[str]:
    return [headline, *(f"  {path}" for path in written)]
