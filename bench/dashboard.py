"""Dashboard benchmark: how long each page takes to render with millions of spans stored.

Builds a synthetic store (bench/synth.py, ending now so every time range has data), computes its
costs and rollups with the analytics jobs, starts a real collector on it, then renders every
page with Streamlit's AppTest against the collector's API: once cold (caches cleared) and a few
times warm. The figure is the page script's full run: API calls, DataFrames and Plotly figures.
The target is 1 s per page with 5 million spans (issue 5); this reports, it does not assert.

Usage: python -m bench.dashboard [--spans 5000000] [--db PATH] [--range "Last 24 hours"]
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from analytics.offline import DirectWriter
from analytics.runner import AnalyticsRunner, utcnow
from bench.ingest import free_port, start_collector
from bench.synth import Synth, generate
from collector.settings import Settings
from collector.store import Store

APP = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"
PAGES = ("overview", "traces", "trace", "sessions", "agents", "costs", "anomalies", "sql")
SPANS_PER_TRACE = 5.75  # bench/synth.py's average mix
TRACES_PER_MINUTE = 600  # 5M spans ≈ 24 hours of traffic


def build(db: Path, spans: int, console: Console) -> None:
    """Synthetic spans ending now, then the analytics jobs (costs, rollups) over them."""
    traces = int(spans / SPANS_PER_TRACE)
    minutes = max(60, traces // TRACES_PER_MINUTE)
    config = Synth(traces=traces, start=utcnow().replace(microsecond=0) - timedelta(minutes=minutes), minutes=minutes)
    store = Store(db)
    try:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"generating {spans:,} spans", total=None)
            made = generate(store.write_connection, config)
            progress.update(task, description=f"analytics over {made:,} spans", total=made, completed=0)
            runner = AnalyticsRunner(store, DirectWriter(store), Settings.from_env({}))
            runner.run_now(progress=lambda done, _total: progress.update(task, completed=done))
        console.print(f"built {made:,} spans ({traces:,} traces over {minutes / 60:.1f} h) in {db}")
    finally:
        store.close()


def render(page: str, state: dict[str, object], query_params: dict[str, str]) -> tuple[float, list[str]]:
    """Seconds to run one page script, and any error it showed."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=120)
    for key, value in state.items():
        at.session_state[key] = value
    at.switch_page(f"views/{page}.py")
    for key, value in query_params.items():
        at.query_params[key] = value
    started = time.perf_counter()
    at.run()
    elapsed = time.perf_counter() - started
    problems = [str(e.value) for e in at.exception] + [str(e.value) for e in at.error]
    return elapsed, problems


def measure(api: str, time_range: str, warm_runs: int, console: Console) -> Table:
    import streamlit as st
    from streamlit import logger as st_logger

    st_logger.set_log_level("error")  # AppTest runs without a server; its warnings are noise here
    # A running dashboard imports its modules (plotly, pandas) and sets up Streamlit's script
    # runner once per process, not per page view: one untimed run of the SQL page does that, so the
    # first page measured is not charged 0.5-0.8 s for it (its caches are cleared below anyway).
    for module in ("dashboard.ui", "dashboard.charts", "dashboard.messages", "plotly.express"):
        importlib.import_module(module)
    os.environ["TRACEHOUSE_API_URL"] = api
    render("sql", {"range": time_range}, {})
    started = time.perf_counter()
    body = httpx.get(f"{api}/api/traces", params={"limit": 1, "sort": "span_count"}, timeout=600).json()
    console.print(f"first API query (collector warms its trace summary): {time.perf_counter() - started:.2f} s")
    biggest = body["traces"][0]
    for path, params in (("/api/sessions", {}), ("/api/traces", {"workflow": "support"})):
        times = []
        for _ in range(3):
            started = time.perf_counter()
            answer = httpx.get(f"{api}{path}", params=params, timeout=600).json()
            times.append(time.perf_counter() - started)
        console.print(f"GET {path} {params or ''}: first page of {answer['total']:,} in "
                      f"{statistics.median(times) * 1000:.0f} ms (median of 3)")
    table = Table(title=f"Page render time, {time_range.lower()} ({body['total']:,} traces stored)")
    for column in ("page", "cold (s)", "warm median (s)", "notes"):
        table.add_column(column, justify="left" if column in ("page", "notes") else "right")
    state = {"range": time_range}
    for page in PAGES:
        params = {"trace_id": biggest["trace_id"]} if page == "trace" else {}
        st.cache_data.clear()
        cold, problems = render(page, state, params)
        warm = statistics.median(render(page, state, params)[0] for _ in range(warm_runs))
        note = f"{biggest['span_count']}-span trace" if page == "trace" else ""
        table.add_row(page, f"{cold:.3f}", f"{warm:.3f}", "; ".join(problems)[:80] or note)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=5_000_000)
    parser.add_argument("--db", type=Path, default=None, help="reuse or build this DuckDB file")
    parser.add_argument("--range", default="Last 24 hours", help="the sidebar time range to render with")
    parser.add_argument("--warm-runs", type=int, default=3)
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "dashboard-bench.duckdb"
        if not db.exists():
            build(db, args.spans, console)
        http_port = free_port()
        collector = start_collector(db, free_port(), http_port)
        try:
            console.print(measure(f"http://127.0.0.1:{http_port}", args.range, args.warm_runs, console))
        finally:
            collector.terminate()
            collector.wait(120)


if __name__ == "__main__":
    main()
