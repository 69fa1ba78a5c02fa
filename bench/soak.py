"""Soak: sustained ingest at a fraction of the collector's measured throughput, RSS over time.

First a short full-speed calibration run (the same gRPC senders as ``bench.ingest``) on its own
database gives the throughput; then a fresh collector takes ``--fraction`` of it, paced, for
``--duration`` seconds while its RSS is sampled every second. At the end every acknowledged span
must be persisted exactly once. Prints a Markdown section for bench/RESULTS.md.

    python -m bench.soak --duration 600 --fraction 0.5
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import signal
import tempfile
import time
from pathlib import Path

import grpc
import httpx
from rich.console import Console
from rich.progress import Progress

from bench.ingest import EXPORT_METHOD, ProcessWatcher, free_port, send_until_acked, sql, start_collector, start_senders
from bench.workload import RequestFactory

console = Console()


def paced_sender(worker: int, target: str, deadline: float, traces_per_request: int, rate: float, results: mp.Queue) -> None:
    """Send requests on a fixed schedule so this worker's share of ``rate`` spans/s is kept."""
    factory = RequestFactory(traces_per_request=traces_per_request, worker=worker, seed=worker)
    channel = grpc.insecure_channel(target, options=[("grpc.max_send_message_length", 64 << 20)])
    export = channel.unary_unary(EXPORT_METHOD, request_serializer=None, response_deserializer=None)
    period = factory.spans_per_request / rate
    acked = retries = late = 0
    next_at = time.time()
    while next_at < deadline:
        pause = next_at - time.time()
        if pause > 0:
            time.sleep(pause)
        else:
            late += 1
        delivered, tries = send_until_acked(export, factory.next(), deadline + 30, backoff_s=0.1)
        retries += tries
        acked += factory.spans_per_request if delivered else 0
        next_at += period
    channel.close()
    results.put((acked, retries, late))


