"""In-process floor of the ingest path (no network): parse + decode + normalize + writer commit.

Run: ``python -m bench.writer_floor [--seconds 10]``. Prints the CPU time of each stage per span
(so a regression shows where it is, and the figures hold on a loaded machine), then runs
``collector.floor`` (the real Pipeline + BatchWriter + AgentResolver into a DuckDB file, one
submitting thread). ``bench/ingest.py`` calls :func:`measure_floor` in the same run as its gRPC
load test, on the same workload, so the network figure reads as a ratio of this one.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from bench.workload import RequestFactory
from collector.arrow_rows import values_to_arrow
from collector.decode import decode_request, parse_protobuf
from collector.floor import FloorRun
from collector.floor import measure_floor as run_floor
from collector.normalize import normalize_values
from collector.runtime import tune_gc
from collector.settings import Settings

STAGE_REQUESTS = 40  # 20,000 spans: enough for stable per-span figures


@dataclass
class Floor:
    """Stage CPU times per span (µs) and the committed floor run."""

    parse_us: float
    decode_us: float
    normalize_us: float
    arrow_us: float
    run: FloorRun

    @property
    def rate(self) -> float:
        return self.run.rate


def stage_times(factory: RequestFactory, requests: int = STAGE_REQUESTS) -> tuple[float, float, float, float]:
    """CPU µs per span of parse, decode, normalize and rows → Arrow (thread CPU time, not wall).

    Under the collector's garbage-collector settings (collector.runtime), and normalize then
    Arrow request by request as collector.prepare does, so the rows are converted while warm.
    """
    tune_gc()
    bodies = [factory.next() for _ in range(requests)]
    limit = Settings().max_payload_bytes
    values_to_arrow([normalize_values(s, max_payload_bytes=limit) for s in decode_request(parse_protobuf(bodies[0])).spans])
    clock = time.thread_time
    t0 = clock()
    parsed = [parse_protobuf(body) for body in bodies]
    t1 = clock()
    decoded = [decode_request(request) for request in parsed]
    t2 = clock()
    normalize_s = arrow_s = 0.0
    spans = 0
    for request in decoded:
        start = clock()
        rows = [normalize_values(span, max_payload_bytes=limit) for span in request.spans]
        middle = clock()
        table = values_to_arrow(rows)
        arrow_s += clock() - middle
        normalize_s += middle - start
        assert table.num_rows == len(rows)
        spans += len(rows)
    n = spans / 1e6
    return (t1 - t0) / n, (t2 - t1) / n, normalize_s / n, arrow_s / n


def measure_floor(factory: RequestFactory, seconds: float = 10.0) -> Floor:
    """Stage times, then the real Pipeline fed for ``seconds`` (collector.floor)."""
    return Floor(*stage_times(factory), run=run_floor(factory, seconds))


def stage_table(floor: Floor) -> Table:
    table = Table(title="in-process floor (CPU per span, one thread)")
    table.add_column("stage")
    table.add_column("µs/span", justify="right")
    for name, value in (
        ("protobuf parse", floor.parse_us),
        ("decode (→ Python values)", floor.decode_us),
        ("normalize (→ row values)", floor.normalize_us),
        ("row values → Arrow", floor.arrow_us),
    ):
        table.add_row(name, f"{value:.1f}")
    table.add_row("whole floor run: + writer (dedup, attribution, insert, commit), all threads", f"{floor.run.cpu_us_per_span:.1f}")
    return table


def floor_summary(floor: Floor) -> str:
    run = floor.run
    return (
        f"pipeline floor: {run.spans:,} spans committed in {run.seconds:.1f} s = {run.rate:,.0f} spans/s "
        f"({run.cpu_us_per_span:.0f} µs CPU per span, all threads)"
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
