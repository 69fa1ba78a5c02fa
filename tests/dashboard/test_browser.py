"""End to end in a real headless Chromium: collector and dashboard as child processes.

What is checked is what a person sees on screen (metric tiles, table cells, the span names in
the waterfall), and screenshots land in test-artifacts/dashboard/ for a human to look at.
Uses Debian's `chromium` (never a downloaded browser) driven by Playwright's Python package.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dashboard import fmt, serve
from tests.dashboard import seed

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install -y chromium)"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[str, seed.Seeded]]:
    """Collector (`python -m collector`) + dashboard (`streamlit run`), both child processes."""
    conftest = pytest.importorskip("tests.conftest")
    if not hasattr(conftest, "start_collector_process"):
        pytest.skip("needs tests/conftest.py start_collector_process (the collector ingest path)")
    collector = conftest.start_collector_process(tmp_path / "tracehouse.duckdb")
    dashboard: subprocess.Popen[bytes] | None = None
    try:
        sent = seed.send(collector.grpc_endpoint)
        seed.wait_stored(collector.http_url, sent.spans)
        port = _free_port()
        dashboard = serve.start_dashboard(api_url=collector.http_url, port=port, host="127.0.0.1")
        url = f"http://127.0.0.1:{port}"
        assert serve.wait_until_ready(url, dashboard), "the dashboard did not start"
        yield url, sent
    finally:
        if dashboard is not None:
            dashboard.terminate()
            try:
                dashboard.wait(30)
            except subprocess.TimeoutExpired:
                dashboard.kill()
        collector.terminate()


def _metrics(page: object) -> dict[str, str]:
    tiles = page.locator("[data-testid='stMetric']")  # type: ignore[attr-defined]
    return {
        tiles.nth(i).locator("[data-testid='stMetricLabel']").inner_text().strip():
        tiles.nth(i).locator("[data-testid='stMetricValue']").inner_text().strip()
        for i in range(tiles.count())
    }


def _no_traceback(page: object) -> None:
    body = page.locator("body").inner_text()  # type: ignore[attr-defined]
    assert "Traceback" not in body and page.locator("[data-testid='stException']").count() == 0  # type: ignore[attr-defined]


def test_overview_trace_list_and_timeline_in_chromium(stack: tuple[str, seed.Seeded]) -> None:
    playwright = pytest.importorskip("playwright.sync_api", reason="needs the playwright package (dev extra)")
    url, sent = stack
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(30_000)

        page.goto(url + "/")
        page.get_by_text("Success rate").wait_for()
        page.wait_for_function("document.querySelectorAll('[data-testid=stMetric]').length >= 7")
        tiles = _metrics(page)
        total = len(sent.traces)
        assert tiles["Active agents"] == str(len(sent.agents))
        assert tiles["Success rate"] == fmt.percent((total - sent.failed_traces) / total)
        assert tiles["Tokens today"] == fmt.count(sent.tokens)
        # Top errors: the table's cells (canvas-drawn; their accessible copies hold the text).
        page.locator("[role='gridcell']", has_text="refund service timed out").first.wait_for(state="attached")
        _no_traceback(page)
        page.screenshot(path=str(ARTIFACTS / "overview.png"), full_page=True)
        # Live: the body refreshes by itself (a fragment: the sidebar and page stay put).
        stamp = page.get_by_text("Updated ").first.inner_text()
        page.wait_for_function(
            "s => [...document.querySelectorAll('[data-testid=stCaptionContainer]')]"
            ".some(e => e.innerText.startsWith('Updated ') && e.innerText !== s)", arg=stamp, timeout=20_000)

        # A bookmarked /overview opens the overview, not Streamlit's "Page not found".
        page.goto(url + "/overview")
        page.get_by_text("Success rate").wait_for()
        assert page.get_by_text("Page not found").count() == 0

        page.get_by_role("link", name="Traces").first.click()
        page.get_by_text(f"{total} traces · showing").wait_for()
        cells = page.locator("[data-testid='stDataFrame'] [role='gridcell']")
        cells.first.wait_for(state="attached")
        seen = {cells.nth(i).text_content() for i in range(cells.count())}
        assert {"refund-flow", "research-run", "bulk-crawl"} <= seen
        page.screenshot(path=str(ARTIFACTS / "traces.png"), full_page=True)

        # Select the newest trace (the 2,000-span crawl) by its row marker, as a person would.
        grid = page.locator("[data-testid='stDataFrame'] canvas").first.bounding_box()
        page.mouse.click(grid["x"] + 18, grid["y"] + 35 + 17)
        page.wait_for_url(f"**/trace?trace_id={sent.traces['big']}")
        page.locator(".js-plotly-plot").first.wait_for()
        page.get_by_text("fetch_page_0000").first.wait_for()
        assert _metrics(page)["Spans"] == fmt.count(seed.BIG_TRACE_SPANS)
        _no_traceback(page)
        page.screenshot(path=str(ARTIFACTS / "trace-2000-spans.png"), full_page=True)

        page.goto(f"{url}/trace?trace_id={sent.traces['refund']}")
        page.locator(".js-plotly-plot").first.wait_for()
        svg = page.locator(".js-plotly-plot").first
        for name in ("refund-flow", "invoke_agent triage", "chat gpt-4.1", "handoff triage -> billing",
                     "execute_tool lookup_order"):
            assert name in svg.inner_text(), name
        # The first LLM call is shown first; clicking billing's LLM bar shows that call instead.
        page.get_by_text(seed.USER_QUESTION).first.wait_for()
        assert page.get_by_text("Look up order 1234").count() == 0
        bar = page.locator(".js-plotly-plot .barlayer .point").nth(6).bounding_box()  # rows in tree order
        page.mouse.click(bar["x"] + bar["width"] / 2, bar["y"] + bar["height"] / 2)
        page.get_by_text("Look up order 1234").first.wait_for()
        page.get_by_text("Order 1234 shipped.").first.wait_for(state="attached")
        _no_traceback(page)
        page.screenshot(path=str(ARTIFACTS / "trace.png"), full_page=True)
        browser.close()
