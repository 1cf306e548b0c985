"""Checks of a taxonomy against a dataset and a model, run before the expensive part of an audit."""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from clipaudit.located_yaml import LocatedYaml, Problem, child_path, read_located_yaml_file
from clipaudit.taxonomy.checks import TAXONOMY_SHAPE
from clipaudit.taxonomy.keys import closest_id
from clipaudit.taxonomy.model import Probe, Taxonomy


def check_against_dataset(taxonomy: Taxonomy, attributes: dict[str, set[str]], *,
                          allow_unmatched: bool = False) -> list[Problem]:
    """What the taxonomy asks of the dataset that the dataset lacks.

    ``attributes`` maps each dataset column to the values it holds. Errors: a target or
    slice column the dataset lacks; an attribute probe none of whose class ids occur in
    its target column (a vocabulary mismatch); target values that match no class (their
    images could never be classified correctly, so a label spelling would become a
    finding) -- a warning instead with ``allow_unmatched``. Warnings: a class id the
    target never holds (no image can confirm it).
    """
    located = _Locator(taxonomy)
    problems: list[Problem] = []
    available = ", ".join(sorted(attributes)) or "(none)"
    for grouping_index, grouping in enumerate(taxonomy.attribute_groups):
        if grouping.attribute not in attributes:
            problems.append(located.problem(child_path(child_path("attribute_groups", grouping_index), "attribute"),
                                            f"attribute '{grouping.attribute}' of grouping '{grouping.id}' is not "
                                            f"in the dataset; its columns: {available}"))
    grouped = {grouping.id for grouping in taxonomy.attribute_groups if grouping.attribute in attributes}
    for probe_index, probe in enumerate(taxonomy.probes):
        probe_path = child_path("probes", probe_index)
        for slice_index, slice_ in enumerate(probe.slices):
            for position, column in enumerate(slice_):
                if column not in attributes and column not in grouped:
                    field = child_path(probe_path, "slices") + f"[{slice_index}]" + \
                        (f"[{position}]" if len(slice_) > 1 else "")
                    problems.append(located.problem(field, f"slice column '{column}' is not in the dataset; "
                                                           f"its columns: {available}"))
        if probe.target is None:
            continue
        target_path = child_path(probe_path, "target")
        if probe.target not in attributes:
            problems.append(located.problem(target_path, f"target column '{probe.target}' is not in the dataset; "
                                                         f"its columns: {available}"))
            continue
        problems.extend(_target_vocabulary(probe, probe_path, attributes[probe.target], located, allow_unmatched))
    return problems


@dataclass(frozen=True)
class UnmatchedValues:
    """Values of an attribute probe's target column that no class id names, each with the closest id."""

    probe: str
    column: str
    values: tuple[str, ...]
    closest: tuple[str | None, ...]

    def describe(self) -> str:
        named = ", ".join(repr(value) + (f" (did you mean {close!r}?)" if close else "")
                          for value, close in zip(self.values, self.closest))
        return (f"probe '{self.probe}': {len(self.values)} value(s) of column '{self.column}' match no class id: "
                f"{named}")

    def refusal(self) -> str:
        """Why the run stops, and the two ways on."""
        return (f"{self.describe()}; {UNMATCHED_CONSEQUENCE}; fix the dataset's labels or the class ids, "
                "or pass --allow-unmatched to go on regardless")

    def alert(self) -> str:
        """What a report and the terminal say first when the run went on with --allow-unmatched."""
        return (f"--allow-unmatched: {self.describe()}; {UNMATCHED_CONSEQUENCE}, so the '{self.probe}' "
                "accuracy of their groups is lowered by construction")


def unmatched_target_values(probe: Probe, values: set[str]) -> UnmatchedValues | None:
    """The target values of ``probe`` that no class id names (None for harm probes or when all match).

    A value that every outcome grouping of the probe places in a group is scored through those
    groupings (DataComp's UTKFace protocol scores UTKFace's 5 races as White / non-White against
    FairFace's 7 classes), so it is not unmatched; :func:`grouped_only_values` lists it.
    """
    if probe.target is None:
        return None
    grouped = set(grouped_only_values(probe, values))
    unmatched = tuple(sorted(set(values) - set(probe.class_ids()) - grouped))
    if not unmatched:
        return None
    closest = tuple(closest_id(value, probe.class_ids()) for value in unmatched)
    return UnmatchedValues(probe.id, probe.target, unmatched, closest)