def calibrate(seconds: float, senders: int, traces_per_request: int) -> float:
    """Stored spans/s at full speed against a fresh collector (the benchmark's load).

    Measured from the store's count over a window that opens once the senders have started
    (spawned senders take seconds to import on a loaded machine).
    """
    workdir = Path(tempfile.mkdtemp(prefix="tracehouse-soak-cal-"))
    grpc_port, http_port = free_port(), free_port()
    collector = start_collector(workdir / "cal.duckdb", grpc_port, http_port)
    client = httpx.Client(base_url=f"http://127.0.0.1:{http_port}")
    warmup = 20.0
    try:
        # Returns once every sender has built its requests.
        procs, results = start_senders(senders, f"127.0.0.1:{grpc_port}", traces_per_request, warmup + seconds)
        deadline = time.time() + warmup + seconds
        time.sleep(warmup)
        first, opened = sql(client, "SELECT count(*) FROM spans")[0][0], time.time()
        time.sleep(max(0.0, deadline - time.time()))
        last, closed = sql(client, "SELECT count(*) FROM spans")[0][0], time.time()
        for _ in procs:
            results.get(timeout=120)
        for proc in procs:
            proc.join(30)
    finally:
        collector.send_signal(signal.SIGTERM)
        collector.wait(timeout=120)
    return (last - first) / (closed - opened)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600.0, help="soak seconds (default 600)")
    parser.add_argument("--fraction", type=float, default=0.5, help="share of the calibrated throughput")
    parser.add_argument("--rate", type=float, default=0.0, help="spans/s; skips calibration when given")
    parser.add_argument("--calibrate", type=float, default=60.0, help="calibration seconds")
    parser.add_argument("--senders", type=int, default=6, help="as bench.ingest")
    parser.add_argument("--traces-per-request", type=int, default=50, help="as bench.ingest")
    args = parser.parse_args()

    full = 0.0
    if args.rate > 0:
        rate = args.rate
    else:
        console.print(f"calibrating for {args.calibrate:.0f} s at full speed ...")
        full = calibrate(args.calibrate, args.senders, args.traces_per_request)
        rate = full * args.fraction
        if rate <= 0:
            raise SystemExit("calibration stored nothing; is the machine overloaded?")
        console.print(f"full speed: {full:,.0f} spans/s → soak at {rate:,.0f} spans/s")

    workdir = Path(tempfile.mkdtemp(prefix="tracehouse-soak-"))
    db = workdir / "soak.duckdb"
    grpc_port, http_port = free_port(), free_port()
    collector = start_collector(db, grpc_port, http_port)
    client = httpx.Client(base_url=f"http://127.0.0.1:{http_port}")
    watcher = ProcessWatcher(collector.pid)
    watcher.start()
    minutes: list[tuple[float, int, float]] = []  # (elapsed s, persisted, RSS MB)
    try:
        ctx = mp.get_context("spawn")
        results: mp.Queue = ctx.Queue()
        started = time.time()
        deadline = started + args.duration
        procs = [ctx.Process(target=paced_sender, args=(n, f"127.0.0.1:{grpc_port}", deadline,
                                                         args.traces_per_request, rate / args.senders, results))
                 for n in range(args.senders)]
        for proc in procs:
            proc.start()
        next_mark = started + 60
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("soak", total=args.duration)
            while time.time() < deadline:
                time.sleep(1.0)
                progress.update(task, completed=min(args.duration, time.time() - started))
                if time.time() >= next_mark or time.time() >= deadline:
                    persisted = sql(client, "SELECT count(*) FROM spans")[0][0]
                    rss = (watcher.samples[-1][1] if watcher.samples else 0) / 1024
                    minutes.append((time.time() - started, persisted, rss))
                    console.print(f"{time.time() - started:5.0f} s: {persisted:,} spans stored, RSS {rss:.0f} MB")
                    next_mark += 60
        outcomes = [results.get(timeout=180) for _ in procs]
        for proc in procs:
            proc.join(30)
        acked = sum(o[0] for o in outcomes)
        retries = sum(o[1] for o in outcomes)
        late = sum(o[2] for o in outcomes)
        persisted, distinct = sql(client, "SELECT count(*), count(DISTINCT (trace_id, span_id)) FROM spans")[0]
    finally:
        collector.send_signal(signal.SIGTERM)
        collector.wait(timeout=120)
        watcher.stopped.set()

    samples = [kb / 1024 for _, kb, _, _ in watcher.samples]
    first_minute = [kb / 1024 for t, kb, _, _ in watcher.samples if t - watcher.samples[0][0] <= 60]
    last_minute = [kb / 1024 for t, kb, _, _ in watcher.samples if watcher.samples[-1][0] - t <= 60]
    print()
    print("## Soak")
    print()
    print(f"`python -m bench.soak --duration {args.duration:.0f} --fraction {args.fraction}`: "
          f"{args.senders} paced gRPC senders, {args.traces_per_request * 10} spans per request.")
    if full:
        print(f"Calibration ({args.calibrate:.0f} s, full speed): {full:,.0f} spans/s stored; "
              f"soak target {rate:,.0f} spans/s.")
    print(f"Sent for {args.duration:.0f} s: {acked:,} spans acknowledged ({acked / args.duration:,.0f} spans/s), "
          f"{persisted:,} stored, {distinct:,} distinct; {retries} retries; {late} requests sent late.")
    print(f"RSS: first minute max {max(first_minute or [0]):.0f} MB, last minute max {max(last_minute or [0]):.0f} MB, "
          f"peak {max(samples or [0]):.0f} MB.")
    print()
    print("| elapsed s | spans stored | collector RSS MB |")
    print("|---:|---:|---:|")
    for elapsed, stored, rss in minutes:
        print(f"| {elapsed:.0f} | {stored:,} | {rss:.0f} |")
    ok = persisted == acked and distinct == persisted
    print()
    print("every acknowledged span stored exactly once" if ok else "MISMATCH between acknowledged and stored")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
