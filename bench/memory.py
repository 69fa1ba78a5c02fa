"""Where the collector's memory goes under ingest: RSS next to DuckDB's and malloc's own accounting.

Runs the real collector (CollectorServer, set up as ``python -m collector`` sets up its process)
in this process, loads it with the ingest benchmark's gRPC senders, and samples every
``--interval-ms``: VmRSS / RssAnon / RssFile (/proc/self/status), DuckDB's buffer-managed memory
(``duckdb_memory()``), glibc malloc's heap (mallinfo2: bytes in use and free-but-kept), the WAL
size, the writer's queue and the request bytes in flight; and marks when a checkpoint (the WAL
shrinking), a writer commit, a trace-summary merge or an analytics run was going on.

    python -m bench.memory --duration 60 --senders 6 --memory-limit 256MB --csv memory.csv

It prints the peak, the level, and for every spike (RSS above the run's median by more than
``--spike-mb``) what was running at that moment; the CSV holds the whole timeline.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.console import Console

from analytics import anomaly as anomaly_module
from analytics import rollups
from analytics import runner as runner_module
from analytics.runner import AnalyticsRunner
from bench.ingest import machine, start_senders
from collector import rollup
from collector import store as store_module
from bench.glibc import glibc_heap
from collector.runtime import cap_malloc_arenas, tune_gc, use_malloc_for_arrow
from collector.serve import CollectorServer
from collector.settings import Settings
from collector.writer import BatchWriter

console = Console()
MB = 1024 * 1024


def proc_status() -> dict[str, int]:
    """VmRSS, RssAnon, RssFile of this process, in bytes."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key = line.split(":", 1)[0]
        if key in ("VmRSS", "RssAnon", "RssFile"):
            out[key] = int(line.split()[1]) * 1024
    return out


@dataclass
class Activity:
    """Intervals (start, end) of one kind of work, recorded by wrapping the function that does it."""

    name: str
    spans: list[tuple[float, float]] = field(default_factory=list)
    _open: dict[int, float] = field(default_factory=dict)

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            started = time.monotonic()
            key = threading.get_ident()
            self._open[key] = started
            try:
                return fn(*args, **kwargs)
            finally:
                self._open.pop(key, None)
                self.spans.append((started, time.monotonic()))

        return wrapped

    def active(self, at: float, slack: float) -> bool:
        """Whether this work ran within ``slack`` seconds of ``at``."""
        if any(started <= at + slack for started in self._open.values()):
            return True
        return any(started - slack <= at <= ended + slack for started, ended in self.spans[-2000:])


# The steps of an analytics run, each (owner, attribute name) as the runner calls it.
ANALYTICS_STEPS: dict[str, tuple[Any, str]] = {
    "touched": (rollups, "touched"),
    "llm_spans": (rollups, "llm_spans"),
    "compute_costs": (runner_module, "compute_costs"),
    "save_costs": (rollups, "set_span_costs"),
    "refresh_traces": (runner_module, "refresh_traces"),
    "trace_features": (rollups, "trace_features"),
    "save_features": (AnalyticsRunner, "_save_features"),
    "minute_rollups": (rollups, "minute_rollups"),
    "save_minutes": (AnalyticsRunner, "_save_minutes"),
    "baseline": (AnalyticsRunner, "_baseline"),
    "trace_outliers": (anomaly_module, "trace_outliers"),  # the IsolationForest child inside
    "finish": (AnalyticsRunner, "_finish"),
    "windows": (AnalyticsRunner, "_windows"),
    "alerts": (AnalyticsRunner, "_alerts"),
}


def instrument() -> tuple[dict[str, Activity], dict[str, Activity]]:
    """Record the writer's commits, the summary merges, the analytics runs and each step of a run
    (this process only)."""
    acts = {name: Activity(name) for name in ("commit", "summary", "analytics", "task")}
    BatchWriter._commit_batch = acts["commit"].wrap(BatchWriter._commit_batch)  # type: ignore[method-assign]
    BatchWriter._run_task = acts["task"].wrap(BatchWriter._run_task)  # type: ignore[method-assign]
    rollup.catch_up = acts["summary"].wrap(rollup.catch_up)  # type: ignore[assignment]
    AnalyticsRunner.run_now = acts["analytics"].wrap(AnalyticsRunner.run_now)  # type: ignore[method-assign]
    steps = {name: Activity(name) for name in ANALYTICS_STEPS}
    for name, (owner, attr) in ANALYTICS_STEPS.items():
        setattr(owner, attr, steps[name].wrap(getattr(owner, attr)))
    return acts, steps


