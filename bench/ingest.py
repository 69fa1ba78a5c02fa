"""Ingest benchmark: concurrent OTLP/gRPC senders against a real collector process.

Prints spans/s acknowledged and persisted (counted in DuckDB through /api/sql), p50/p99 export
latency, the collector's peak RSS, bytes per span on disk, how long an acknowledged span takes
to show in /api/sql, and, in the same run, the in-process floor (parse + normalize + append with
no network) so the network figure reads as a ratio of it.

    python -m bench.ingest --duration 60 --senders 6
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
import httpx
from rich.console import Console
from rich.progress import Progress

from bench.workload import RequestFactory

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.DEADLINE_EXCEEDED}
console = Console()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sender(worker: int, target: str, deadline: float, traces_per_request: int, results: mp.Queue) -> None:
    """Send pre-built requests until the deadline; a request counts once it is acknowledged."""
    factory = RequestFactory(traces_per_request=traces_per_request, worker=worker, seed=worker)
    channel = grpc.insecure_channel(target, options=[("grpc.max_send_message_length", 64 << 20)])
    export = channel.unary_unary(EXPORT_METHOD, request_serializer=None, response_deserializer=None)
    acked = retries = 0
    latencies: list[float] = []
    while time.time() < deadline:
        body = factory.next()
        while time.time() < deadline + 10:
            started = time.perf_counter()
            try:
                export(body, timeout=10)
            except grpc.RpcError as exc:
                if exc.code() not in RETRYABLE:
                    raise
                retries += 1
                time.sleep(0.05)
                continue
            latencies.append(time.perf_counter() - started)
            acked += factory.spans_per_request
            break
    channel.close()
    results.put((acked, retries, latencies))


class RssWatcher(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_kb, self.samples = pid, 0, []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.2):
            try:
                text = Path(f"/proc/{self.pid}/status").read_text()
            except OSError:
                return
            for line in text.splitlines():
                if line.startswith("VmRSS:"):
                    kb = int(line.split()[1])
                    self.peak_kb = max(self.peak_kb, kb)
                    self.samples.append((time.time(), kb))


def sql(client: httpx.Client, query: str) -> list[list[object]]:
    response = client.post("/api/sql", json={"sql": query}, timeout=30)
    response.raise_for_status()
    return response.json()["rows"]


def start_collector(db: Path, grpc_port: int, http_port: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ, TRACEHOUSE_DB=str(db), TRACEHOUSE_GRPC_PORT=str(grpc_port),
               TRACEHOUSE_HTTP_PORT=str(http_port), TRACEHOUSE_LOG_LEVEL="WARNING")
    process = subprocess.Popen([sys.executable, "-m", "collector"], env=env)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{http_port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("collector did not become healthy within 30 s")


def visibility_probe(target: str, client: httpx.Client) -> float:
    """Seconds from the acknowledgement of one span to its first appearance in /api/sql."""
    factory = RequestFactory(traces_per_request=1, templates=1, worker=60_000, seed=99)
    body = factory.next()
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    span = ExportTraceServiceRequest.FromString(body).resource_spans[0].scope_spans[0].spans[0]
    with grpc.insecure_channel(target) as channel:
        channel.unary_unary(EXPORT_METHOD, request_serializer=None, response_deserializer=None)(body, timeout=10)
    acked = time.perf_counter()
    query = f"SELECT count(*) FROM spans WHERE trace_id = '{span.trace_id.hex()}' AND span_id = '{span.span_id.hex()}'"
    while time.perf_counter() - acked < 10:
        if sql(client, query)[0][0]:
            return time.perf_counter() - acked
        time.sleep(0.005)
    return float("inf")


def in_process_floor(seconds: float = 5.0) -> float:
    """Spans/s for parse + decode + normalize + arrow append into DuckDB, one thread, no network."""
    from collector.floor import measure_floor

    return measure_floor(RequestFactory(), seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--senders", type=int, default=6)
    parser.add_argument("--traces-per-request", type=int, default=50)
    args = parser.parse_args()

    floor = in_process_floor()
    console.print(f"in-process floor: {floor:,.0f} spans/s (parse + normalize + append, 1 thread)")

    workdir = Path(tempfile.mkdtemp(prefix="tracehouse-bench-"))
    db = workdir / "bench.duckdb"
    grpc_port, http_port = free_port(), free_port()
    collector = start_collector(db, grpc_port, http_port)
    target = f"127.0.0.1:{grpc_port}"
    client = httpx.Client(base_url=f"http://127.0.0.1:{http_port}")
    watcher = RssWatcher(collector.pid)
    watcher.start()
    try:
        results: mp.Queue = mp.get_context("spawn").Queue()
        started = time.time()
        deadline = started + args.duration
        ctx = mp.get_context("spawn")
        senders = [ctx.Process(target=sender, args=(n, target, deadline, args.traces_per_request, results))
                   for n in range(args.senders)]
        for process in senders:
            process.start()
        persisted_series: list[tuple[float, int]] = []
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("sending", total=args.duration)
            while time.time() < deadline:
                time.sleep(1.0)
                persisted_series.append((time.time() - started, sql(client, "SELECT count(*) FROM spans")[0][0]))
                progress.update(task, completed=min(args.duration, time.time() - started))
        outcomes = [results.get(timeout=120) for _ in senders]
        for process in senders:
            process.join(timeout=30)
        elapsed = time.time() - started
        acked = sum(o[0] for o in outcomes)
        retries = sum(o[1] for o in outcomes)
        latencies = sorted(x for o in outcomes for x in o[2])
        persisted = sql(client, "SELECT count(*) FROM spans")[0][0]
        visible_s = visibility_probe(target, client)
        # Sustained persisted rate: count at the end of the sending window over that window.
        in_window = [c for t, c in persisted_series if t <= args.duration]
        persisted_rate = (in_window[-1] if in_window else persisted) / args.duration
    finally:
        collector.send_signal(signal.SIGTERM)
        collector.wait(timeout=120)
        watcher.stopped.set()
    size = db.stat().st_size + (db.with_suffix(".duckdb.wal").stat().st_size if db.with_suffix(".duckdb.wal").exists() else 0)

    p50 = latencies[len(latencies) // 2] * 1000 if latencies else float("nan")
    p99 = latencies[int(len(latencies) * 0.99)] * 1000 if latencies else float("nan")
    console.print(f"senders: {args.senders} × {args.traces_per_request * 10} spans/request, {elapsed:.0f} s")
    console.print(f"acknowledged: {acked:,} spans = {acked / args.duration:,.0f} spans/s (retries: {retries})")
    console.print(f"persisted:    {persisted:,} spans; sustained {persisted_rate:,.0f} spans/s; "
                  f"acknowledged - persisted = {acked - persisted + 1:,} (the +1 is the visibility probe)")
    console.print(f"export latency: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    console.print(f"collector peak RSS: {watcher.peak_kb / 1024:.0f} MB")
    console.print(f"on disk: {size / 1e6:.1f} MB = {size / max(persisted, 1):.0f} bytes/span")
    console.print(f"ack → visible in /api/sql: {visible_s * 1000:.1f} ms")
    console.print(f"ratio persisted / in-process floor: {persisted_rate / floor:.2f}")
    if len(watcher.samples) > 2:
        console.print("RSS over time (MB): " + ", ".join(
            f"{t - watcher.samples[0][0]:.0f}s={kb / 1024:.0f}" for t, kb in watcher.samples[:: max(1, len(watcher.samples) // 10)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
