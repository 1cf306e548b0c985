"""Thresholds for `clipaudit compare`: a YAML list of rules, read with a line number for every field.

```yaml
rules:
  - probe: denigration
    metric: harm_rate          # accuracy, harm_rate or <category>_rate
    slice: race                # or [race, gender]; omitted: every slice of the probe
    max_rise: 0.01             # no group's rate may rise by more than this (harm rates)
    max: 0.05                  # absolute bound on every group's candidate rate
    max_gap: 0.03              # bound on max - min across the candidate's groups
    require_significance: false  # true: a max_rise / max_drop violation also needs adjusted p < alpha
  - probe: gender
    metric: accuracy
    slice: [race, gender]
    max_drop: 0.02             # accuracy: no group may drop by more than this
    min: 0.8                   # absolute lower bound on every group's candidate accuracy
```

The file's shape is ``clipaudit/schemas/thresholds.schema.json``; this module adds the checks a
schema cannot state (a rise bound on accuracy, a rule that bounds nothing) and locates every
problem as ``file:line: rules[0].max_rise: ...`` with the taxonomy reader's located YAML.
Without a file, :func:`default_rules` asks for "no significant worsening of any group".
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from clipaudit.errors import ThresholdsError
from clipaudit.schemas import load_schema
from clipaudit.located_yaml import LocatedYaml, Problem, child_path, read_located_yaml_file
from clipaudit.vocabulary import higher_is_worse

BOUNDS = ("max_rise", "max_drop", "max", "min", "max_gap", "no_significant_worsening")
NUMERIC_BOUNDS = ("max_rise", "max_drop", "max", "min", "max_gap")


@dataclass(frozen=True)
class Rule:
    """One check of a candidate against a baseline, for one probe, metric and slice (or all slices).

    ``slice`` is ``None`` for every slice of the probe. ``where`` locates the rule
    (``thresholds.yaml:4`` or ``default``) for messages.
    """

    id: str
    probe: str
    metric: str
    slice: tuple[str, ...] | None = None
    max_rise: float | None = None
    max_drop: float | None = None
    max: float | None = None
    min: float | None = None
    max_gap: float | None = None
    no_significant_worsening: bool = False
    require_significance: bool = False
    where: str = "default"
    key_lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    @property
    def max_worsening(self) -> float | None:
        """The bound on a change in the worse direction (max_rise or max_drop)."""
        return self.max_rise if self.max_rise is not None else self.max_drop

    def bounds(self) -> dict[str, Any]:
        # `is`, not `in (None, False)`: a bound of 0.0 equals False.
        return {name: getattr(self, name) for name in BOUNDS if getattr(self, name) is not None
                and getattr(self, name) is not False}

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "where": self.where, "probe": self.probe, "metric": self.metric,
                "slice": list(self.slice) if self.slice is not None else None, **self.bounds(),
                "require_significance": self.require_significance}


@dataclass(frozen=True)
class Thresholds:
    rules: tuple[Rule, ...]
    path: str | None = None
    description: str | None = None


def default_rules(probe_metrics: dict[str, list[str]]) -> Thresholds:
    """No significant worsening of any group, for every probe, metric and slice."""
    rules = tuple(Rule(id="default", probe=probe, metric=metric, no_significant_worsening=True)
                  for probe, metrics in probe_metrics.items() for metric in metrics)
    return Thresholds(rules=rules, description="default: no significant worsening of any group in any probe")


def load_thresholds(path: str | Path) -> Thresholds:
    """Read and check a thresholds file; :class:`ThresholdsError` names the first problem with its line."""
    path = Path(path)
    if not path.is_file():
        raise ThresholdsError(f"{path}: no such thresholds file")
    problems = thresholds_problems(path)
    if problems:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise ThresholdsError(f"{problems[0]}{more}")
    _, located, _ = read_located_yaml_file(path, str(path), expected="a mapping with 'rules'")
    assert located is not None  # thresholds_problems reported an unreadable file
    document = located.data
    rules = tuple(_rule(raw, index, located, str(path)) for index, raw in enumerate(document["rules"]))
    return Thresholds(rules=rules, path=str(path), description=document.get("description"))


def thresholds_problems(path: Path) -> list[Problem]:
    """Every problem of a thresholds file, in line order."""
    file = str(path)
    _, located, problems = read_located_yaml_file(path, file, expected="a mapping with 'rules'")
    if located is None or problems:
        return problems
    if located.data is None:
        return [Problem(file, 1, "", "the file is empty; expected a mapping with 'rules'")]
    validator = jsonschema.Draft202012Validator(load_schema("thresholds"))
    schema_problems = [_schema_problem(error, located, file) for error in validator.iter_errors(located.data)]
    if schema_problems:
        return sorted(schema_problems, key=lambda problem: (problem.line or 0, problem.field))
    return _meaning_problems(located, file)


def _schema_problem(error: jsonschema.ValidationError, located: LocatedYaml, file: str) -> Problem:
    path = ""
    for key in error.absolute_path:
        path = child_path(path, key)
    where = "a rule" if path.startswith("rules[") and path.count(".") == 0 else "the file"
    if error.validator == "additionalProperties":
        allowed = list(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        key_path = child_path(path, unknown[0])
        close = difflib.get_close_matches(unknown[0], allowed, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return Problem(file, located.line_of(key_path), key_path,
                       f"unknown key '{unknown[0]}'{hint}; allowed keys in {where}: {', '.join(allowed)}")
    if error.validator == "required":
        missing = [key for key in error.validator_value if key not in error.instance]
        return Problem(file, located.line_of(path), path, f"missing required key '{missing[0]}' in {where}")
    if error.validator in ("minimum", "maximum") or (error.validator == "type" and error.validator_value == "number"):
        return Problem(file, located.line_of(path), path,
                       f"expected a proportion between 0 and 1 (e.g. 0.02 for 2 points), got {error.instance!r}")
    if error.validator == "oneOf" and path.endswith("slice"):
        return Problem(file, located.line_of(path), path,
                       f"expected an attribute name or a list of distinct attribute names, got {error.instance!r}")
    if error.validator == "type":
        return Problem(file, located.line_of(path), path,
                       f"expected {_article(error.validator_value)}, got {error.instance!r}")
    return Problem(file, located.line_of(path), path, error.message)


def _article(type_name: str) -> str:
    return {"object": "a mapping", "array": "a list", "boolean": "true or false",
            "string": "a string"}.get(type_name, f"a {type_name}")


def _meaning_problems(located: LocatedYaml, file: str) -> list[Problem]:
    problems: list[Problem] = []
    seen_ids: dict[str, str] = {}
    for index, raw in enumerate(located.data["rules"]):
        path = child_path("rules", index)

        def report(key: str, message: str) -> None:
            field = child_path(path, key) if key else path
            problems.append(Problem(file, located.line_of(field), field, message))

        metric = raw["metric"]
        for name in NUMERIC_BOUNDS:
            value = raw.get(name)
            if isinstance(value, float) and not math.isfinite(value):
                report(name, f"{name} is {value}; a bound must be a finite proportion (e.g. 0.02 for 2 points)")
        if "max_rise" in raw and not higher_is_worse(metric):
            report("max_rise", f"{metric} gets worse when it drops; bound it with max_drop")
        if "max_drop" in raw and higher_is_worse(metric):
            report("max_drop", f"{metric} gets worse when it rises; bound it with max_rise")
        if not any(raw.get(name) is not None and raw.get(name) is not False for name in BOUNDS):
            report("", f"the rule bounds nothing; give one of {', '.join(BOUNDS)}")
        if raw.get("require_significance") and "max_rise" not in raw and "max_drop" not in raw:
            report("require_significance", "require_significance qualifies max_rise / max_drop, "
                                           "and this rule has neither")
        if "min" in raw and "max" in raw and raw["min"] > raw["max"]:
            report("min", f"min {raw['min']} is above max {raw['max']}; no rate can pass")
        rule_id = raw.get("id", path)
        if rule_id in seen_ids:
            report("id", f"rule id {rule_id!r} is also used by {seen_ids[rule_id]}")
        seen_ids[rule_id] = path
    return problems


def _rule(raw: dict[str, Any], index: int, located: LocatedYaml, file: str) -> Rule:
    path = child_path("rules", index)
    slice_value = raw.get("slice")
    attributes = None if slice_value is None else (
        (slice_value,) if isinstance(slice_value, str) else tuple(slice_value))
    return Rule(
        id=raw.get("id", path), probe=raw["probe"], metric=raw["metric"], slice=attributes,
        max_rise=_number(raw.get("max_rise")), max_drop=_number(raw.get("max_drop")),
        max=_number(raw.get("max")), min=_number(raw.get("min")), max_gap=_number(raw.get("max_gap")),
        no_significant_worsening=bool(raw.get("no_significant_worsening", False)),
        require_significance=bool(raw.get("require_significance", False)),
        where=f"{file}:{located.line_of(path)}",
        key_lines={key: line for key in raw if (line := located.line_of(child_path(path, key))) is not None},
    )


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def rule_location(rule: Rule, key: str | None = None) -> str:
    """Where a rule (or one of its keys) is, for messages: ``thresholds.yaml:4: rules[0].probe``."""
    where = rule.where
    if key in rule.key_lines:
        where = f"{where.rsplit(':', 1)[0]}:{rule.key_lines[key]}"
    return f"{where}: {rule.id}" + (f".{key}" if key else "")
