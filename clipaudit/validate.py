"""`clipaudit validate`: every problem of a taxonomy, one per line, optionally against data and a model."""
from __future__ import annotations

from pathlib import Path

from clipaudit.taxonomy import (
    check_against_dataset,
    check_against_model,
    load_taxonomy,
    resolve_taxonomy_path,
    validate_taxonomy_file,
)


def validate_command(
    file: str, *, data: str | None = None, model: str | None = None, cache_dir: Path | None = None
) -> tuple[list[str], bool]:
    """Lines to print and whether the taxonomy is usable (warnings alone do not fail it)."""
    path = resolve_taxonomy_path(file)
    problems = list(validate_taxonomy_file(path))
    if not _errors(problems) and (data or model):
        problems += _checks_against_inputs(path, data=data, model=model, cache_dir=cache_dir)
    lines = [_line(problem) for problem in problems]
    errors = _errors(problems)
    if errors:
        lines.append(f"{path}: {len(errors)} error(s)" + _warnings_suffix(problems))
        return lines, False
    taxonomy = load_taxonomy(path)
    classes = sum(len(probe.classes) for probe in taxonomy.probes)
    lines.append(
        f"{path}: ok ({len(taxonomy.probes)} probes, {classes} classes, "
        f"{len(taxonomy.variants)} variants)" + _warnings_suffix(problems)
    )
    return lines, True


def _checks_against_inputs(path: Path, *, data: str | None, model: str | None, cache_dir: Path | None) -> list:
    from clipaudit.files import default_cache_dir

    taxonomy = load_taxonomy(path)
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    problems = []
    if data:
        from clipaudit.data import load_dataset

        dataset = load_dataset(data, cache_dir=cache_dir)
        values = {attribute: dataset.attribute_values(attribute) for attribute in dataset.attributes}
        problems += check_against_dataset(taxonomy, values)
    if model:
        from clipaudit.models import load_model

        loaded = load_model(model, device="cpu", dtype="fp32", cache_dir=cache_dir)
        problems += check_against_model(taxonomy, loaded.count_tokens, loaded.info.max_text_tokens)
    return problems


def _errors(problems: list) -> list:
    return [problem for problem in problems if getattr(problem, "severity", "error") == "error"]


def _line(problem) -> str:
    severity = getattr(problem, "severity", "error")
    return f"{problem}" if severity == "error" else f"{problem} (warning)"


def _warnings_suffix(problems: list) -> str:
    warnings = len(problems) - len(_errors(problems))
    return f", {warnings} warning(s)" if warnings else ""

