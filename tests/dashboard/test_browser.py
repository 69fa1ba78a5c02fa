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
from contextlib import contextmanager
from pathlib import Path

import httpx
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
def stack(tmp_path: Path) -> Iterator[tuple[str, seed.Seeded, str]]:
    """Collector (`python -m collector`) + dashboard (`streamlit run`), both child processes:
    (dashboard URL, what was sent, collector URL). The analytics jobs run only when a test asks
    (POST /api/analytics/run), so until then no cost is computed."""
    conftest = pytest.importorskip("tests.conftest")
    if not hasattr(conftest, "start_collector_process"):
        pytest.skip("needs tests/conftest.py start_collector_process (the collector ingest path)")
    collector = conftest.start_collector_process(tmp_path / "tracehouse.duckdb", analytics_interval_s="0")
    dashboard: subprocess.Popen[bytes] | None = None
    try:
        sent = seed.send(collector.grpc_endpoint)
        seed.wait_stored(collector.http_url, sent.spans)
        port = _free_port()
        dashboard = serve.start_dashboard(api_url=collector.http_url, port=port, host="127.0.0.1")
        url = f"http://127.0.0.1:{port}"
        assert serve.wait_until_ready(url, dashboard), "the dashboard did not start"
        yield url, sent, collector.http_url
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


@contextmanager
def _browser() -> Iterator[object]:
    """Headless Chromium (Debian's) and a desktop-sized page; screenshots go to ARTIFACTS."""
    playwright = pytest.importorskip("playwright.sync_api", reason="needs the playwright package (dev extra)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(30_000)
        try:
            yield page
        finally:
            browser.close()


def test_overview_trace_list_and_timeline_in_chromium(stack: tuple[str, seed.Seeded, str]) -> None:
    url, sent, _ = stack
    with _browser() as page:
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


# Tables are drawn on a canvas (Glide data grid): their DOM copies leave a NULL cell empty whatever
# the canvas shows there. This records every string drawn on a canvas: what a person reads.
RECORD_CANVAS_TEXT = """
window.__drawn = new Set();
const fillText = CanvasRenderingContext2D.prototype.fillText;
CanvasRenderingContext2D.prototype.fillText = function (text, ...rest) {
  window.__drawn.add(String(text));
  return fillText.call(this, text, ...rest);
};
"""


def _table_text(page: object, url: str, *shown: str, expand: str | None = None) -> set[str]:
    """Open ``url`` (and the expander labelled ``expand``) and return the text drawn in its tables
    once every string of ``shown`` is."""
    page.goto(url)  # type: ignore[attr-defined]
    if expand:
        page.get_by_text(expand).click()  # type: ignore[attr-defined]
    page.locator("[data-testid='stDataFrame'] canvas").first.wait_for()  # type: ignore[attr-defined]
    page.wait_for_function("want => want.every(t => window.__drawn.has(t))", arg=list(shown))  # type: ignore[attr-defined]
    page.wait_for_timeout(500)  # type: ignore[attr-defined]  # the remaining cells of the same frame
    _no_traceback(page)
    return set(page.evaluate("[...window.__drawn]"))  # type: ignore[attr-defined]


def test_tables_show_a_dash_never_none_for_missing_values(stack: tuple[str, seed.Seeded, str]) -> None:
    """A cost the analytics have not computed (or cannot: an unpriced model), a trace without a
    session: the cell shows fmt.MISSING, and the column stays a number column."""
    url, _, collector_url = stack
    with _browser() as page:
        page.add_init_script(RECORD_CANVAS_TEXT)

        # Before the analytics jobs ran: no cost is known yet on any page.
        for path, shown in (("sessions", (seed.SESSION, "Cost")), ("traces", ("refund-flow", "Cost")),
                            ("agents", ("billing", "Cost"))):
            drawn = _table_text(page, f"{url}/{path}", *shown)
            assert "None" not in drawn, path
            assert fmt.MISSING in drawn, path  # the cost cells (and a trace's missing session)
            page.screenshot(path=str(ARTIFACTS / f"{path}-cost-not-computed.png"), full_page=True)

        response = httpx.post(f"{collector_url}/api/analytics/run", timeout=120)
        assert response.status_code == 200, response.text

        # Costs computed (the page's first visit: nothing cached from before): priced models show
        # dollars in the same number column where the unpriced model's cost stays unknown.
        drawn = _table_text(page, f"{url}/costs", "mystery-model-x", "gpt-4.1", expand="Token and cost table by model")
        assert "None" not in drawn and fmt.MISSING in drawn
        assert any(t.startswith("$") for t in drawn)
        page.screenshot(path=str(ARTIFACTS / "costs-unpriced-model.png"), full_page=True)
