"""Ingest benchmark: concurrent OTLP/gRPC senders against a real collector process.

Prints spans/s acknowledged and persisted (counted in DuckDB through /api/sql), p50/p99 export
latency, the collector's peak RSS, bytes per span on disk, how long an acknowledged span takes
to show in /api/sql, and, in the same run, the in-process floor (parse + normalize + append with
no network) so the network figure reads as a ratio of it.

    python -m bench.ingest --duration 60 --senders 6

Figures go into bench/RESULTS.md by hand, with the machine line this prints.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import multiprocessing.synchronize
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from rich.console import Console
from rich.progress import Progress, TextColumn

from bench.workload import RequestFactory
from bench.writer_floor import floor_summary, measure_floor, stage_table

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.DEADLINE_EXCEEDED}
console = Console()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def send_until_acked(export: Callable[..., object], body: bytes, give_up_at: float, backoff_s: float) -> tuple[bool, int]:
    """Send one request, retrying transient refusals like an OTLP exporter: (acknowledged, retries)."""
    retries = 0
    while time.time() < give_up_at:
        try:
            export(body, timeout=10)
        except grpc.RpcError as exc:
            if exc.code() not in RETRYABLE:
                raise
            retries += 1
            time.sleep(backoff_s)
            continue
        return True, retries
    return False, retries


def sender(worker: int, target: str, traces_per_request: int, start: mp.synchronize.Barrier, duration: float,
           results: mp.Queue) -> None:
    """Send pre-built requests for ``duration`` after the common start; a request counts once acknowledged."""
    factory = RequestFactory(traces_per_request=traces_per_request, worker=worker, seed=worker)
    channel = grpc.insecure_channel(target, options=[("grpc.max_send_message_length", 64 << 20)])
    export = channel.unary_unary(EXPORT_METHOD, request_serializer=None, response_deserializer=None)
    acked = retries = 0
    latencies: list[float] = []
    start.wait()  # every sender has built its requests: all begin together
    deadline = time.time() + duration
    while time.time() < deadline:
        started = time.perf_counter()
        delivered, tries = send_until_acked(export, factory.next(), deadline + 10, backoff_s=0.05)
        retries += tries
        if delivered:
            latencies.append(time.perf_counter() - started)
            acked += factory.spans_per_request
    channel.close()
    results.put((acked, retries, latencies))


def start_senders(count: int, target: str, traces_per_request: int, duration: float) -> tuple[list[mp.Process], mp.Queue]:
    """``count`` sender processes and the queue of their results, returned once every one has built
    its requests: from then on they send for ``duration`` seconds."""
    ctx = mp.get_context("spawn")
    results: mp.Queue = ctx.Queue()
    barrier = ctx.Barrier(count + 1)
    procs = [ctx.Process(target=sender, args=(n, target, traces_per_request, barrier, duration, results))
             for n in range(count)]  # fmt: skip
    for process in procs:
        process.start()
    barrier.wait(timeout=300)
    return procs, results


class ProcessWatcher(threading.Thread):
    """Samples RSS and CPU time (user + system) of the collector and its worker processes
    (TRACEHOUSE_INGEST_WORKERS) from /proc every 0.2 s; RSS is their sum (shared pages counted
    in each, so an upper bound). Also the whole machine's busy CPU time: a collector that leaves
    cores idle while its rate is flat is held by its GIL or its writer, not by the CPU."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_kb = pid, 0
        self.samples: list[tuple[float, int, float, float]] = []  # (time, RSS kB, CPU s, machine busy s)
        self.stopped = threading.Event()
        self._tick = os.sysconf("SC_CLK_TCK")

    def pids(self) -> list[int]:
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
        return [self.pid, *map(int, children)]

    def cpu_seconds(self, pid: int) -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self._tick  # utime, stime

    def machine_busy_seconds(self) -> float:
        """CPU time all cores spent on anything but idle and I/O wait since boot (/proc/stat)."""
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        return (sum(fields) - fields[3] - fields[4]) / self._tick

    @staticmethod
    def rss_kb(pid: int) -> int:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def run(self) -> None:
        while not self.stopped.wait(0.2):
            try:
                pids = self.pids()
            except OSError:
                return
            kb = cpu = 0.0
            for pid in pids:
                try:
                    kb, cpu = kb + self.rss_kb(pid), cpu + self.cpu_seconds(pid)
                except OSError:
                    continue  # a worker that just ended
            self.peak_kb = max(self.peak_kb, int(kb))
            self.samples.append((time.time(), int(kb), cpu, self.machine_busy_seconds()))

    def cpu_between(self, start: float, end: float) -> tuple[float, float]:
        """CPU seconds of the collector (with workers) and of the whole machine in [start, end]."""
        inside = [(cpu, busy) for t, _, cpu, busy in self.samples if start <= t <= end]
        if len(inside) < 2:
            return float("nan"), float("nan")
        return inside[-1][0] - inside[0][0], inside[-1][1] - inside[0][1]


def sql(client: httpx.Client, query: str) -> list[list[object]]:
    response = client.post("/api/sql", json={"sql": query}, timeout=30)
    response.raise_for_status()
    return response.json()["rows"]