class Sampler(threading.Thread):
    """One row every ``interval`` seconds; DuckDB's accounting every ``duck_every`` rows."""

    def __init__(self, server: CollectorServer, wal: Path, interval: float, duck_every: int) -> None:
        super().__init__(daemon=True, name="memory-sampler")
        self.server, self.wal, self.interval, self.duck_every = server, wal, interval, duck_every
        self.rows: list[dict[str, float]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        cur = self.server.store.cursor()
        duck: dict[str, int] = {}
        n = 0
        while not self.stopped.wait(self.interval):
            status = proc_status()
            used, kept = glibc_heap() or (0, 0)
            if n % self.duck_every == 0:
                duck = dict(cur.execute(
                    "SELECT tag, memory_usage_bytes + temporary_storage_bytes FROM duckdb_memory()").fetchall())  # fmt: skip
            n += 1
            try:
                wal = self.wal.stat().st_size
            except OSError:
                wal = 0
            writer, pipeline = self.server.writer, self.server.pipeline
            self.rows.append({
                "t": time.monotonic(), "rss": status["VmRSS"], "anon": status["RssAnon"], "file": status["RssFile"],
                "duckdb": sum(duck.values()), "duck_base": duck.get("BASE_TABLE", 0),
                "duck_meta": duck.get("METADATA", 0) + duck.get("OVERFLOW_STRINGS", 0),
                "duck_hash": duck.get("HASH_TABLE", 0) + duck.get("ORDER_BY", 0) + duck.get("COLUMN_DATA", 0),
                "duck_temp": duck.get("IN_MEMORY_TABLE", 0), "glibc_used": used, "glibc_free": kept, "wal": wal,
                "queue_spans": writer.queue_depth if writer else 0,
                "inflight_bytes": pipeline.inflight_bytes if pipeline else 0,
            })  # fmt: skip
        cur.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--senders", type=int, default=6)
    parser.add_argument("--traces-per-request", type=int, default=50)
    parser.add_argument("--memory-limit", default=None, help="TRACEHOUSE_DUCKDB_MEMORY_LIMIT (default: the setting's)")
    parser.add_argument("--analytics-interval", type=float, default=None, help="TRACEHOUSE_ANALYTICS_INTERVAL_S")
    parser.add_argument("--interval-ms", type=float, default=50.0)
    parser.add_argument("--spike-mb", type=float, default=60.0)
    parser.add_argument("--csv", type=Path, default=None)
    parser.add_argument("--vacuum-tasks", type=int, default=None,
                        help="DuckDB's max_vacuum_tasks (the collector sets 0; DuckDB's default is 100), for comparison")  # fmt: skip
    args = parser.parse_args()
    console.print(f"machine: {machine()}")

    workdir = Path(tempfile.mkdtemp(prefix="tracehouse-memory-"))
    db = workdir / "memory.duckdb"
    settings = replace(Settings.from_env(), db=str(db), grpc_port=0, http_port=0, log_level="WARNING")
    if args.memory_limit:
        settings = replace(settings, duckdb_memory_limit=args.memory_limit)
    if args.analytics_interval is not None:
        settings = replace(settings, analytics_interval_s=args.analytics_interval)
    console.print(f"DuckDB memory limit {settings.duckdb_memory_limit}, analytics every {settings.analytics_interval_s:g} s")
    if args.vacuum_tasks is not None:
        store_module._CONNECT_CONFIG["max_vacuum_tasks"] = args.vacuum_tasks
    console.print(f"max_vacuum_tasks {store_module._CONNECT_CONFIG['max_vacuum_tasks']}")
    # As collector.serve.run sets up its process.
    cap_malloc_arenas()
    use_malloc_for_arrow()
    acts, steps = instrument()
    tune_gc()
    server = CollectorServer(settings).start()
    idle = proc_status()["VmRSS"]
    sampler = Sampler(server, Path(str(db) + ".wal"), args.interval_ms / 1000, duck_every=2)
    sampler.start()
    try:
        target = f"127.0.0.1:{server.grpc_port}"
        with console.status(f"{args.senders} senders building their requests"):
            procs, results = start_senders(args.senders, target, args.traces_per_request, args.duration)
        started = time.monotonic()
        with console.status(f"sending for {args.duration:.0f} s"):
            outcomes = [results.get(timeout=args.duration + 180) for _ in procs]
        ended = time.monotonic()
        for proc in procs:
            proc.join(timeout=30)
    finally:
        sampler.stopped.set()
        sampler.join()
        stored = server.writer.stats.stored if server.writer else 0
        server.stop()
    acked = sum(o[0] for o in outcomes)
    report(sampler.rows, acts, started, ended, idle, acked, stored, args)
    report_steps(sampler.rows, steps)
    if args.csv:
        with args.csv.open("w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=[*sampler.rows[0], *acts, "step"])
            writer.writeheader()
            for row in sampler.rows:
                writer.writerow({**row, "t": round(row["t"] - started, 3),
                                 **{name: int(act.active(row["t"], 0.0)) for name, act in acts.items()},
                                 "step": "+".join(n for n, a in steps.items() if a.active(row["t"], 0.0))})  # fmt: skip
    return 0


def report_steps(rows: list[dict[str, float]], steps: dict[str, Activity]) -> None:
    """Per analytics step: runs, seconds, and the highest RSS / glibc heap in use / DuckDB while it ran."""
    console.print("analytics steps: runs, seconds, then the highest RSS, glibc in use, DuckDB while it ran (MB)")
    for name, act in steps.items():
        during = [r for r in rows if any(a <= r["t"] <= b for a, b in act.spans)]
        if act.spans:
            top = max(during, key=lambda r: r["rss"]) if during else None
            console.print(f"  {name:15s} {len(act.spans):3d} runs {sum(b - a for a, b in act.spans):7.1f} s" + (
                f"  RSS {top['rss'] / MB:5.0f}  glibc {max(r['glibc_used'] for r in during) / MB:5.0f}"
                f"  duckdb {max(r['duckdb'] for r in during) / MB:5.0f}" if top else ""))  # fmt: skip


def report(rows: list[dict[str, float]], acts: dict[str, Activity], started: float, ended: float, idle: int,
           acked: int, stored: int, args: argparse.Namespace) -> None:  # fmt: skip
    window = [r for r in rows if started <= r["t"] <= ended]
    if not window:
        console.print("no samples in the sending window")
        return
    rss = [r["rss"] for r in window]
    median = statistics.median(rss)
    console.print(f"acknowledged {acked:,} spans, stored {stored:,} ({stored / (ended - started):,.0f} spans/s)")
    console.print(f"idle RSS {idle / MB:.0f} MB; in the window: median {median / MB:.0f} MB, peak {max(rss) / MB:.0f} MB "
                  f"({len(window)} samples every {args.interval_ms:.0f} ms)")  # fmt: skip
    for key in ("anon", "file", "duckdb", "duck_base", "duck_meta", "duck_hash", "duck_temp", "glibc_used",
                "glibc_free", "wal", "inflight_bytes"):  # fmt: skip
        values = [r[key] for r in window]
        console.print(f"  {key:15s} median {statistics.median(values) / MB:7.1f} MB, max {max(values) / MB:7.1f} MB")
    console.print(f"  queue_spans      median {statistics.median(r['queue_spans'] for r in window):,.0f}, "
                  f"max {max(r['queue_spans'] for r in window):,.0f}")
    checkpoints = [b["t"] for a, b in zip(window, window[1:]) if b["wal"] < a["wal"] / 2]
    console.print(f"checkpoints (WAL shrank): {len(checkpoints)}, every {(ended - started) / max(len(checkpoints), 1):.1f} s")
    for name, act in acts.items():
        inside = [(a, b) for a, b in act.spans if a >= started and b <= ended]
        if inside:
            console.print(f"{name}: {len(inside)} runs, mean {statistics.mean(b - a for a, b in inside) * 1000:.0f} ms, "
                          f"max {max(b - a for a, b in inside) * 1000:.0f} ms")  # fmt: skip
    # Spikes: consecutive samples above median + spike_mb; what ran then.
    threshold = median + args.spike_mb * MB
    spikes: list[list[dict[str, float]]] = []
    for row in window:
        if row["rss"] > threshold:
            if spikes and row["t"] - spikes[-1][-1]["t"] <= 2 * args.interval_ms / 1000:
                spikes[-1].append(row)
            else:
                spikes.append([row])
    console.print(f"spikes (RSS > median + {args.spike_mb:.0f} MB): {len(spikes)}")
    for spike in spikes:
        top = max(spike, key=lambda r: r["rss"])
        t0, t1 = spike[0]["t"], spike[-1]["t"]
        near_ckpt = any(t0 - 1.0 <= c <= t1 + 1.0 for c in checkpoints)
        doing = [name for name, act in acts.items() if act.active(top["t"], args.interval_ms / 1000)]
        console.print(f"  t={t0 - started:6.1f}s {1000 * (t1 - t0) + args.interval_ms:5.0f} ms  peak {top['rss'] / MB:5.0f} MB  "
                      f"anon {top['anon'] / MB:4.0f} duckdb {top['duckdb'] / MB:4.0f} glibc used {top['glibc_used'] / MB:4.0f} "
                      f"free {top['glibc_free'] / MB:4.0f} wal {top['wal'] / MB:4.1f} queue {top['queue_spans']:,.0f} "
                      f"inflight {top['inflight_bytes'] / MB:.1f}  checkpoint±1s={near_ckpt} {','.join(doing)}")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