def grouped_only_values(probe: Probe, values: set[str]) -> list[str]:
    """Target values no class id names but every outcome grouping of the probe places in a group."""
    groupings = getattr(probe, "outcome_groups", ())
    if not groupings:
        return []
    return sorted(value for value in set(values) - set(probe.class_ids())
                  if all(grouping.group_of(value) is not None for grouping in groupings))


UNMATCHED_CONSEQUENCE = "their images can never be classified correctly"


def _target_vocabulary(probe: Probe, probe_path: str, values: set[str], located: _Locator,
                       allow_unmatched: bool) -> list[Problem]:
    class_ids = probe.class_ids()
    values_shown = ", ".join(sorted(values))
    if values and not values.intersection(class_ids):
        return [located.problem(child_path(probe_path, "classes"),
                                f"no class id of probe '{probe.id}' occurs in column '{probe.target}' "
                                f"(its values: {values_shown}); class ids must be the dataset's values")]
    problems = []
    for class_index, class_id in enumerate(class_ids):
        if class_id not in values:
            problems.append(located.problem(
                child_path(child_path(child_path(probe_path, "classes"), class_index), "id"),
                f"class '{class_id}' never occurs in column '{probe.target}' (its values: {values_shown})",
                severity="warning"))
    grouped = grouped_only_values(probe, values)
    if grouped:
        metrics = ", ".join(grouping.metric for grouping in probe.outcome_groups)
        problems.append(located.problem(
            child_path(probe_path, "classes"),
            f"dataset value(s) {', '.join(map(repr, grouped))} of column '{probe.target}' match no class id; "
            f"they are scored by {metrics} only (accuracy counts them as misclassified)", severity="warning"))
    unmatched = unmatched_target_values(probe, values)
    if unmatched is not None:
        message = f"{unmatched.describe()}; {UNMATCHED_CONSEQUENCE}" if allow_unmatched else unmatched.refusal()
        problems.append(located.problem(child_path(probe_path, "classes"), message,
                                        severity="warning" if allow_unmatched else "error"))
    return problems


def check_against_model(taxonomy: Taxonomy, count_tokens: Callable[[str], int], max_tokens: int) -> list[Problem]:
    """Prompts longer than the model's text context (they would be silently truncated).

    ``count_tokens`` must count the way the model's tokenizer does, special tokens included.
    """
    located = _Locator(taxonomy)
    problems: list[Problem] = []
    for probe_index, probe in enumerate(taxonomy.probes):
        for class_index, cls in enumerate(probe.classes):
            class_path = child_path(child_path(child_path("probes", probe_index), "classes"), class_index)
            for prompt_index, prompt in enumerate(taxonomy.prompts_for(probe, cls)):
                token_count = count_tokens(prompt)
                if token_count > max_tokens:
                    field = child_path(child_path(class_path, "prompts"), prompt_index) \
                        if cls.prompts is not None else class_path
                    problems.append(located.problem(
                        field, f"prompt {prompt!r} has {token_count} tokens; the model reads at most "
                               f"{max_tokens}, so it would be truncated"))
    return problems


class _Locator:
    """Lines for a taxonomy's fields, re-read from its file when the file is unchanged.

    Variants renumber classes, so only an unmodified taxonomy gets line numbers.
    """

    def __init__(self, taxonomy: Taxonomy) -> None:
        self.file = str(taxonomy.path) if taxonomy.path else taxonomy.name
        self.located: LocatedYaml | None = None
        if taxonomy.path is not None and taxonomy.variant is None:
            raw, located, _ = read_located_yaml_file(taxonomy.path, self.file, expected=TAXONOMY_SHAPE)
            if raw is not None and hashlib.sha256(raw).hexdigest() == taxonomy.sha256:
                self.located = located

    def problem(self, field: str, message: str, *, severity: Literal["error", "warning"] = "error") -> Problem:
        line = self.located.line_of(field) if self.located is not None else None
        return Problem(self.file, line, field, message, severity)
