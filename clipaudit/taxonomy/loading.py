"""Taxonomy files: find them (a path or a shipped name), read and check them, combine several."""
from __future__ import annotations

import hashlib
import importlib.resources
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from clipaudit.errors import TaxonomyError
from clipaudit.located_yaml import LocatedYaml, Problem, read_located_yaml_file
from clipaudit.taxonomy.checks import TAXONOMY_SHAPE, DocumentChecker
from clipaudit.taxonomy.model import Probe, Taxonomy, build_taxonomy

SHIPPED_PACKAGE = "clipaudit.taxonomies"
_REPO_TAXONOMIES = Path(__file__).resolve().parents[2] / "taxonomies"


def combine_taxonomies(taxonomies: Sequence[Taxonomy]) -> Taxonomy:
    """One taxonomy with the probes of several, for an audit that asks all their questions at once.

    Each probe keeps the templates it had (its taxonomy's become its own), so every prompt is
    unchanged; probe ids must not collide. The sha256 covers every part's sha256. Variants stay
    with their own files (a variant's edits are written against one taxonomy), so the
    combination declares none.
    """
    taxonomies = list(taxonomies)
    if len(taxonomies) == 1:
        return taxonomies[0]
    probes: list[Probe] = []
    seen: dict[str, str] = {}
    for taxonomy in taxonomies:
        for probe in taxonomy.probes:
            if probe.id in seen:
                raise TaxonomyError(
                    f"probe id '{probe.id}' is in both {seen[probe.id]} and {taxonomy._where()}; "
                    "probe ids must be unique across the taxonomies of one audit"
                )
            seen[probe.id] = taxonomy._where()
            templates = probe.templates if probe.templates is not None else taxonomy.templates
            probes.append(replace(probe, templates=tuple(templates)))
    # Attribute groupings are columns of the data, shared by every probe: the first of each id is kept.
    attribute_groups = {grouping.id: grouping for t in reversed(taxonomies) for grouping in t.attribute_groups}
    parts = tuple((t.name, str(t.path) if t.path else None, t.sha256) for t in taxonomies)
    combined_sha256 = hashlib.sha256("".join(sha for _, _, sha in parts).encode()).hexdigest()
    return Taxonomy(
        name=" & ".join(t.name for t in taxonomies),
        description=" ".join(t.description for t in taxonomies if t.description),
        templates=taxonomies[0].templates,
        probes=tuple(probes),
        sha256=combined_sha256,
        intended_use=next((t.intended_use for t in taxonomies if t.intended_use), None),
        out_of_scope_use=next((t.out_of_scope_use for t in taxonomies if t.out_of_scope_use), None),
        source="; ".join(t.source for t in taxonomies if t.source) or None,
        parts=parts,
        attribute_groups=tuple(attribute_groups.values()),
        published_tables=next((t.published_tables for t in taxonomies if t.published_tables is not None), None),
    )


# --------------------------------------------------------------------------------------
# Reading files
# --------------------------------------------------------------------------------------

def validate_taxonomy_file(path: str | Path) -> list[Problem]:
    """Every problem of a taxonomy file, each with its line and field (empty list = valid)."""
    _, _, problems = _read_and_check(Path(path))
    return problems


def load_taxonomy(path_or_name: str | Path) -> Taxonomy:
    """Load a taxonomy file, or a shipped one by bare name (``clip_denigration``).

    Raises TaxonomyError with the first problem and how many more there are.
    """
    path = resolve_taxonomy_path(path_or_name)
    raw, located, problems = _read_and_check(path)
    errors = [problem for problem in problems if problem.severity == "error"]
    if errors:
        more = len(errors) - 1
        suffix = "" if more == 0 else \
            f" (and {more} more problem{'s' if more > 1 else ''}; run clipaudit validate {path})"
        raise TaxonomyError(f"{errors[0]}{suffix}")
    if raw is None or located is None:  # cannot happen without an error above; kept for the type checker
        raise TaxonomyError(f"{path}: cannot read the taxonomy")
    return build_taxonomy(located.data, path=path, sha256=hashlib.sha256(raw).hexdigest())


def resolve_taxonomy_path(path_or_name: str | Path) -> Path:
    """A file path as given, or the shipped file for a bare name; unknown names list the shipped ones."""
    text = str(path_or_name)
    looks_like_path = isinstance(path_or_name, Path) or "/" in text or "\\" in text \
        or text.endswith((".yaml", ".yml"))
    if not looks_like_path:
        shipped = shipped_taxonomies()
        if text in shipped:
            return shipped[text]
        if not Path(text).is_file():
            raise TaxonomyError(f"unknown taxonomy '{text}': not a file and not a shipped taxonomy "
                                f"({', '.join(sorted(shipped)) or 'none shipped'})")
    path = Path(text)
    if not path.is_file():
        raise TaxonomyError(f"taxonomy file not found: {path}")
    return path


def shipped_taxonomies() -> dict[str, Path]:
    """Shipped taxonomy files by name (file stem), from the installed package or the repo."""
    folder = _shipped_folder()
    if folder is None:
        return {}
    return {path.stem: path for path in sorted(folder.glob("*.yaml"))}


def _shipped_folder() -> Path | None:
    try:
        folder = Path(str(importlib.resources.files(SHIPPED_PACKAGE)))
        if folder.is_dir() and any(folder.glob("*.yaml")):
            return folder
    except (ModuleNotFoundError, TypeError):
        pass  # running from a checkout that is not installed: use the repo's folder
    return _REPO_TAXONOMIES if _REPO_TAXONOMIES.is_dir() else None


def _read_and_check(path: Path) -> tuple[bytes | None, LocatedYaml | None, list[Problem]]:
    raw, located, problems = read_located_yaml_file(path, str(path), expected=TAXONOMY_SHAPE)
    if located is not None:
        problems = problems + DocumentChecker(located, str(path)).check()
        problems.sort(key=lambda problem: (problem.line or 0))
    return raw, located, problems


