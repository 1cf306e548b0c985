"""The report's layout, measured in headless Chromium at 1024 px wide (the narrowest desktop).

On the demo's report (reports/example/report.html, which test_report_gold keeps equal to what
the code renders), on the several-models page (reports/example-models/models.html) and on a
failed regression check's compare.html (no table or page wider than the window):
- no table and no page wider than the window, with every <details> closed and then opened;
- the verdict and the scorecard within the first 1,000 px;
- the demo's page at most a third of the 41,856 px it measured before issue 13;
- no two text labels of a chart overlapping, and none outside its chart;
- printed, nothing inside a folded <details> left off the paper.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from test_report_browser import TIMEOUT_S, DevToolsPipe

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_REPORT = REPO_ROOT / "reports" / "example" / "report.html"
MODELS_REPORT = REPO_ROOT / "reports" / "example-models" / "models.html"
WIDTH = 1024
HEIGHT_BEFORE_ISSUE_13 = 41_856

MEASURE = """(() => {
  const viewport = document.documentElement.clientWidth;
  const top = (selector) => { const e = document.querySelector(selector); return e ? e.getBoundingClientRect().top + scrollY : null; };
  const bottom = (selector) => { const e = document.querySelector(selector); return e ? e.getBoundingClientRect().bottom + scrollY : null; };
  const overflowing = () => [...document.querySelectorAll('table')].filter(table => {
    const box = table.getBoundingClientRect();
    if (box.width === 0) return false;
    const holder = table.parentElement;
    return box.right > viewport + 0.5 || table.scrollWidth > holder.clientWidth + 0.5;
  }).map(table => (table.querySelector('caption') || table).textContent.trim().slice(0, 90));
  const closed = {
    height: document.documentElement.scrollHeight,
    page_overflow: document.documentElement.scrollWidth - viewport,
    tables_overflowing: overflowing(),
    verdict_top: top('.verdict'), scorecard_top: top('#scorecard'), scorecard_bottom: bottom('#scorecard'),
  };
  document.querySelectorAll('details').forEach(details => { details.open = true; });
  const overlaps = [];
  let texts = 0, charts = 0;
  for (const svg of document.querySelectorAll('svg.chart')) {
    const frame = svg.getBoundingClientRect();
    if (frame.width === 0) continue;
    charts += 1;
    const boxes = [...svg.querySelectorAll('text')].map(t => [t.textContent, t.getBoundingClientRect()]);
    texts += boxes.length;
    for (const [label, box] of boxes) {
      if (box.left < frame.left - 1 || box.right > frame.right + 1 || box.top < frame.top - 1 || box.bottom > frame.bottom + 1)
        overlaps.push(`${svg.id}: '${label}' outside the chart`);
    }
    for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
      const [a, p] = boxes[i], [b, q] = boxes[j];
      const w = Math.min(p.right, q.right) - Math.max(p.left, q.left), h = Math.min(p.bottom, q.bottom) - Math.max(p.top, q.top);
      if (w > 1 && h > 1) overlaps.push(`${svg.id}: '${a}' overlaps '${b}'`);
    }
  }
  return JSON.stringify({closed, opened: {
    page_overflow: document.documentElement.scrollWidth - viewport,
    tables_overflowing: overflowing(), charts, texts, overlaps,
  }});
})()"""


HIDDEN_WHEN_PRINTED = """[...document.querySelectorAll('details:not([open]) > :not(summary)')]
  .filter(element => !element.checkVisibility()).length"""


def measure(executable: str, page: Path, folder: Path) -> dict[str, Any]:
    browser = DevToolsPipe(executable, folder / "profile", folder / "chromium.log")
    try:
        target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        browser.call("Page.enable", session=session)
        browser.call("Emulation.setDeviceMetricsOverride",
                     {"width": WIDTH, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session=session)
        browser.call("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
        while not any(e.get("method") == "Page.loadEventFired" for e in browser.events):
            browser.events.append(browser.receive(time.monotonic() + TIMEOUT_S))
        # Printed first, every <details> closed as a reader leaves them: what of them would the paper miss?
        browser.call("Emulation.setEmulatedMedia", {"media": "print"}, session=session)
        hidden = browser.call("Runtime.evaluate", {"expression": HIDDEN_WHEN_PRINTED, "returnByValue": True},
                              session=session)["result"]["value"]
        browser.call("Emulation.setEmulatedMedia", {"media": ""}, session=session)
        result = browser.call("Runtime.evaluate", {"expression": MEASURE, "returnByValue": True}, session=session)
        return {**json.loads(result["result"]["value"]), "hidden_when_printed": hidden}
    finally:
        browser.close()


@pytest.fixture(scope="module")
def demo_layout(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return measure(chromium, DEMO_REPORT, tmp_path_factory.mktemp("layout"))


@pytest.fixture(scope="module")
def models_layout(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return measure(chromium, MODELS_REPORT, tmp_path_factory.mktemp("layout-models"))


def test_folded_sections_print(demo_layout: dict[str, Any], models_layout: dict[str, Any]) -> None:
    assert demo_layout["hidden_when_printed"] == 0
    assert models_layout["hidden_when_printed"] == 0


def test_no_table_overflows_at_1024_px(demo_layout: dict[str, Any]) -> None:
    for state in ("closed", "opened"):
        assert demo_layout[state]["page_overflow"] <= 0, state
        assert demo_layout[state]["tables_overflowing"] == [], state


def test_verdict_and_scorecard_within_the_first_1000_px(demo_layout: dict[str, Any]) -> None:
    closed = demo_layout["closed"]
    assert closed["verdict_top"] is not None and closed["verdict_top"] < closed["scorecard_top"]
    assert closed["scorecard_bottom"] <= 1000, closed


def test_demo_report_is_at_most_a_third_of_its_old_height(demo_layout: dict[str, Any]) -> None:
    assert demo_layout["closed"]["height"] <= HEIGHT_BEFORE_ISSUE_13 / 3, demo_layout["closed"]["height"]


def test_chart_labels_never_overlap(demo_layout: dict[str, Any]) -> None:
    opened = demo_layout["opened"]
    assert opened["charts"] >= 24 and opened["texts"] > 500  # every chart was drawn and measured
    assert opened["overlaps"] == []


def test_models_page_fits_1024_px(models_layout: dict[str, Any]) -> None:
    for state in ("closed", "opened"):
        assert models_layout[state]["page_overflow"] <= 0, state
        assert models_layout[state]["tables_overflowing"] == [], state
    assert models_layout["opened"]["overlaps"] == []


@pytest.fixture(scope="module")
def compare_layout(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """compare.html of a failed regression check (a planted worsening, a hostile group name)."""
    import yaml

    import report_fixtures
    from clipaudit.compare import run_compare
    from clipaudit.report.compare_view import render_compare_html
    from test_report_compare_exports import HOSTILE, THRESHOLDS, _worse, _write_audit

    root = tmp_path_factory.mktemp("layout-compare")
    taxonomy_path = root / "taxonomy.yaml"
    taxonomy_path.write_text(yaml.safe_dump(report_fixtures.taxonomy_document(), sort_keys=False), encoding="utf-8")
    baseline = report_fixtures.predictions_table(rename={"Black": HOSTILE})
    (root / "thresholds.yaml").write_text(THRESHOLDS, encoding="utf-8")
    comparison = run_compare(_write_audit(root / "baseline", baseline, taxonomy_path),
                             _write_audit(root / "candidate", _worse(baseline), taxonomy_path),
                             thresholds=root / "thresholds.yaml")
    page = root / "compare.html"
    page.write_text(render_compare_html(comparison.to_dict()), encoding="utf-8")
    return measure(chromium, page, root)


def test_the_compare_page_fits_1024_px(compare_layout: dict[str, Any]) -> None:
    for state in ("closed", "opened"):
        assert compare_layout[state]["page_overflow"] <= 0, state
        assert compare_layout[state]["tables_overflowing"] == [], state
