"""Reading YAML with a line number for every field, and the Problem record.

PyYAML's ``safe_load`` forgets where each value came from. To say
``taxonomies/x.yaml:12: probes[0].classes[3].id: ...`` we compose the node graph
(``yaml.compose`` with ``SafeLoader``), turn it into plain Python values ourselves and
remember the 1-based line of every field path on the way. Duplicate mapping keys, which
PyYAML silently lets the last one win, are reported here too.
"""
from __future__ import annotations

import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

Severity = Literal["error", "warning"]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a taxonomy, located as precisely as we can.

    ``line`` is 1-based, or None where no line is known (a taxonomy built in code).
    ``field`` is a path such as ``probes[1].classes[3].id`` ('' for the whole file).
    Warnings do not stop loading; they say something the auditor should look at.
    """

    file: str
    line: int | None
    field: str
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        location = self.file if self.line is None else f"{self.file}:{self.line}"
        message = f"warning: {self.message}" if self.severity == "warning" else self.message
        return f"{location}: {self.field}: {message}" if self.field else f"{location}: {message}"


@dataclass
class LocatedYaml:
    """Plain YAML data plus the line where each field path starts."""

    data: Any
    lines: dict[str, int] = field(default_factory=dict)

    def line_of(self, path: str) -> int | None:
        """Line of ``path``, or of its nearest parent that has one (missing keys have none)."""
        while True:
            if path in self.lines:
                return self.lines[path]
            if not path:
                return None
            path = parent_path(path)


def child_path(path: str, key: str | int) -> str:
    """``probes`` + 0 -> ``probes[0]``; ``probes[0]`` + 'id' -> ``probes[0].id``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    # Keys that are dataset values ('East Asian', '0-2') read better quoted.
    segment = key if _IDENTIFIER.match(key) else f'"{key}"'
    if not path:
        return segment
    return f"{path}.{segment}" if _IDENTIFIER.match(key) else f"{path}[{segment}]"


def parent_path(path: str) -> str:
    """Drop the last segment of a field path ('' for a top-level one)."""
    cut = max(path.rfind("."), path.rfind("["))
    return path[:cut] if cut > 0 else ""


# Limits on what one YAML file may hold: a taxonomy, sweep spec or thresholds file is a few
# kilobytes, a few levels deep, a few thousand values. The limits stop a hostile file (an alias
# "billion laughs" bomb, thousands of nested levels) in a second with one clear line.
MAX_YAML_BYTES = 1 << 20
MAX_YAML_DEPTH = 64
MAX_YAML_VALUES = 200_000


class _TooManyValues(Exception):
    """The document expands to more than MAX_YAML_VALUES values."""


class _Composer:
    """Turns a composed node graph into Python values, recording lines and problems."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[str, int] = {}
        self.problems: list[Problem] = []
        self._constructor = yaml.constructor.SafeConstructor()
        self._open_nodes: set[int] = set()
        self._values = 0

    def value(self, node: Node, path: str) -> Any:
        # Aliases repeat a node wherever they point, so the count is of values after expansion.
        self._values += 1
        if self._values > MAX_YAML_VALUES:
            raise _TooManyValues
        self.lines.setdefault(path, node.start_mark.line + 1)
        if id(node) in self._open_nodes:
            self._report(node, path, "recursive YAML alias; a taxonomy must be a tree")
            return None
        self._open_nodes.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
            if isinstance(node, SequenceNode):
                return [self.value(item, child_path(path, index)) for index, item in enumerate(node.value)]
            return self._scalar(node, path)
        finally:
            self._open_nodes.discard(id(node))

    def _mapping(self, node: MappingNode, path: str) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if not isinstance(key_node, ScalarNode):
                self._report(key_node, path, "mapping keys must be plain strings")
                continue
            # The raw text, not the resolved value: a key such as `on` or `2020` stays a string.
            key = key_node.value
            if key in result:
                self._report(key_node, child_path(path, key),
                             f"duplicate key '{key}' (first given on line {first_line[key]}); remove one")
                continue
            first_line[key] = key_line
            key_path = child_path(path, key)
            self.lines[key_path] = key_line
            result[key] = self.value(value_node, key_path)
        return result

    def _scalar(self, node: Node, path: str) -> Any:
        try:
            return self._constructor.construct_object(node, deep=True)
        except yaml.YAMLError as error:
            self._report(node, path, f"cannot read this value: {_first_line(error)}")
            return None

    def _report(self, node: Node, path: str, message: str) -> None:
        self.problems.append(Problem(self.file, node.start_mark.line + 1, path, message))


def read_located_yaml(text: str, file: str, *, expected: str) -> tuple[LocatedYaml | None, list[Problem]]:
    """Parse ``text``; return the located data (None if unreadable) and the problems found.

    ``expected`` says what the file should hold, for the message about an empty file.
    """
    too_deep = _depth_problem(text, file)
    if too_deep is not None:
        return None, [too_deep]
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        return None, [Problem(file, line, "", f"malformed YAML: {_first_line(error)}")]
    except yaml.YAMLError as error:
        return None, [Problem(file, None, "", f"malformed YAML: {_first_line(error)}")]
    if root is None:
        return None, [Problem(file, 1, "", f"the file is empty; expected {expected}")]
    composer = _Composer(file)
    try:
        data = composer.value(root, "")
    except _TooManyValues:
        return None, [Problem(file, None, "", f"the file expands to more than {MAX_YAML_VALUES:,} values (YAML "
                                              "aliases repeat what they point to); refused as a resource limit")]
    return LocatedYaml(data, composer.lines), composer.problems


def _depth_problem(text: str, file: str) -> Problem | None:
    """Nesting deeper than MAX_YAML_DEPTH, found from the event stream (no recursion, no values built)."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_YAML_DEPTH:
                    return Problem(file, event.start_mark.line + 1, "",
                                   f"nested more than {MAX_YAML_DEPTH} levels deep; refused as a resource limit")
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
    except yaml.YAMLError:
        return None  # malformed YAML: compose reports it with its line
    return None


def read_located_yaml_file(
    path: Path, file: str, *, expected: str
) -> tuple[bytes | None, LocatedYaml | None, list[Problem]]:
    """Read and parse a YAML file; ``expected`` says what it should hold. The bytes are returned for hashing."""
    try:
        status = path.stat()
        if not stat.S_ISREG(status.st_mode):
            return None, None, [Problem(file, None, "", "not a regular file")]
        if status.st_size > MAX_YAML_BYTES:
            return None, None, [Problem(file, None, "", f"the file is {status.st_size:,} bytes; files of this kind "
                                                        f"are refused above {MAX_YAML_BYTES:,} bytes")]
        raw = path.read_bytes()
    except OSError as error:
        return None, None, [Problem(file, None, "", f"cannot read the file: {error.strerror or error}")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        return raw, None, [Problem(file, line, "", "the file is not UTF-8 text")]
    located, problems = read_located_yaml(text, file, expected=expected)
    return raw, located, problems


def _first_line(error: yaml.YAMLError) -> str:
    """PyYAML messages span several lines with a caret drawing; keep the gist on one line."""
    if isinstance(error, yaml.MarkedYAMLError):
        parts = [error.context, error.problem]
        return "; ".join(part for part in parts if part) or "unreadable YAML"
    return str(error).splitlines()[0] if str(error) else "unreadable YAML"
