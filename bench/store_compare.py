"""Store comparison: the same OTLP load through a real collector on DuckDB and on ClickHouse (chdb).

For each store, a fresh collector process takes ``--duration`` seconds of gRPC load from
``--senders`` sender processes (bench.workload's realistic agent traces), then answers timed
reads: one trace (/api/traces/{id}), the last 24 hours of traces (/api/traces?start=…, the
first page and the total), and one analytics run over everything stored (/api/analytics/run,
after the ClickHouse runner's settle time, so both runs cover every span).
Prints one table with the ClickHouse / DuckDB ratio of each figure.

    python -m bench.store_compare --duration 30 --senders 4

chdb is ClickHouse embedded in the collector's process: a ClickHouse server on its own machine
(TRACEHOUSE_STORE=clickhouse://…) has other figures, this run compares the engines on one box.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from analytics.clickhouse_runner import SETTLE_S
from bench.ingest import free_port, machine, percentile, sql, start_collector, start_senders

console = Console()


@dataclass
class Figures:
    store: str
    acked: int = 0
    persisted: int = 0
    seconds: float = 0.0
    disk_bytes: int = 0
    trace_ms: list[float] = field(default_factory=list)
    traces_24h_ms: list[float] = field(default_factory=list)
    analytics_s: float = float("nan")
    analytics_spans: int = 0

    @property
    def rate(self) -> float:
        return self.persisted / self.seconds if self.seconds else float("nan")


def disk_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def timed_get(client: httpx.Client, url: str, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        client.get(url, timeout=120).raise_for_status()
        out.append((time.perf_counter() - started) * 1000)
    return out


def run(name: str, store: str, data: Path, args: argparse.Namespace, progress: Progress) -> Figures:
    grpc_port, http_port = free_port(), free_port()
    figures = Figures(name)
    # Analytics only when asked (the timed run below), not on the collector's timer meanwhile.
    collector = start_collector(data / "bench.duckdb", grpc_port, http_port, store,
                                {"TRACEHOUSE_ANALYTICS_INTERVAL_S": "100000"}, timeout_s=60)
    client = httpx.Client(base_url=f"http://127.0.0.1:{http_port}")
    try:
        target = f"127.0.0.1:{grpc_port}"
        senders, results = start_senders(args.senders, target, args.traces_per_request, args.duration)
        started = time.time()
        task = progress.add_task(f"{name}: load", total=args.duration)
        while time.time() < started + args.duration:
            time.sleep(0.5)
            progress.update(task, completed=min(args.duration, time.time() - started))
        figures.persisted = int(sql(client, "SELECT count(*) FROM spans")[0][0])
        figures.seconds = time.time() - started
        figures.acked = sum(results.get(timeout=120)[0] for _ in senders)
        for process in senders:
            process.join(timeout=30)
        progress.update(task, description=f"{name}: reads")
        ids = [row[0] for row in sql(client, "SELECT trace_id FROM traces ORDER BY start_time DESC LIMIT 20")]
        for trace_id in ids:
            figures.trace_ms += timed_get(client, f"/api/traces/{trace_id}", 3)
        since = (datetime.now(UTC) - timedelta(hours=24)).strftime("%Y-%m-%dT%H:%M:%S")
        figures.traces_24h_ms = timed_get(client, f"/api/traces?start={since}", args.repeat)
        progress.update(task, description=f"{name}: analytics")
        # A ClickHouse run takes spans received up to SETTLE_S before it (concurrent collectors'
        # inserts land in no strict order): wait so both runs cover every span.
        time.sleep(max(0.0, started + args.duration + SETTLE_S + 1 - time.time()))
        began = time.perf_counter()
        response = client.post("/api/analytics/run", timeout=1800)
        if response.status_code == 200:
            figures.analytics_s = time.perf_counter() - began
            figures.analytics_spans = int(response.json()["spans"])
        else:
            console.print(f"{name}: analytics run refused: {response.text[:200]}")
        progress.update(task, description=f"{name}: done")
    finally:
        collector.send_signal(signal.SIGTERM)
        collector.wait(timeout=300)
        client.close()
    figures.disk_bytes = disk_bytes(data)
    return figures


def report(duck: Figures, click: Figures) -> Table:
    table = Table(title="Same load through a collector: DuckDB vs ClickHouse (chdb)")
    for column in ("", "DuckDB", "ClickHouse", "ClickHouse / DuckDB"):
        table.add_column(column, justify="right" if column else "left")

    def row(label: str, a: float, b: float, fmt: str) -> None:
        table.add_row(label, format(a, fmt), format(b, fmt), f"{b / a:.2f}" if a else "-")

    row("spans acknowledged", duck.acked, click.acked, ",.0f")
    row("spans persisted", duck.persisted, click.persisted, ",.0f")
    row("persisted spans/s", duck.rate, click.rate, ",.0f")
    row("bytes/span on disk", duck.disk_bytes / max(duck.persisted, 1), click.disk_bytes / max(click.persisted, 1), ",.0f")
    row("/api/traces/{id} p50 ms", percentile(duck.trace_ms, 0.5), percentile(click.trace_ms, 0.5), ".1f")
    row("/api/traces/{id} p95 ms", percentile(duck.trace_ms, 0.95), percentile(click.trace_ms, 0.95), ".1f")
    row("traces, last 24 h, p50 ms", percentile(duck.traces_24h_ms, 0.5), percentile(click.traces_24h_ms, 0.5), ".1f")
    row("analytics run over all spans, s", duck.analytics_s, click.analytics_s, ".2f")
    row("analytics spans/s", duck.analytics_spans / duck.analytics_s, click.analytics_spans / click.analytics_s, ",.0f")
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--traces-per-request", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=10, help="timed repetitions of the 24 h traces read")
    args = parser.parse_args()
    console.print(f"machine: {machine()}")
    workdir = Path(tempfile.mkdtemp(prefix="tracehouse-compare-"))
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        duck_dir, ch_dir = workdir / "duckdb", workdir / "chdb"
        duck_dir.mkdir()
        duck = run("DuckDB", "", duck_dir, args, progress)
        click = run("ClickHouse", f"chdb://{ch_dir}", ch_dir, args, progress)
    console.print(f"{args.senders} senders × {args.traces_per_request * 10} spans/request over gRPC, "
                  f"{args.duration:.0f} s per store")
    console.print(report(duck, click))
    return 0


if __name__ == "__main__":
    sys.exit(main())
