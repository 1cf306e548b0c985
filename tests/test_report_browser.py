"""The report in a real browser: headless Chromium loads it offline, and we watch what it does.

Chromium is driven over the DevTools protocol through ``--remote-debugging-pipe`` (JSON
messages separated by NUL bytes on file descriptors 3 and 4), so no websocket library is
needed. The page must load with no console error, no exception and no network request
other than itself; the screenshot must not be blank; tables, figures and headings must be
in the rendered DOM; the hostile class name must be text, not markup.

Chromium missing: the test skips on a developer machine, and fails when ``CI`` is set
(``.ci/run`` installs the Debian package ``chromium``).
"""
from __future__ import annotations

import base64
import fcntl
import io
import json
import os
import select
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import report_fixtures
from clipaudit.report import write_report
from test_report import SECTION_HEADINGS, XSS_CLASS

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--mute-audio",
    # Any host name resolves to nothing: were the page to reach out, the request fails (and is logged).
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--window-size=1280,900",
    "--remote-debugging-pipe",
)
TIMEOUT_S = 20.0


def find_chromium() -> str | None:
    for candidate in CHROMIUM_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


class DevToolsPipe:
    """A minimal DevTools protocol client over Chromium's --remote-debugging-pipe."""

    def __init__(self, executable: str, user_data_dir: Path, log_path: Path) -> None:
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()

        def wire_pipes() -> None:
            # In the child: Chromium reads fd 3 and writes fd 4. Move both ends above 9 first,
            # so that one dup2 can never overwrite the other's source.
            high_read = fcntl.fcntl(to_browser_read, fcntl.F_DUPFD, 10)
            high_write = fcntl.fcntl(from_browser_write, fcntl.F_DUPFD, 10)
            os.dup2(high_read, 3)
            os.dup2(high_write, 4)

        self._log = open(log_path, "wb")  # Chromium's own stderr, for diagnosis; never read while running
        self.process = subprocess.Popen(
            [executable, *CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}", "about:blank"],
            pass_fds=(3, 4),  # kept open through close_fds; wire_pipes runs before the close
            preexec_fn=wire_pipes,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode("utf-8") + b"\0")
        return self._next_id

    def receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([self._from_browser], [], [], max(0.0, remaining))
            if not ready:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise EOFError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict[str, Any]:
        message_id = self.send(method, params, session)
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            message = self.receive(deadline)
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (TimeoutError, EOFError, RuntimeError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self._log.close()
        for descriptor in (self._to_browser, self._from_browser):
            try:
                os.close(descriptor)
            except OSError:
                pass


@dataclass
class PageVisit:
    url: str
    dom: dict[str, Any]
    screenshot_png: bytes
    pdf: bytes
    events: list[dict[str, Any]] = field(default_factory=list)

    def of(self, method: str) -> list[dict[str, Any]]:
        return [event["params"] for event in self.events if event.get("method") == method]


DOM_PROBE = """JSON.stringify({
  title: document.title,
  tables: document.querySelectorAll('table').length,
  tables_without_th: [...document.querySelectorAll('table')].filter(t => !t.querySelector('th')).length,
  figures: document.querySelectorAll('figure').length,
  figure_svgs: document.querySelectorAll('figure svg[role=img][aria-label]').length,
  svgs_drawn: [...document.querySelectorAll('figure svg')].filter(s => s.getBoundingClientRect().width > 100).length,
  h2: [...document.querySelectorAll('main h2')].map(h => h.textContent.trim()),
  scripts: document.querySelectorAll('script').length,
  class_ids: [...document.querySelectorAll('table.classes tbody th')].map(th => th.textContent),
  findings_links: [...document.querySelectorAll('ol.findings a')].filter(a => document.querySelector(a.getAttribute('href'))).length,
  findings: document.querySelectorAll('ol.findings li').length,
  body_height: document.body.scrollHeight,
})"""


CANARY_PAGE = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>canary</title></head>
<body><p>canary</p><img alt="" src="http://example.invalid/pixel.png"><script>console.error("canary")</script></body></html>
"""


def _open_page(browser: DevToolsPipe, page: Path) -> tuple[str, str]:
    """Open ``page`` in a new tab with the domains we watch enabled; (session id, url)."""
    target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network"):
        browser.call(f"{domain}.enable", session=session)
    url = page.resolve().as_uri()
    browser.call("Page.navigate", {"url": url}, session=session)
    while not any(e.get("method") == "Page.loadEventFired" and e.get("sessionId") == session for e in browser.events):
        browser.events.append(browser.receive(time.monotonic() + TIMEOUT_S))
    return session, url


def _session_events(browser: DevToolsPipe, session: str) -> list[dict[str, Any]]:
    return [event for event in browser.events if event.get("sessionId") == session]


@pytest.fixture(scope="module")
def visits(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PageVisit, PageVisit]]:
    """The report, and a canary page that does everything the report must not (to prove we would notice)."""
    folder = tmp_path_factory.mktemp("browser")
    results = report_fixtures.build()
    page = folder / "report.html"
    write_report(results, page)
    canary = folder / "canary.html"
    canary.write_text(CANARY_PAGE, encoding="utf-8")
    browser = DevToolsPipe(chromium, folder / "profile", folder / "chromium.log")
    try:
        session, url = _open_page(browser, page)
        dom = json.loads(browser.call("Runtime.evaluate", {"expression": DOM_PROBE, "returnByValue": True},
                                      session=session)["result"]["value"])
        screenshot = base64.b64decode(browser.call("Page.captureScreenshot", {"format": "png"}, session=session)["data"])
        pdf = base64.b64decode(browser.call("Page.printToPDF", {"printBackground": False}, session=session)["data"])
        canary_session, canary_url = _open_page(browser, canary)
        # A round trip on each tab lets late events (a failed fetch, a console message) arrive before judging.
        browser.call("Runtime.evaluate", {"expression": "1"}, session=canary_session)
        browser.call("Runtime.evaluate", {"expression": "1"}, session=session)
        report_visit = PageVisit(url=url, dom=dom, screenshot_png=screenshot, pdf=pdf,
                                 events=_session_events(browser, session))
        canary_visit = PageVisit(url=canary_url, dom={}, screenshot_png=b"", pdf=b"",
                                 events=_session_events(browser, canary_session))
        yield report_visit, canary_visit
    finally:
        browser.close()


@pytest.fixture(scope="module")
def visit(visits: tuple[PageVisit, PageVisit]) -> PageVisit:
    return visits[0]


def console_errors(visit: PageVisit) -> list[Any]:
    return (
        [event for event in visit.of("Runtime.consoleAPICalled") if event.get("type") in {"error", "assert"}]
        + [event["entry"] for event in visit.of("Log.entryAdded") if event["entry"].get("level") == "error"]
        + visit.of("Runtime.exceptionThrown")
    )


def network_requests(visit: PageVisit) -> list[str]:
    """URLs the page asked for, other than itself and inline data: URLs."""
    requested = [event["request"]["url"] for event in visit.of("Network.requestWillBeSent")]
    return [url for url in requested if url != visit.url and not url.startswith("data:")]


def test_harness_notices_console_errors_and_requests(visits: tuple[PageVisit, PageVisit]) -> None:
    _, canary = visits
    assert console_errors(canary), "the canary's console.error was not seen"
    assert "http://example.invalid/pixel.png" in network_requests(canary)


def test_page_loads_without_console_errors_or_exceptions(visit: PageVisit) -> None:
    assert console_errors(visit) == []


def test_page_makes_no_network_requests(visit: PageVisit) -> None:
    requested = [event["request"]["url"] for event in visit.of("Network.requestWillBeSent")]
    assert visit.url in requested, "the navigation itself should have been seen"
    assert network_requests(visit) == []
    assert visit.of("Network.loadingFailed") == []


def test_rendered_dom_has_sections_tables_and_figures(visit: PageVisit) -> None:
    dom = visit.dom
    assert dom["h2"] == SECTION_HEADINGS
    assert dom["scripts"] == 0
    assert dom["tables"] >= 19 and dom["tables_without_th"] == 0
    # 11 bar charts, 4 race x gender heatmaps, 1 confusion matrix; each drawn with an accessible name.
    assert dom["figures"] == dom["figure_svgs"] == 16
    assert dom["svgs_drawn"] == 16
    assert dom["findings"] == 3 and dom["findings_links"] == 3  # one per disparity
    assert dom["body_height"] > 3000


def test_hostile_class_name_is_shown_as_text(visit: PageVisit) -> None:
    assert XSS_CLASS in visit.dom["class_ids"]
    assert visit.of("Runtime.consoleAPICalled") == []  # alert(1) never ran, nor anything else


def test_screenshot_is_not_blank(visit: PageVisit) -> None:
    from PIL import Image, ImageStat

    image = Image.open(io.BytesIO(visit.screenshot_png)).convert("L")
    assert image.size[0] >= 800 and image.size[1] >= 600
    histogram = image.histogram()
    dark_share = sum(histogram[:128]) / (image.size[0] * image.size[1])
    assert ImageStat.Stat(image).stddev[0] > 10, "screenshot is a flat colour"
    assert 0.005 < dark_share < 0.5, f"unexpected share of dark pixels: {dark_share:.3f}"


def test_page_prints_to_pdf(visit: PageVisit) -> None:
    assert visit.pdf.startswith(b"%PDF")
    assert visit.pdf.count(b"/Type /Page") - visit.pdf.count(b"/Type /Pages") >= 3
