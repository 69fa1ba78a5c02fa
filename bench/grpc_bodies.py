"""Concurrent large gRPC Export calls against a real collector: its peak RSS and what each got.

``python -m bench.grpc_bodies --calls 8 24 48 --mb 12``: for each count N, a fresh collector
(``python -m collector``, DuckDB in a temporary folder) takes N concurrent Export calls of about
``--mb`` MB each (real ExportTraceServiceRequest bodies: spans with ~250 KB attribute values),
from N separate gRPC connections, at once. Each sender retries a refusal (UNAVAILABLE,
RESOURCE_EXHAUSTED) after 1 s like an OTLP exporter, until ``--give-up`` seconds. Printed per
N: the collector's idle and peak RSS (VmRSS sampled every 10 ms), first answers, retries, calls
acknowledged, spans stored, seconds. Loopback only; every process it starts is stopped by PID.
"""

from __future__ import annotations

import argparse
import collections
import tempfile
import threading
import time
from pathlib import Path

import grpc
import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from bench.ingest import ProcessWatcher, free_port, machine, sql, start_collector, start_senders

rss_kb = ProcessWatcher.rss_kb

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
VALUE_BYTES = 250 * 1024  # under TRACEHOUSE_MAX_PAYLOAD_BYTES: stored whole
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED}


def big_request(call: int, megabytes: float) -> bytes:
    """One trace of spans with ~250 KB prompt-like attribute values, about ``megabytes`` in all."""
    text = (f"call {call}: the agent asked the model to summarise the quarterly report. " * 4000)[:VALUE_BYTES]
    trace_id = call.to_bytes(16, "big")  # calls count from 1: never the invalid all-zero id
    start = time.time_ns()
    spans = [
        Span(trace_id=trace_id, span_id=(call * 1000 + i + 1).to_bytes(8, "big"), name=f"llm {i}",
             start_time_unix_nano=start, end_time_unix_nano=start + 1_000_000,
             attributes=[KeyValue(key="gen_ai.prompt", value=AnyValue(string_value=text))])
        for i in range(max(1, int(megabytes * 1024 * 1024 / VALUE_BYTES)))
    ]
    resource = ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])
    resource.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value="grpc-bodies")))
    return ExportTraceServiceRequest(resource_spans=[resource]).SerializeToString()


def send(target: str, body: bytes, go: threading.Barrier, give_up_at: float, out: dict[str, object]) -> None:
    """One connection, one request, retried after 1 s on a refusal until acknowledged or given up."""
    channel = grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1),
                                                     ("grpc.max_send_message_length", 64 * 1024 * 1024)])
    export = channel.unary_unary(EXPORT)
    grpc.channel_ready_future(channel).result(timeout=10)
    go.wait()
    codes: list[str] = []
    try:
        while time.time() < give_up_at:
            try:
                export(body, timeout=max(1.0, give_up_at - time.time()))
                codes.append("OK")
                break
            except grpc.RpcError as exc:
                codes.append(exc.code().name)
                if exc.code() not in RETRYABLE:
                    break
                time.sleep(1.0)
    finally:
        channel.close()
    out["codes"] = codes


def run(calls: int, megabytes: float, give_up_s: float, env: dict[str, str]) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="grpc-bodies-") as folder:
        grpc_port, http_port = free_port(), free_port()
        process = start_collector(Path(folder) / "bodies.duckdb", grpc_port, http_port,
                                  env={"TRACEHOUSE_ANALYTICS_INTERVAL_S": "3600", **env})
        try:
            bodies = [big_request(call + 1, megabytes) for call in range(calls)]
            time.sleep(1.0)
            idle = rss_kb(process.pid)
            go = threading.Barrier(calls + 1)
            give_up_at = time.time() + give_up_s
            results: list[dict[str, object]] = [{} for _ in range(calls)]
            senders = [threading.Thread(target=send, args=(f"127.0.0.1:{grpc_port}", body, go, give_up_at, out))
                       for body, out in zip(bodies, results)]
            for thread in senders:
                thread.start()
            go.wait()
            started = peak_at = time.time()
            peak = idle
            while any(thread.is_alive() for thread in senders):
                kb = rss_kb(process.pid)
                if kb > peak:
                    peak, peak_at = kb, time.time()
                time.sleep(0.01)
            seconds = time.time() - started
            with httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=30) as client:
                stored = sql(client, "SELECT count(*) FROM spans")[0][0]
        finally:
            process.terminate()
            process.wait(60)
    firsts = collections.Counter(str(r["codes"][0]) if r.get("codes") else "none" for r in results)  # type: ignore[index]
    return {
        "calls": calls, "body_mb": len(bodies[0]) / 1024**2, "idle_mb": idle / 1024, "peak_mb": peak / 1024,
        "peak_after_s": peak_at - started, "first": dict(firsts),
        "retries": sum(len(r.get("codes", [])) - 1 for r in results),  # type: ignore[arg-type]
        "acked": sum(1 for r in results if r.get("codes", [""])[-1] == "OK"),  # type: ignore[index]
        "spans_sent": calls * (len(bodies[0]) // VALUE_BYTES), "spans_stored": stored, "seconds": seconds,
    }


def common_case(seconds: float, senders: int, env: dict[str, str]) -> str:
    """The ingest load of bench.ingest (realistic agent spans, 50 traces a request) for a short
    while: what the bound costs when nothing is large."""
    with tempfile.TemporaryDirectory(prefix="grpc-bodies-") as folder:
        grpc_port, http_port = free_port(), free_port()
        process = start_collector(Path(folder) / "common.duckdb", grpc_port, http_port,
                                  env={"TRACEHOUSE_ANALYTICS_INTERVAL_S": "3600", **env})
        try:
            procs, results = start_senders(senders, f"127.0.0.1:{grpc_port}", 50, seconds)
            started, peak = time.time(), 0
            while any(p.is_alive() for p in procs) and time.time() < started + seconds + 60:
                peak = max(peak, rss_kb(process.pid))
                time.sleep(0.05)
            outcomes = [results.get(timeout=60) for _ in procs]
            for p in procs:
                p.join(10)
        finally:
            process.terminate()
            process.wait(60)
    acked = sum(o[0] for o in outcomes)
    retries = sum(o[1] for o in outcomes)
    return (f"common case, {senders} senders x {seconds:.0f} s: {acked / seconds:,.0f} spans/s acknowledged, "
            f"{retries} retries, collector peak RSS {peak / 1024:.0f} MB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, nargs="+", default=[8, 24, 48])
    parser.add_argument("--mb", type=float, default=12.0, help="size of each request body")
    parser.add_argument("--give-up", type=float, default=120.0, help="seconds a sender keeps retrying")
    parser.add_argument("--env", nargs="*", default=[], help="more TRACEHOUSE_*=value settings")
    parser.add_argument("--common", type=float, default=0, metavar="SECONDS",
                        help="instead: the ingest load of small requests for this long (6 senders)")
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    print(f"machine: {machine()}")
    if args.common:
        print(common_case(args.common, 6, env), flush=True)
        return 0
    for calls in args.calls:
        r = run(calls, args.mb, args.give_up, env)
        print(f"N={r['calls']:>3} body {r['body_mb']:.1f} MB: RSS idle {r['idle_mb']:.0f} MB, peak {r['peak_mb']:.0f} MB "
              f"(+{r['peak_mb'] - r['idle_mb']:.0f} MB, at {r['peak_after_s']:.1f} s); first answers {r['first']}; "
              f"retries {r['retries']}; acknowledged {r['acked']}/{calls}; spans {r['spans_stored']}/{r['spans_sent']}; "
              f"{r['seconds']:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
