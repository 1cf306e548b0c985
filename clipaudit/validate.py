"""`clipaudit validate`: the taxonomy as the model will see it, and every problem with file, line and field.

The file's own problems come first (all of them, see :mod:`clipaudit.taxonomy.checks`). Checks
against a dataset (``--data``) and a model (``--model``) then run on every probe that is well
formed, even when other probes are broken, so one run lists everything there is to fix.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from pathlib import Path

from clipaudit.located_yaml import LocatedYaml, Problem, read_located_yaml_file
from clipaudit.taxonomy import (
    Taxonomy,
    check_against_dataset,
    check_against_model,
    resolve_taxonomy_path,
    validate_taxonomy_file,
)
from clipaudit.taxonomy.checks import TAXONOMY_SHAPE, DocumentChecker
from clipaudit.taxonomy.model import build_taxonomy
from clipaudit.vocabulary import slice_id


@dataclass(frozen=True)
class Validation:
    """What `clipaudit validate` prints: the taxonomy (when it loads), the problems, a summary line."""

    taxonomy_lines: list[str]
    problem_lines: list[str]
    ok: bool


def validate_command(
    file: str, *, data: str | None = None, model: str | None = None, cache_dir: Path | None = None
) -> Validation:
    """The taxonomy described and every problem found; ``ok`` unless a problem is an error."""
    path = resolve_taxonomy_path(file)
    problems = list(validate_taxonomy_file(path))
    part = _well_formed_part(path, problems)
    if part is not None and (data or model):
        problems += _checks_against_inputs(part, data=data, model=model, cache_dir=cache_dir)
    errors = _errors(problems)
    lines = [_line(problem) for problem in problems]
    if errors or part is None:  # without errors the whole file is well formed, so part is never None here
        lines.append(f"{path}: {len(errors)} error(s)" + _warnings_suffix(problems))
        return Validation([], lines, False)
    taxonomy = part.taxonomy
    classes = sum(len(probe.classes) for probe in taxonomy.probes)
    lines.append(f"{path}: ok ({len(taxonomy.probes)} probes, {classes} classes, "
                 f"{len(taxonomy.variants)} variants)" + _warnings_suffix(problems))
    return Validation(describe_taxonomy(taxonomy), lines, True)


def describe_taxonomy(taxonomy: Taxonomy) -> list[str]:
    """Probes, classes, categories and every prompt exactly as it will be sent to the model."""
    lines = [f"taxonomy {taxonomy.name} (sha256 {taxonomy.sha256[:12]})"]
    if taxonomy.description:
        lines.append(f"  {' '.join(taxonomy.description.split())}")
    if taxonomy.templates:
        lines.append("  templates: " + ", ".join(_quoted(template) for template in taxonomy.templates))
    for grouping in taxonomy.attribute_groups:
        lines.append(f"  slice column {grouping.id} groups {grouping.attribute}: {_groups(grouping)}")
    for probe in taxonomy.probes:
        what = f"attribute, target column '{probe.target}'" if probe.kind == "attribute" else \
            f"harm, categories {', '.join(probe.categories()) or 'none'}"
        slices = ", ".join(slice_id(slice_) for slice_ in probe.slices) or "none"
        lines.append(f"probe {probe.id} ({what}; {len(probe.classes)} classes; slices: {slices})")
        width = max(len(cls.id) for cls in probe.classes)
        category_width = max(len(cls.category or "-") for cls in probe.classes)
        for cls in probe.classes:
            prompts = taxonomy.prompts_for(probe, cls)
            category = f"{(cls.category or '-').ljust(category_width)}  " if probe.kind == "harm" else ""
            lead = f"  {cls.id.ljust(width)}  {category}"
            lines.append(lead + _quoted(prompts[0]))
            lines += [" " * len(lead) + _quoted(prompt) for prompt in prompts[1:]]
        for grouping in probe.outcome_groups:
            lines.append(f"  outcome grouping {grouping.id} (metric {grouping.metric}): {_groups(grouping)}")
    for variant in taxonomy.variants:
        lines.append(f"variant {variant.id}" + (f": {' '.join(variant.description.split())}"
                                                 if variant.description else ""))
    return lines


def _groups(grouping) -> str:
    return "; ".join(f"{group.id} = " + ("every other value" if group.rest else ", ".join(group.members))
                     for group in grouping.groups)


def _quoted(text: str) -> str:
    return f'"{text}"'


@dataclass(frozen=True)
class _Part:
    """The well-formed probes of a file as a taxonomy, and where each sits in the file."""

    taxonomy: Taxonomy
    file_index: list[int]  # probe position in ``taxonomy`` -> position in the file
    located: LocatedYaml
    file: str


_PROBE_FIELD = re.compile(r"^probes\[(\d+)\]")


def _well_formed_part(path: Path, problems: list[Problem]) -> _Part | None:
    """The probes without errors (with the top level they need), or None when nothing usable is left."""
    raw, located, _ = read_located_yaml_file(path, str(path), expected=TAXONOMY_SHAPE)
    if raw is None or located is None or not isinstance(located.data, dict):
        return None
    errors = _errors(problems)
    broken = {int(match.group(1)) for problem in errors if (match := _PROBE_FIELD.match(problem.field))}
    if any(not _PROBE_FIELD.match(problem.field) and not problem.field.startswith("variants")
           for problem in errors):
        return None  # the top level (name, templates, the probe list) is broken: nothing to build on
    probes = located.data.get("probes")
    if not isinstance(probes, list):
        return None
    kept = [index for index in range(len(probes)) if index not in broken]
    if not kept:
        return None
    document = {**located.data, "probes": [probes[index] for index in kept]}
    if errors:  # variants may name the broken probes; they are checked with the file, not run here
        document.pop("variants", None)
    if DocumentChecker(LocatedYaml(document), str(path)).check():
        return None  # the probes left are not a taxonomy on their own
    taxonomy = build_taxonomy(document, path=path if not errors else None, sha256=hashlib.sha256(raw).hexdigest())
    return _Part(taxonomy, kept, located, str(path))


def _checks_against_inputs(part: _Part, *, data: str | None, model: str | None, cache_dir: Path | None) -> list:
    from clipaudit.files import default_cache_dir

    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    problems = []
    if data:
        from clipaudit.data import load_dataset

        dataset = load_dataset(data, cache_dir=cache_dir)
        values = {attribute: dataset.attribute_values(attribute) for attribute in dataset.attributes}
        problems += check_against_dataset(part.taxonomy, values)
    if model:
        from clipaudit.models import load_model

        loaded = load_model(model, device="cpu", dtype="fp32", cache_dir=cache_dir)
        problems += check_against_model(part.taxonomy, loaded.count_tokens, loaded.info.max_text_tokens)
    return [_in_file(problem, part) for problem in problems]


def _in_file(problem: Problem, part: _Part) -> Problem:
    """A problem of the well-formed part, with the probe position, file and line of the whole file."""
    if part.taxonomy.path is not None:
        return problem  # the whole file: positions and lines are the file's already
    match = _PROBE_FIELD.match(problem.field)
    field = problem.field
    if match:
        field = f"probes[{part.file_index[int(match.group(1))]}]" + field[match.end():]
    return replace(problem, file=part.file, field=field, line=part.located.line_of(field))


def _errors(problems: list) -> list:
    return [problem for problem in problems if getattr(problem, "severity", "error") == "error"]


def _line(problem) -> str:
    return str(problem)  # a warning says so itself ('... field: warning: ...')


def _warnings_suffix(problems: list) -> str:
    warnings = len(problems) - len(_errors(problems))
    return f", {warnings} warning(s)" if warnings else ""
