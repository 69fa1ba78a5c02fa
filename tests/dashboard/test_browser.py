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
from tests.dashboard.glyphs import pictographs

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


@contextmanager
def _stack(tmp_path: Path, **collector_env: str) -> Iterator[tuple[str, seed.Seeded, str]]:
    """Collector (`python -m collector`) + dashboard (`streamlit run`), both child processes:
    (dashboard URL, what was sent, collector URL)."""
    conftest = pytest.importorskip("tests.conftest")
    if not hasattr(conftest, "start_collector_process"):
        pytest.skip("needs tests/conftest.py start_collector_process (the collector ingest path)")
    collector = conftest.start_collector_process(tmp_path / "tracehouse.duckdb", analytics_interval_s="0",
                                                 **collector_env)
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


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[str, seed.Seeded, str]]:
    """The seeded stack. The analytics jobs run only when a test asks (POST /api/analytics/run),
    so until then no cost is computed."""
    with _stack(tmp_path) as running:
        yield running


def _metrics(page: object) -> dict[str, str]:
    tiles = page.locator("[data-testid='stMetric']")  # type: ignore[attr-defined]
    return {
        tiles.nth(i).locator("[data-testid='stMetricLabel']").inner_text().strip():
        tiles.nth(i).locator("[data-testid='stMetricValue']").inner_text().strip()
        for i in range(tiles.count())
    }


# Labels of metric tiles that the page cuts short ("Active ag…"): text wider than its box.
CUT_LABELS = """() => [...document.querySelectorAll('[data-testid=stMetricLabel]')]
  .filter(l => [l, ...l.querySelectorAll('*')].some(e => e.scrollWidth > e.clientWidth + 1))
  .map(l => l.innerText.trim())"""


def _cut_labels(page: object, width: int = 1280) -> list[str]:
    """The metric labels cut short on a ``width``-pixel-wide window (a laptop's)."""
    page.set_viewport_size({"width": width, "height": 1000})  # type: ignore[attr-defined]
    page.wait_for_timeout(500)  # type: ignore[attr-defined]  # the layout after the resize
    cut = page.evaluate(CUT_LABELS)  # type: ignore[attr-defined]
    page.set_viewport_size({"width": 1600, "height": 1000})  # type: ignore[attr-defined]
    return cut


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
        assert _cut_labels(page) == []  # seven tiles in one row cut every label short at 1280 px
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
        assert _cut_labels(page) == []
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
# the canvas shows there. This records every string drawn on a canvas (what a person reads) and
# the colour it was last drawn in.
RECORD_CANVAS_TEXT = """
window.__drawn = new Set();
window.__fills = {};
const fillText = CanvasRenderingContext2D.prototype.fillText;
CanvasRenderingContext2D.prototype.fillText = function (text, ...rest) {
  window.__drawn.add(String(text));
  window.__fills[String(text)] = String(this.fillStyle);
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


@pytest.fixture
def alerting_stack(tmp_path: Path) -> Iterator[tuple[str, seed.Seeded, str]]:
    """The seeded stack with an alert rule of every severity, each fired by the traffic."""
    rules = pytest.importorskip("analytics.rules", reason="needs the analytics jobs (alert rules)")
    (tmp_path / "rules.toml").write_text(seed.severity_rules(rules.SEVERITIES))
    with _stack(tmp_path, rules_file=str(tmp_path / "rules.toml")) as running:
        response = httpx.post(f"{running[2]}/api/analytics/run", timeout=120)
        assert response.status_code == 200, response.text
        yield running


def test_alert_severities_read_as_words_in_their_colours_without_an_emoji_font(
        alerting_stack: tuple[str, seed.Seeded, str]) -> None:
    """Debian's chromium here has no emoji font (as on servers and many desktops): an emoji marker
    is drawn as an empty box. Each severity is its word, most severe first, coloured by its cell."""
    most_severe_first = list(reversed(pytest.importorskip("analytics.rules").SEVERITIES))
    url, sent, _ = alerting_stack
    with _browser() as page:
        page.add_init_script(RECORD_CANVAS_TEXT)
        drawn = _table_text(page, f"{url}/anomalies", "firing", *(f"TRAFFIC_{s.upper()}" for s in most_severe_first))
        assert not {c for text in drawn for c in pictographs(text)}
        assert set(most_severe_first) <= drawn  # each severity a cell of its own word
        # The other cells read as before: a rule's value is the trace count, not 4.000000.
        assert str(len(sent.traces)) in drawn and "None" not in drawn
        assert not [t for t in drawn if t.endswith(".000000")]
        assert not pictographs(page.locator("body").inner_text())
        cells = page.locator("[data-testid='stDataFrame']").first.locator("[role='gridcell']")
        words = [t for t in (cells.nth(i).text_content() for i in range(cells.count())) if t in most_severe_first]
        assert set(words) == set(most_severe_first) and words == sorted(words, key=most_severe_first.index)
        fills = page.evaluate("window.__fills")
        plain = fills["firing"]  # the state column's words: the table's own text colour
        colours = [fills[word].lower() for word in most_severe_first]
        assert plain not in colours and len(set(colours)) == len(colours)  # each severity its own colour
        assert colours == [fmt.LEVEL_CSS[w].split(";")[0].removeprefix("color:").strip().lower()
                           for w in most_severe_first]
