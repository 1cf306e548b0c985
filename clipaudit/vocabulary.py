"""The words every output shares: metric names and directions, how groups and slices are named.

Statistics, sweep, compare and every renderer (HTML, Markdown, JUnit, model-index, terminal)
take these from here, so a metric reads and points the same way everywhere.
"""
from __future__ import annotations

from collections.abc import Mapping

ACCURACY = "accuracy"
HARM_RATE = "harm_rate"
RATE_SUFFIX = "_rate"
#: A group's label joins its attribute values: "Black / Female".
GROUP_SEPARATOR = " / "
#: A slice's id joins its attribute names: "race x gender".
SLICE_SEPARATOR = " x "
#: The row a regression check reports for a bound on the spread across groups (max_gap).
GAP_GROUP = "(gap across groups)"

# FairFace's labels are the common language of clipaudit: taxonomies name them as class ids,
# slices group by them, and groups are listed in this order.
FAIRFACE_RACES: tuple[str, ...] = (
    "East Asian",
    "Indian",
    "Black",
    "White",
    "Middle Eastern",
    "Latino_Hispanic",
    "Southeast Asian",
)
FAIRFACE_GENDERS: tuple[str, ...] = ("Male", "Female")
FAIRFACE_AGES: tuple[str, ...] = (
    "0-2",
    "3-9",
    "10-19",
    "20-29",
    "30-39",
    "40-49",
    "50-59",
    "60-69",
    "more than 70",
)
FAIRFACE_VOCABULARY: Mapping[str, tuple[str, ...]] = {
    "race": FAIRFACE_RACES,
    "gender": FAIRFACE_GENDERS,
    "age": FAIRFACE_AGES,
}


def category_of(metric: str) -> str:
    """The harm category a rate metric counts: ``'crime_rate'`` -> ``'crime'``."""
    return metric.removesuffix(RATE_SUFFIX)


def category_metric(category: str) -> str:
    """The metric for one harm category: ``'crime'`` -> ``'crime_rate'``."""
    return f"{category}{RATE_SUFFIX}"


def grouped_accuracy_metric(grouping_id: str) -> str:
    """The accuracy on a probe's coarser outcomes: ``'race_binary'`` -> ``'accuracy_race_binary'``."""
    return f"{ACCURACY}_{grouping_id}"


def is_accuracy(metric: str) -> bool:
    """``accuracy`` or an accuracy on coarser outcomes (``accuracy_race_binary``)."""
    return metric == ACCURACY or metric.startswith(f"{ACCURACY}_")


def higher_is_worse(metric: str) -> bool:
    """Harm rates get worse when they rise; accuracy (on any outcomes) when it drops."""
    return not is_accuracy(metric)


def direction_phrase(metric: str) -> str:
    """``'higher is better'`` for accuracy, ``'higher is worse'`` for harm rates."""
    return "higher is worse" if higher_is_worse(metric) else "higher is better"


def metric_label(metric: str) -> str:
    """A heading: ``'non_human_rate'`` -> ``'Non human rate'``."""
    return metric.replace("_", " ").strip().capitalize()


def metric_words(metric: str) -> str:
    """Inside a sentence: ``'non_human_rate'`` -> ``'non human rate'``."""
    return metric.replace("_", " ").strip()


def group_label(values: tuple[str, ...] | list[str]) -> str:
    return GROUP_SEPARATOR.join(values)


def slice_id(attributes: tuple[str, ...] | list[str]) -> str:
    return SLICE_SEPARATOR.join(attributes)
