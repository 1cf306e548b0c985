"""JSON Schemas shipped with clipaudit, loaded from package data."""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

import jsonschema

from clipaudit.errors import ClipauditError

__all__ = ["load_schema", "validate_document", "validate_results"]


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


def validate_results(doc: dict[str, Any]) -> None:
    """Check a results document against ``results.schema.json`` (draft 2020-12).

    Raises :class:`~clipaudit.errors.ClipauditError` naming the path of the most
    relevant violation, e.g. ``results.json: $.probes[0].slices[1].id: 3 is not of type 'string'``.
    """
    validate_document(doc, "results")


def validate_document(doc: dict[str, Any], name: str) -> None:
    """Check ``doc`` against ``<name>.schema.json``; ClipauditError names ``<name>.json`` and the path."""
    validator = jsonschema.Draft202012Validator(load_schema(name))
    error = jsonschema.exceptions.best_match(validator.iter_errors(doc))
    if error is not None:
        raise ClipauditError(f"{name}.json: {error.json_path}: {error.message}")
