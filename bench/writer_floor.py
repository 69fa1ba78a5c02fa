"""In-process floor of the ingest path (no network): parse + decode + normalize + writer commit.

Run: ``python -m bench.writer_floor [--seconds 10]``. Prints the CPU time of each stage per span
(so a regression shows where it is, and the figures hold on a loaded machine) and the spans/s
the real Pipeline + BatchWriter + AgentResolver commit into a DuckDB file from one submitting
thread. ``bench/ingest.py`` calls :func:`measure_floor` in the same run as its gRPC load test,
on the same workload, so the network figure reads as a ratio of this one.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import Future
from dataclasses import dataclass

import pyarrow as pa
from rich.console import Console
from rich.table import Table

from bench.workload import RequestFactory
from collector.agent_resolver import AgentResolver
from collector.decode import decode_request, parse_protobuf
from collector.metrics import IngestMetrics
from collector.normalize import normalize
from collector.pipeline import Pipeline, TransientIngestError
from collector.settings import Settings
from collector.store import Store
from collector.writer import BatchWriter, rows_to_arrow

STAGE_REQUESTS = 40  # 20,000 spans: enough for stable per-span figures


@dataclass
class Floor:
    """Stage CPU times per span (µs) and the committed floor rate."""

    parse_us: float
    decode_us: float
    normalize_us: float
    arrow_us: float
    spans: int  # committed in the floor run
    seconds: float  # wall time of the floor run
    commit_s: float  # of it, time the writer thread spent in commits
    cpu_s: float  # process CPU time of the floor run (all threads, DuckDB's included)

    @property
    def rate(self) -> float:
        return self.spans / self.seconds

    @property
    def cpu_us_per_span(self) -> float:
        return self.cpu_s / self.spans * 1e6


def stage_times(factory: RequestFactory, requests: int = STAGE_REQUESTS) -> tuple[float, float, float, float]:
    """CPU µs per span of parse, decode, normalize and rows → Arrow (thread CPU time, not wall)."""
    bodies = [factory.next() for _ in range(requests)]
    limit = Settings().max_payload_bytes
    rows_to_arrow([normalize(s, max_payload_bytes=limit) for s in decode_request(parse_protobuf(bodies[0])).spans])
    clock = time.thread_time
    t0 = clock()
    parsed = [parse_protobuf(body) for body in bodies]
    t1 = clock()
    decoded = [decode_request(request) for request in parsed]
    t2 = clock()
    rows = [normalize(span, max_payload_bytes=limit) for d in decoded for span in d.spans]
    t3 = clock()
    batch = Settings().batch_max_spans
    tables: list[pa.Table] = [rows_to_arrow(rows[i : i + batch]) for i in range(0, len(rows), batch)]
    t4 = clock()
    assert sum(t.num_rows for t in tables) == len(rows)
    n = len(rows) / 1e6
    return (t1 - t0) / n, (t2 - t1) / n, (t3 - t2) / n, (t4 - t3) / n


def measure_floor(factory: RequestFactory, seconds: float = 10.0) -> Floor:
    """Submit requests through the real Pipeline for ``seconds``; count what commits, and how fast."""
    parse_us, decode_us, normalize_us, arrow_us = stage_times(factory)
    with tempfile.TemporaryDirectory(prefix="tracehouse-floor-") as folder:
        settings = Settings()
        store = Store(os.path.join(folder, "floor.duckdb"), memory_limit=settings.db_memory_limit)
        metrics = IngestMetrics()
        writer = BatchWriter(store, settings, resolver=AgentResolver(), observer=metrics.observe_commit)
        pipeline = Pipeline(settings, writer, metrics)
        futures: list[Future[int]] = []
        cpu0, t0 = time.process_time(), time.perf_counter()
        deadline = t0 + seconds
        while time.perf_counter() < deadline:
            body = factory.next()
            while True:
                try:
                    futures.append(pipeline.submit(body, "protobuf")[0])
                    break
                except TransientIngestError:  # queue full: wait for the writer, like a retrying exporter
                    time.sleep(0.002)
        stored = sum(f.result() for f in futures)
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        writer.close()
        store.close()
    return Floor(parse_us, decode_us, normalize_us, arrow_us, stored, elapsed, writer.stats.commit_seconds, cpu)


def stage_table(floor: Floor) -> Table:
    table = Table(title="in-process floor (CPU per span, one thread)")
    table.add_column("stage")
    table.add_column("µs/span", justify="right")
    for name, value in (
        ("protobuf parse", floor.parse_us),
        ("decode (→ Python values)", floor.decode_us),
        ("normalize (→ SpanRow)", floor.normalize_us),
        ("rows → Arrow", floor.arrow_us),
    ):
        table.add_row(name, f"{value:.1f}")
    table.add_row("whole floor run, all threads", f"{floor.cpu_us_per_span:.1f}")
    return table


def floor_summary(floor: Floor) -> str:
    return (
        f"pipeline floor: {floor.spans:,} spans committed in {floor.seconds:.1f} s = {floor.rate:,.0f} spans/s "
        f"(writer busy committing {floor.commit_s:.1f} s; {floor.cpu_us_per_span:.0f} µs CPU per span, all threads)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    console = Console()
    floor = measure_floor(RequestFactory(), args.seconds)
    console.print(stage_table(floor))
    console.print(floor_summary(floor))


if __name__ == "__main__":
    main()
