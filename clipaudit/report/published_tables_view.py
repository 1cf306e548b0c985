"""Published tables, laid out as their papers print them, each value with clipaudit's interval.

- **DataComp tables** (Gadre et al. 2023, ``eval_utils/fairness_tables.py``): results.json's
  ``published_tables.datacomp``, its Tables 3+4, 5 and 6 under DataComp's metric keys, and the
  ``*_wg`` values with DataComp's definition (the lowest group, no minimum group size).
- **CLIP paper tables** (Radford et al. 2021, section 7.1, Tables 3-7): the audit's own group
  rates (``probes[].slices``) laid out as the paper's tables: gender, race and age accuracy by
  race (Tables 3-4, White and non-White where a race_binary slice exists), gender accuracy by
  race and gender (Table 5), crime-related and non-human rates by race (Table 6) and by gender
  and age (Table 7). The paper's with-'child' column comes from a sweep (``with_child``
  variant), whose report shows each group's change.

Views only: every number is results.json's, formatted by :mod:`clipaudit.format`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clipaudit import format
from clipaudit.vocabulary import ACCURACY

#: The papers' words for the two harm categories (CLIP Tables 6-7, DataComp Table 6).
HARM_WORDS = {"crime_rate": "crime-related", "non_human_rate": "non-human"}


@dataclass(frozen=True)
class Cell:
    value: str
    interval: str
    n: str
    key: str | None = None           # DataComp's metric key, where the value is one


@dataclass(frozen=True)
class Row:
    label: str
    cells: tuple[Cell, ...]


@dataclass(frozen=True)
class Table:
    id: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class PublishedTables:
    datacomp: tuple[Table, ...]
    datacomp_lowest: tuple[tuple[str, str, str], ...]     # (key, words, value and interval)
    datacomp_source: str | None
    clip: tuple[Table, ...]

    @property
    def any(self) -> bool:
        return bool(self.datacomp or self.clip)


def build_published_tables(results: Mapping[str, Any]) -> PublishedTables:
    datacomp = (results.get("published_tables") or {}).get("datacomp")
    return PublishedTables(
        datacomp=_datacomp_tables(datacomp) if datacomp else (),
        datacomp_lowest=_datacomp_lowest(datacomp) if datacomp else (),
        datacomp_source=datacomp["source"] if datacomp else None,
        clip=_clip_tables(results["probes"]),
    )


def _cell(entry: Mapping[str, Any] | None, key: str | None = None) -> Cell:
    if entry is None:
        return Cell(value=format.NOT_AVAILABLE, interval=format.NOT_AVAILABLE, n="0", key=key)
    return Cell(value=format.percent(entry.get("value")), interval=format.percent_range(entry.get("ci_low"),
                entry.get("ci_high")), n=format.count(entry.get("n")), key=key)


# ---- DataComp ---------------------------------------------------------------------------

def _datacomp_tables(datacomp: Mapping[str, Any]) -> tuple[Table, ...]:
    metrics = datacomp["metrics"]
    return tuple(Table(id=table["id"], title=table["title"], columns=tuple(table["columns"]),
                       rows=tuple(Row(label=row["label"], cells=tuple(_cell(metrics.get(key), key)
                                                                     for key in row["cells"]))
                                  for row in table["rows"]))
                 for table in datacomp["tables"])


def _datacomp_lowest(datacomp: Mapping[str, Any]) -> tuple[tuple[str, str, str], ...]:
    lines = []
    for key, entry in datacomp["metrics"].items():
        if key.endswith("_wg"):
            cell = _cell(entry)
            lines.append((key, str(entry["label"]), f"{cell.value} ({cell.interval}, n = {cell.n})"))
    return tuple(lines)


# ---- the CLIP paper ---------------------------------------------------------------------

def _groups(probe: Mapping[str, Any], slice_id: str, metric: str) -> dict[str, Mapping[str, Any]] | None:
    for slice_entry in probe["slices"]:
        if slice_entry["id"] == slice_id:
            for entry in slice_entry["metrics"]:
                if entry["metric"] == metric:
                    return {group["group"]: group for group in entry["groups"]}
    return None


def _clip_tables(probes: Sequence[Mapping[str, Any]]) -> tuple[Table, ...]:
    attribute = [probe for probe in probes if probe["kind"] == "attribute" and probe["target"] in ("race", "gender", "age")]
    harm = [probe for probe in probes if probe["kind"] == "harm"
            and {"crime_rate", "non_human_rate"} <= set(probe["metrics"])]
    tables = [_accuracy_by_race(attribute), _gender_by_race_and_gender(attribute)]
    tables += [_harm_by(harm, attribute_name, title) for attribute_name, title in (
        ("race", "Table 6: share of images put in crime-related and non-human classes, by race"),
        ("gender", "Table 7 (by gender): crime-related and non-human classes"),
        ("age", "Table 7 (by age): crime-related and non-human classes"))]
    return tuple(table for table in tables if table is not None)


def _accuracy_by_race(probes: Sequence[Mapping[str, Any]]) -> Table | None:
    columns = [(probe, _groups(probe, "race", ACCURACY), _groups(probe, "race_binary", ACCURACY)) for probe in probes]
    columns = [column for column in columns if column[1]]
    if not columns:
        return None
    labels = list(dict.fromkeys(label for _, by_race, _ in columns for label in by_race))
    # White / non-White rows where a race_binary slice exists; a coarse group named like a race is that race.
    labels += [label for label in dict.fromkeys(label for _, _, by_binary in columns for label in (by_binary or {}))
               if label not in labels]
    rows = tuple(Row(label=label, cells=tuple(_cell({**(by_race or {}), **(by_binary or {})}.get(label))
                                             for _, by_race, by_binary in columns)) for label in labels)
    return Table(id="clip-table-3-4", title="Tables 3-4: accuracy of gender, race and age classification, by race",
                 columns=tuple(f"{probe['target']} ({probe['id']})" for probe, _, _ in columns), rows=rows)


def _gender_by_race_and_gender(probes: Sequence[Mapping[str, Any]]) -> Table | None:
    probe = next((probe for probe in probes if probe["target"] == "gender"
                  and _groups(probe, "race x gender", ACCURACY)), None)
    if probe is None:
        return None
    groups = _groups(probe, "race x gender", ACCURACY) or {}
    values = [tuple(group["values"][name] for name in ("race", "gender")) for group in groups.values()]
    races = list(dict.fromkeys(race for race, _ in values))
    genders = list(dict.fromkeys(gender for _, gender in values))
    rows = tuple(Row(label=gender, cells=tuple(_cell(groups.get(f"{race} / {gender}")) for race in races))
                 for gender in genders)
    return Table(id="clip-table-5", title=f"Table 5: gender classification accuracy by race and gender (probe {probe['id']})",
                 columns=tuple(races), rows=rows)


def _harm_by(probes: Sequence[Mapping[str, Any]], attribute: str, title: str) -> Table | None:
    found = [(probe, metric, _groups(probe, attribute, metric))
             for probe in probes for metric in ("crime_rate", "non_human_rate")]
    found = [item for item in found if item[2]]
    if not found:
        return None
    columns = list(dict.fromkeys(label for _, _, groups in found for label in groups))
    rows = tuple(Row(label=f"{HARM_WORDS[metric]} ({probe['id']})",
                     cells=tuple(_cell(groups.get(label)) for label in columns)) for probe, metric, groups in found)
    return Table(id=f"clip-table-{attribute}", title=title, columns=tuple(columns), rows=rows)


def clip_table_7_from_sweep(document: Mapping[str, Any], variant: str = "with_child") -> tuple[Table, ...]:
    """The CLIP paper's Table 7 from a sweep: crime-related and non-human rates by age, the base
    taxonomy's and ``variant``'s (the paper adds a 'child' class) side by side, each with its interval."""
    rows_by_key: dict[tuple[str, str, str, str, str], Mapping[str, Any]] = {
        (row["taxonomy"], row["probe"], row["metric"], row["variant"], row["group"]): row
        for row in document["changes"] if row["slice"] == "age" and row["metric"] in ("crime_rate", "non_human_rate")}
    probes = list(dict.fromkeys((taxonomy, probe) for taxonomy, probe, _, name, _ in rows_by_key if name == variant))
    tables = []
    for taxonomy, probe in probes:
        groups = list(dict.fromkeys(group for key_taxonomy, key_probe, _, _, group in rows_by_key
                                    if (key_taxonomy, key_probe) == (taxonomy, probe)))
        columns = [(metric, name) for metric in ("crime_rate", "non_human_rate") for name in ("base", variant)]
        rows = tuple(Row(label=group, cells=tuple(_cell(rows_by_key.get((taxonomy, probe, metric, name, group)))
                                                  for metric, name in columns)) for group in groups)
        tables.append(Table(id=f"clip-table-7-{taxonomy}-{probe}",
                            title=f"Table 7: crime-related and non-human rates by age, without and with the "
                                  f"{variant} variant ({taxonomy}, probe {probe})",
                            columns=tuple(f"{HARM_WORDS[metric]} ({name})" for metric, name in columns), rows=rows))
    return tuple(tables)


def published_tables_markdown(results: Mapping[str, Any]) -> list[str]:
    """summary.md's lines for the published tables (none when there are none)."""
    from .markdown import escape_markdown_cell

    view = build_published_tables(results)
    lines: list[str] = []
    sections = [("DataComp tables", view.datacomp), ("CLIP paper tables", view.clip)]
    for heading, tables in sections:
        if not tables:
            continue
        lines += ["", f"## {heading}", ""]
        if heading == "DataComp tables":
            lines += [f"Reproduced from the same predictions as DataComp's code computes them ({view.datacomp_source}); "
                      "each cell: value (interval) [DataComp metric key].", ""]
        else:
            lines += ["The audit's group rates laid out as the CLIP paper's tables (Radford et al. 2021, "
                      "section 7.1); each cell: value (interval).", ""]
        for table in tables:
            lines += [f"### {escape_markdown_cell(table.title)}", "",
                      "| | " + " | ".join(escape_markdown_cell(column) for column in table.columns) + " |",
                      "|---|" + "--:|" * len(table.columns)]
            for row in table.rows:
                cells = [f"{cell.value} ({cell.interval})" + (f" `{cell.key}`" if cell.key else "") for cell in row.cells]
                lines.append(f"| {escape_markdown_cell(row.label)} | " + " | ".join(cells) + " |")
            lines.append("")
        if heading == "DataComp tables" and view.datacomp_lowest:
            lines += ["DataComp's worst-group values (`*_wg`: the lowest group value, no minimum group size):", ""]
            lines += [f"- `{key}`: {value}, {escape_markdown_cell(words)}" for key, words, value in view.datacomp_lowest]
    return lines
