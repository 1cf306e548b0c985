"""JSON Schemas shipped with clipaudit, loaded from package data."""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

import jsonschema

from clipaudit.errors import ClipauditError

__all__ = ["load_schema", "schema_problem", "validate_document", "validate_results"]


@lru_cache(maxsize=None)
def _schema_text(name: str) -> str:
    resource = resources.files(__name__) / f"{name}.schema.json"
    if not resource.is_file():
        known = sorted(entry.name.removesuffix(".schema.json") for entry in resources.files(__name__).iterdir()
                       if entry.name.endswith(".schema.json"))
        raise ClipauditError(f"unknown schema {name!r}; known: {known}")
    return resource.read_text(encoding="utf-8")


def load_schema(name: str) -> dict[str, Any]:
    """The parsed JSON Schema ``clipaudit/schemas/<name>.schema.json`` (e.g. ``"results"``)."""
    return json.loads(_schema_text(name))


@lru_cache(maxsize=None)
def _validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(load_schema(name))


def schema_problem(doc: Any, name: str) -> str | None:
    """The most relevant violation of ``<name>.schema.json`` as ``$.path: message``, or None."""
    error = jsonschema.exceptions.best_match(_validator(name).iter_errors(doc))
    return None if error is None else f"{error.json_path}: {error.message}"


def validate_document(doc: Any, name: str) -> None:
    """Check ``doc`` against ``<name>.schema.json``; ClipauditError names ``<name>.json`` and the path."""
    problem = schema_problem(doc, name)
    if problem is not None:
        raise ClipauditError(f"{name}.json: {problem}")


def validate_results(doc: Any) -> None:
    """Check a results document against ``results.schema.json`` (draft 2020-12)."""
    validate_document(doc, "results")