def start_collector(db: Path, grpc_port: int, http_port: int, store: str = "", env: dict[str, str] | None = None,
                    timeout_s: float = 30.0) -> subprocess.Popen[bytes]:  # fmt: skip
    """A collector process on these ports, once healthy. ``store``: a TRACEHOUSE_STORE URL
    (ClickHouse); empty: the DuckDB file ``db``. ``env``: more TRACEHOUSE_* settings."""
    env = dict(os.environ, TRACEHOUSE_DB=str(db), TRACEHOUSE_GRPC_PORT=str(grpc_port), TRACEHOUSE_HTTP_PORT=str(http_port),
               TRACEHOUSE_LOG_LEVEL="WARNING", TRACEHOUSE_STORE=store, **(env or {}))  # fmt: skip
    process = subprocess.Popen([sys.executable, "-m", "collector"], env=env)
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{http_port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
        if process.poll() is not None:
            raise SystemExit(f"collector exited with {process.returncode} before it was healthy")
    process.kill()
    raise SystemExit(f"collector did not become healthy within {timeout_s:.0f} s")


class VisibilityProbe(threading.Thread):
    """Every ``every_s`` during the load: send one span, time from its ack to its first /api/sql hit."""

    def __init__(self, target: str, base_url: str, deadline: float, every_s: float = 3.0) -> None:
        super().__init__(daemon=True)
        self.target, self.base_url, self.deadline, self.every_s = target, base_url, deadline, every_s
        self.delays: list[float] = []
        self.sent = 0  # spans the probe added (acknowledged, so they count as persisted too)

    def run(self) -> None:
        factory = RequestFactory(traces_per_request=1, templates=1, worker=60_000, seed=99)
        with grpc.insecure_channel(self.target) as channel, httpx.Client(base_url=self.base_url) as client:
            export = channel.unary_unary(EXPORT_METHOD, request_serializer=None, response_deserializer=None)
            while time.time() + self.every_s < self.deadline:
                time.sleep(self.every_s)
                body = factory.next()
                span = ExportTraceServiceRequest.FromString(body).resource_spans[0].scope_spans[0].spans[-1]
                try:
                    export(body, timeout=30)
                except grpc.RpcError:
                    continue  # queue full: the senders' figures show it; probe again later
                acked = time.perf_counter()
                self.sent += factory.spans_per_request
                query = (f"SELECT count(*) FROM spans WHERE trace_id = '{span.trace_id.hex()}' "
                         f"AND span_id = '{span.span_id.hex()}'")
                while time.perf_counter() - acked < 30:
                    if sql(client, query)[0][0]:
                        self.delays.append(time.perf_counter() - acked)
                        break
                    time.sleep(0.01)


def commit_histogram(metrics: str) -> tuple[int, float, list[tuple[float, int]]] | None:
    """(commits, seconds in total, [(limit, commits slower than it)]) from the collector's /metrics."""
    buckets: dict[float, float] = {}
    count = total = None
    for line in metrics.splitlines():
        if line.startswith("tracehouse_batch_commit_seconds_bucket"):
            limit = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[float(limit)] = float(line.rsplit(" ", 1)[1])
        elif line.startswith("tracehouse_batch_commit_seconds_count"):
            count = int(float(line.rsplit(" ", 1)[1]))
        elif line.startswith("tracehouse_batch_commit_seconds_sum"):
            total = float(line.rsplit(" ", 1)[1])
    if count is None or total is None:
        return None
    return count, total, [(limit, count - int(buckets[limit])) for limit in (0.25, 1.0, 2.5) if limit in buckets]


def machine() -> str:
    """nproc, memory, CPU model and load: what the figures were measured on."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), "?")
    memory_kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")))
    load = os.getloadavg()
    return (f"{os.cpu_count()} CPUs ({model}), {memory_kb / 1024**2:.1f} GiB RAM, "
            f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min)")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--senders", type=int, default=6)
    parser.add_argument("--traces-per-request", type=int, default=50)
    parser.add_argument("--floor-seconds", type=float, default=10.0)
    parser.add_argument("--store", default="", metavar="URL",
                        help="TRACEHOUSE_STORE for the collector (clickhouse://... or chdb://...); default: DuckDB")
    args = parser.parse_args()
    console.print(f"machine: {machine()}")

    with console.status("measuring the in-process floor"):
        floor = measure_floor(RequestFactory(traces_per_request=args.traces_per_request), args.floor_seconds)
    console.print(stage_table(floor))
    console.print(floor_summary(floor))

    workdir = Path(tempfile.mkdtemp(prefix="tracehouse-bench-"))
    db = workdir / "bench.duckdb"
    grpc_port, http_port = free_port(), free_port()
    collector = start_collector(db, grpc_port, http_port, args.store)
    target = f"127.0.0.1:{grpc_port}"
    base_url = f"http://127.0.0.1:{http_port}"
    client = httpx.Client(base_url=base_url)
    watcher = ProcessWatcher(collector.pid)
    watcher.start()
    try:
        with console.status(f"{args.senders} senders building their requests"):
            senders, results = start_senders(args.senders, target, args.traces_per_request, args.duration)
        started = time.time()
        deadline = started + args.duration
        probe = VisibilityProbe(target, base_url, deadline)
        probe.start()
        series: list[tuple[float, int]] = []  # (seconds since start, spans persisted)
        with Progress(*Progress.get_default_columns(), TextColumn("{task.fields[rate]}"), console=console) as progress:
            task = progress.add_task("sending", total=args.duration, rate="")
            while time.time() < deadline:
                time.sleep(min(1.0, max(0.0, deadline - time.time())))
                series.append((time.time() - started, sql(client, "SELECT count(*) FROM spans")[0][0]))
                rate = series[-1][1] / max(series[-1][0], 1e-9)
                progress.update(task, completed=min(args.duration, time.time() - started),
                                rate=f"{series[-1][1]:,} persisted · {rate:,.0f} spans/s")
        window_end = time.time()
        outcomes = [results.get(timeout=120) for _ in senders]
        for process in senders:
            process.join(timeout=30)
        probe.join(timeout=60)
        acked = sum(o[0] for o in outcomes) + probe.sent
        retries = sum(o[1] for o in outcomes)
        latencies = [x for o in outcomes for x in o[2]]
        persisted = sql(client, "SELECT count(*) FROM spans")[0][0]
        commits = commit_histogram(client.get("/metrics", timeout=30).text)
        cpu, machine_cpu = watcher.cpu_between(started, window_end)
    finally:
        collector.send_signal(signal.SIGTERM)
        collector.wait(timeout=120)
        watcher.stopped.set()
    size = sum(f.stat().st_size for f in workdir.iterdir() if f.name.startswith("bench.duckdb"))

    in_window = series[-1][1] if series else persisted
    persisted_rate = in_window / args.duration
    # Sustained: the slowest 10-second stretch of the window, so a burst cannot hide a stall.
    stretches = [(c2 - c1) / (t2 - t1) for (t1, c1) in series for (t2, c2) in series if 9.5 <= t2 - t1 <= 10.5]
    console.print(f"senders: {args.senders} processes × {args.traces_per_request * 10} spans/request over gRPC, "
                  f"{args.duration:.0f} s")
    console.print(f"acknowledged: {acked:,} spans = {acked / args.duration:,.0f} spans/s (retries after UNAVAILABLE: {retries:,})")
    console.print(f"persisted:    {persisted:,} spans; {persisted_rate:,.0f} spans/s over the window, "
                  f"slowest 10 s {min(stretches, default=float('nan')):,.0f} spans/s; "
                  f"acknowledged - persisted = {acked - persisted:,}")
    console.print(f"export latency: p50 {percentile(latencies, 0.5) * 1000:.0f} ms, p99 {percentile(latencies, 0.99) * 1000:.0f} ms")
    window_peak = max((kb for t, kb, _, _ in watcher.samples if started <= t <= window_end), default=0)
    console.print(f"collector peak RSS (with its worker processes): {window_peak / 1024:.0f} MB in the sending window, {watcher.peak_kb / 1024:.0f} MB "
                  "overall (the analytics jobs run inside the collector every TRACEHOUSE_ANALYTICS_INTERVAL_S; "
                  "their short-lived IsolationForest process is not counted)")
    console.print(f"collector CPU (with its worker processes) {cpu:.1f} s in the window = "
                  f"{cpu / max(in_window, 1) * 1e6:.0f} µs per persisted span "
                  f"(CPU-bound capacity on 2 idle cores ≈ {2 * in_window / cpu if cpu else float('nan'):,.0f} spans/s)")
    cores = os.cpu_count() or 1
    console.print(f"cores busy in the window: collector {cpu / args.duration:.2f}, whole machine "
                  f"{machine_cpu / args.duration:.2f} of {cores} (senders, this script and other jobs included)")
    if commits:
        count, total, slow = commits
        console.print(f"batch commits: {count:,}, mean {total / max(count, 1) * 1000:.0f} ms, writer committing "
                      f"{total / args.duration:.0%} of the window, "
                      + ", ".join(f"{n} over {limit:g} s" for limit, n in slow))
    console.print(f"on disk: {size / 1e6:.1f} MB = {size / max(persisted, 1):.0f} bytes/span")
    console.print(f"ack → visible in /api/sql under load: {len(probe.delays)} probes, median "
                  f"{percentile(probe.delays, 0.5) * 1000:.0f} ms, max {max(probe.delays, default=float('nan')) * 1000:.0f} ms")
    console.print(f"ratio persisted / in-process floor: {persisted_rate / floor.rate:.2f} "
                  f"({persisted_rate:,.0f} / {floor.rate:,.0f} spans/s)")
    samples = watcher.samples[:: max(1, len(watcher.samples) // 12)]
    if samples:
        console.print("RSS over time (MB): " + ", ".join(f"{t - started:.0f}s={kb / 1024:.0f}" for t, kb, _, _ in samples))
    return 0


if __name__ == "__main__":
    sys.exit(main())
