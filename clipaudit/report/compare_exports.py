"""compare.md and junit.xml, from a compare.json document alone.

- ``compare.md``: the verdict, the violations, then every check, for a pull-request comment
  or a CI log. Names go through the one Markdown escaper (:mod:`.markdown`); numbers are
  :mod:`clipaudit.format`'s (the cells of :func:`.compare_view.change_cells`, as in compare.html)
  and hold no markup.
- ``junit.xml``: one test case per rule x group (and per gap bound), ``<failure>`` for a
  violation, ``<skipped>`` for a small group, so CI systems list regressions as failed tests.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping, Sequence
from typing import Any

from clipaudit import format
from clipaudit.files import shown_location
from clipaudit.stats.multiple import CORRECTION_LABELS

from .compare_view import GAP_GROUP, change_cells, group_record
from .markdown import code_span, escape_markdown_cell

VIOLATION_COLUMNS = ("rule", "probe", "metric", "slice", "group", "baseline", "candidate", "change", "{ci}", "p",
                     "adj. p", "reason")
CHECK_COLUMNS = ("group", "n", "baseline", "candidate", "change", "{ci}", "p", "adj. p", "status")


def render_compare_markdown(document: Mapping[str, Any]) -> str:
    """compare.md: the verdict, the violations, then every check, for a pull-request comment or CI log."""
    settings, summary = document["settings"], document["summary"]
    verdict = "PASSED" if document["passed"] else "FAILED"
    lines = [f"## clipaudit compare: {verdict}", ""]
    lines.append(f"{summary['failed']} violation(s), {summary['passed']} check(s) passed, "
                 f"{summary['skipped']} skipped (groups under min_n = {settings['min_n']}). "
                 f"{CORRECTION_LABELS[settings['correction']]} across {settings['family_size']} test(s) "
                 f"at \u03b1 = {format.alpha(settings['alpha'])}.")
    lines.append("")
    for role in ("baseline", "candidate"):
        side = document[role]
        lines.append(f"- {role}: `{code_span(shown_location(side['path']))}` ({escape_markdown_cell(side['model'])}, "
                     f"{escape_markdown_cell(_shown(side['dataset'].get('spec')))})")
    lines.append(f"- pairing: {escape_markdown_cell(document['pairing']['reason'])}")
    lines.append(f"- rules: {escape_markdown_cell(settings['thresholds'] or settings['thresholds_description'] or '')}")
    for note in document["notes"]:
        lines.append(f"- note: {escape_markdown_cell(note)}")
    lines.append("")
    if document["violations"]:
        header = [column.format(ci=format.ci_label(settings["confidence"])) for column in VIOLATION_COLUMNS]
        lines += ["### Violations", "", _table_row(header), "|" + "---|" * len(header)]
        for violation in document["violations"]:
            cells = change_cells(violation, gap=violation["group"] == GAP_GROUP).as_tuple()
            names = [escape_markdown_cell(violation[key]) for key in ("rule", "probe", "metric", "slice", "group")]
            lines.append(_table_row([*names, *cells, escape_markdown_cell("; ".join(violation["reasons"]))]))
        lines.append("")
    lines += ["<details><summary>All checks</summary>", ""]
    for check in document["checks"]:
        lines += _check_lines(check, ci=format.ci_label(settings["confidence"]))
    lines += ["</details>", ""]
    return "\n".join(lines)


def _check_lines(check: Mapping[str, Any], *, ci: str) -> list[str]:
    check_header = [column.format(ci=ci) for column in CHECK_COLUMNS]
    mark = "pass" if check["passed"] else "FAIL"
    title = " ".join(escape_markdown_cell(check[key]) for key in ("probe", "metric"))
    lines = [f"#### {escape_markdown_cell(check['rule'])}: {title} by {escape_markdown_cell(check['slice'])} ({mark})",
             "", _table_row(check_header), "|" + "---|" * len(check_header)]
    for group in check["groups"]:
        n = group["n_pairs"] if group["n_pairs"] is not None else f"{group['baseline']['n']} / {group['candidate']['n']}"
        status = group["status"] + (f": {'; '.join(group['reasons'])}" if group["reasons"] else "")
        lines.append(_table_row([escape_markdown_cell(group["group"]), str(n),
                                 *change_cells(group_record(group)).as_tuple(), escape_markdown_cell(status)]))
    gap = check["gap"]
    if gap is not None:
        lines += ["", f"Gap across groups: {format.points_size(gap['baseline'])} \u2192 "
                      f"{format.points_size(gap['candidate'])} (bound {format.points_size(gap['max_gap'])}): "
                      f"{gap['status']}"]
    lines.append("")
    return lines


def _table_row(cells: Sequence[str]) -> str:
    """One Markdown table row of cells already made safe: names escaped, numbers formatted (no markup)."""
    return "| " + " | ".join(cells) + " |"


def render_junit(document: Mapping[str, Any]) -> str:
    """junit.xml: one test case per rule x group (and per gap bound), ``<failure>`` for violations.

    Names come from datasets and thresholds files; characters XML 1.0 cannot hold (ESC and other
    control characters) are written as visible escapes so the file stays well-formed.
    """
    cases: list[ElementTree.Element] = []
    texts = {(violation["rule"], violation["probe"], violation["metric"], violation["slice"], violation["group"]):
             violation["text"]
             for violation in document["violations"]}
    for check in document["checks"]:
        classname = xml_safe(f"{check['probe']}.{check['metric']}.{check['slice']}")
        entries = [(group["group"], group["status"], group["reasons"], group["notes"]) for group in check["groups"]]
        if check["gap"] is not None:
            entries.append((GAP_GROUP, check["gap"]["status"], check["gap"]["reasons"], []))
        for group_name, status, reasons, notes in entries:
            case = ElementTree.Element("testcase", classname=classname, name=xml_safe(f"{check['rule']} {group_name}"),
                                       time="0")
            if status == "fail":
                failure = ElementTree.SubElement(case, "failure", message=xml_safe("; ".join(reasons)),
                                                 type="regression")
                key = (check["rule"], check["probe"], check["metric"], check["slice"], group_name)
                failure.text = xml_safe(texts.get(key, "; ".join(reasons)))
            elif status == "skipped":
                ElementTree.SubElement(case, "skipped", message=xml_safe("; ".join(notes)))
            cases.append(case)
    failures = sum(1 for case in cases if case.find("failure") is not None)
    skipped = sum(1 for case in cases if case.find("skipped") is not None)
    counts = {"tests": str(len(cases)), "failures": str(failures), "errors": "0", "skipped": str(skipped)}
    root = ElementTree.Element("testsuites", name="clipaudit", **counts)
    suite = ElementTree.SubElement(root, "testsuite", name="clipaudit compare",
                                   timestamp=xml_safe(document["created_at"]), **counts)
    suite.extend(cases)
    ElementTree.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(root, encoding="unicode") + "\n"


# Everything outside XML 1.0's Char production: C0 controls but tab, newline and return; surrogates; U+FFFE/F.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text: object) -> str:
    """``text`` with each character XML cannot hold written as a visible escape (ESC -> ``\\x1b``)."""
    return _XML_INVALID.sub(_escape, str(text))


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


__all__ = ["render_compare_markdown", "render_junit"]


def _shown(spec: Any) -> Any:
    return shown_location(spec) if isinstance(spec, str) else spec
