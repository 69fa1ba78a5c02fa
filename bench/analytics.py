"""Analytics benchmark: the dashboard overview from the per-minute rollup with millions of spans stored.

Builds ``--spans`` synthetic spans (bench/synth.py, a week of traffic) with SQL straight into a
DuckDB file, runs the analytics jobs over all of them (the backfill a first start does), then
times the overview numbers (active agents, requests/min, avg/p50/p95 response time, success rate,
cost today, top errors) as the dashboard asks for them. Target: <= 100 ms with 5M spans.

Usage: python -m bench.analytics [--spans 5000000] [--db PATH] [--base PATH] [--repeat 50] [--memory-limit 64MB]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from analytics.offline import DirectWriter
from analytics.rollups import overview
from analytics.runner import AnalyticsRunner
from bench.synth import Synth, generate
from collector.settings import Settings
from collector.store import Store

SPANS_PER_TRACE = 5.75
TARGET_MS = 100.0


def traffic(spans: int) -> Synth:
    return Synth(traces=int(spans / SPANS_PER_TRACE), minutes=7 * 24 * 60, salt=5)


def build(db: Path, spans: int) -> tuple[Synth, int, float]:
    config = traffic(spans)
    store = Store(db)
    try:
        t0 = time.perf_counter()
        n = generate(store.write_connection, config)
        return config, n, time.perf_counter() - t0
    finally:
        store.close()


def backfill(db: Path, config: Synth, memory_limit: str | None = None) -> tuple[float, object]:
    store = Store(db, memory_limit=memory_limit)
    try:
        runner = AnalyticsRunner(store, DirectWriter(store), Settings.from_env({}))
        columns = (
            TextColumn("analytics backfill"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, transient=True) as progress:
            task = progress.add_task("spans", total=None)
            t0 = time.perf_counter()
            report = runner.run_now(now=config.end + timedelta(minutes=10),
                                    progress=lambda done, total: progress.update(task, completed=done, total=total))  # fmt: skip
            return time.perf_counter() - t0, report
    finally:
        store.close()


def time_overview(db: Path, config: Synth, repeat: int, memory_limit: str | None = None) -> tuple[list[float], dict[str, object]]:
    store = Store(db, memory_limit=memory_limit)
    try:
        cur = store.cursor()
        now = config.end - timedelta(minutes=1)
        result = overview(cur, now)  # warm-up
        times = []
        for i in range(repeat):
            t0 = time.perf_counter()
            result = overview(cur, now - timedelta(minutes=i))
            times.append((time.perf_counter() - t0) * 1000)
        return times, result
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=5_000_000)
    parser.add_argument(
        "--db", type=Path, default=None, help="DuckDB file to build (default: a temp file)"
    )
    parser.add_argument("--base", type=Path, default=None,
                        help="spans built before: copied instead of building (built and saved there when missing)")
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--memory-limit", default=None,
                        help="DuckDB memory limit for the backfill and the overview, as the collector sets it "
                             "(TRACEHOUSE_DUCKDB_MEMORY_LIMIT); default: DuckDB's own")  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "analytics.duckdb"
        if args.base is not None and args.base.exists():
            shutil.copyfile(args.base, db)
            config, n, gen_s = traffic(args.spans), 0, 0.0
            print(f"started from {args.base} (built before with --spans {args.spans:,})")
        else:
            config, n, gen_s = build(db, args.spans)
            if args.base is not None:
                shutil.copyfile(db, args.base)
        print(f"built {n:,} spans ({config.traces:,} traces over 7 days) in {gen_s:.1f} s; "
              f"DuckDB memory limit {args.memory_limit or 'DuckDB default (80% of RAM)'}")
        job_s, report = backfill(db, config, args.memory_limit)
        print(f"analytics backfill over all of them: {job_s:.1f} s ({report})")
        times, result = time_overview(db, config, args.repeat, args.memory_limit)
    p95 = sorted(times)[int(0.95 * (len(times) - 1))]
    verdict = "OK" if p95 <= TARGET_MS else "OVER TARGET"
    print(f"overview query: median {statistics.median(times):.1f} ms, p95 {p95:.1f} ms, max {max(times):.1f} ms "
          f"over {len(times)} runs (target <= {TARGET_MS:.0f} ms: {verdict})")  # fmt: skip
    print(f"overview: {result}")


if __name__ == "__main__":
    main()
