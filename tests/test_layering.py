"""Imports flow one way: down the data flow, never up, never into the package root.

The layer order is declared here, once; docs/internals.md draws it. A top-level module or
package of clipaudit may import its own submodules and anything in a lower layer. Modules of
one layer do not import each other (the jobs are independent; the stages below them too).
A new top-level module must be placed in a layer, or this test fails.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "clipaudit"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("version", "errors", "vocabulary", "format"),       # words and rules every layer shares
    ("files", "located_yaml", "schemas", "progress"),                 # reading and writing files safely
    ("documents",),                                       # the envelope of every output document
    ("taxonomy", "data"),                                 # inputs: what to ask, and of which images
    ("models",),                                          # the model adapters
    ("embed",),                                           # the embedding engine and its cache
    ("score", "predictions"),                             # zero-shot scores -> the predictions table
    ("stats",),                                           # predictions -> numbers (torch-free)
    ("report",),                                          # numbers -> HTML, Markdown, JUnit, model-index
    ("pipeline",),                                        # what the jobs share
    ("audit", "restats", "sweep", "compare", "validate", "demo"),  # the jobs
    ("lineup",),                                          # several audits side by side, on compare's pairing
    ("cli",),                                             # the command line
    ("__main__",),                                        # python -m clipaudit
)
LAYER_OF = {unit: index for index, units in enumerate(LAYERS) for unit in units}


def _unit(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0].removesuffix(".py")


def _module_name(path: Path) -> list[str]:
    parts = ["clipaudit", *path.relative_to(PACKAGE).with_suffix("").parts]
    return parts[:-1] if parts[-1] == "__init__" else parts


def _package_of(path: Path) -> list[str]:
    return _module_name(path) if path.name == "__init__.py" else _module_name(path)[:-1]


def _imported_modules(source: str, package: list[str]) -> list[tuple[int, str]]:
    """Every clipaudit module named by an import statement (relative ones resolved against ``package``)."""
    tree = ast.parse(source)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module == "clipaudit" or (node.level and not node.module):
                # `from clipaudit import x` / `from . import x`: x may be a submodule
                found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, module))
    return [(line, name) for line, name in found if name == "clipaudit" or name.startswith("clipaudit.")]


SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if "assets" not in p.parts)


def test_every_top_level_module_has_a_layer():
    units = {_unit(path) for path in SOURCES} - {"__init__"}
    assert not units - set(LAYER_OF), f"place these in LAYERS: {sorted(units - set(LAYER_OF))}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_go_down_the_layers(path):
    unit = _unit(path)
    if unit == "__init__":
        return  # the package root re-exports lazily (by name, not by import statement)
    problems = []
    for line, module in _imported_modules(path.read_text(encoding="utf-8"), _package_of(path)):
        parts = module.split(".")
        if len(parts) == 1 or parts[1] not in LAYER_OF:
            problems.append(f"line {line}: imports the package root ({module}); import the module that defines it")
            continue
        target = parts[1]
        if target != unit and LAYER_OF[target] >= LAYER_OF[unit]:
            problems.append(f"line {line}: {unit} (layer {LAYER_OF[unit]}) imports {module} (layer {LAYER_OF[target]})")
    assert not problems, "\n".join(problems)


def test_the_layering_test_sees_bad_imports():
    """The checker itself: upward, relative and root imports, and those inside functions, are all seen."""
    source = ("from clipaudit.report import render_report\nimport clipaudit\n"
              "def f():\n    from ..report import view\n    from . import engine\n")
    found = [module for _, module in _imported_modules(source, ["clipaudit", "stats"])]
    assert found == ["clipaudit.report", "clipaudit", "clipaudit.report", "clipaudit.stats.engine"]
