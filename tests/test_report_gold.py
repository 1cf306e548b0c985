"""reports/example/ is what the current code generates for `clipaudit demo` (gold files).

Regenerate after a deliberate change with:

    clipaudit demo --out reports/example

Volatile manifest fields (timestamps, versions, timings, cache and checkout paths) are
scrubbed before comparing; everything else must match.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from clipaudit.report import render_model_index, render_report, render_summary_markdown
from test_report_paths import absolute_paths_in

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = REPO_ROOT / "reports" / "example"
SCRUBBED = "<scrubbed>"
VOLATILE_MANIFEST_KEYS = ("created_at", "clipaudit_version", "python", "timings",
                          "image_embeddings_from_cache")
REGENERATE = "clipaudit demo --out reports/example"


def scrub(results: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``results`` with the fields that change from run to run replaced by a marker."""
    scrubbed = json.loads(json.dumps(results))
    manifest = scrubbed.get("manifest", {})
    for key in VOLATILE_MANIFEST_KEYS:
        if key in manifest:
            manifest[key] = SCRUBBED
    taxonomy = manifest.get("taxonomy", {})
    # Where the checkout lives is not part of the result; the sha256 next to each path is.
    for holder in [taxonomy, *taxonomy.get("parts", [])]:
        if isinstance(holder, dict) and holder.get("path"):
            holder["path"] = Path(holder["path"]).name
    return scrubbed


def assert_same(expected: Any, actual: Any, where: str = "results") -> None:
    """Equal, with floats compared to 1e-9 relative (last-bit differences between machines)."""
    if isinstance(expected, float) or isinstance(actual, float):
        assert isinstance(actual, (int, float)) and isinstance(expected, (int, float)), where
        assert math.isclose(expected, actual, rel_tol=1e-9, abs_tol=1e-12), f"{where}: {expected} != {actual}"
    elif isinstance(expected, dict):
        assert isinstance(actual, dict) and list(expected) == list(actual), f"{where}: keys differ"
        for key in expected:
            assert_same(expected[key], actual[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(expected) == len(actual), f"{where}: lengths differ"
        for index, (left, right) in enumerate(zip(expected, actual)):
            assert_same(left, right, f"{where}[{index}]")
    else:
        assert expected == actual, f"{where}: {expected!r} != {actual!r}"


@pytest.fixture(scope="module")
def example_results() -> dict[str, Any]:
    path = EXAMPLE / "results.json"
    if not path.exists():
        pytest.fail(f"{path} is missing; generate it with: {REGENERATE}")
    return json.loads(path.read_text(encoding="utf-8"))


def test_example_files_are_rendered_from_its_results(example_results: dict[str, Any]) -> None:
    """The committed report, summary and model index are exactly what the renderers make now."""
    expected = {
        "report.html": render_report(example_results),
        "summary.md": render_summary_markdown(example_results),
        "model-index.yaml": render_model_index(example_results),
    }
    for name, text in expected.items():
        committed = (EXAMPLE / name).read_text(encoding="utf-8")
        assert committed == text, f"reports/example/{name} is stale; regenerate with: {REGENERATE}"


def test_example_is_what_the_demo_generates(example_results: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "demo"
    environment = {**os.environ, "CLIPAUDIT_CACHE_DIR": str(tmp_path / "cache")}
    completed = subprocess.run(
        [sys.executable, "-m", "clipaudit", "demo", "--out", str(out), "--cache-dir", str(tmp_path / "cache")],
        cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    fresh = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert_same(scrub(example_results), scrub(fresh))
    for name in ("results.json", "report.html", "summary.md", "model-index.yaml"):
        # Paths are relative to the output folder (the cache folder, the taxonomy files); none is absolute.
        text = (out / name).read_text(encoding="utf-8")
        assert str(tmp_path) not in text and absolute_paths_in(text) == [], name
    for name in ("summary.md", "model-index.yaml"):
        # Neither shows a volatile field, so they match byte for byte.
        assert (out / name).read_text(encoding="utf-8") == (EXAMPLE / name).read_text(encoding="utf-8"), name
    if (EXAMPLE / "predictions.parquet").exists():
        columns = ["probe", "image_id", "target", "prediction"]
        committed = pd.read_parquet(EXAMPLE / "predictions.parquet", columns=columns)
        regenerated = pd.read_parquet(out / "predictions.parquet", columns=columns)
        pd.testing.assert_frame_equal(committed, regenerated)
