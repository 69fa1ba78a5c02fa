"""Concurrent large gRPC Export calls: a call takes its room in the request byte budget before
gRPC reads its message, so calls beyond the budget do not hold their bodies in memory, and every
one is stored once the exporter retries."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import grpc
import httpx
from google.rpc.error_details_pb2 import RetryInfo
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.collector.otlp_payloads import make_request, make_span, new_trace_id, spans_request
from tests.collector.test_access import INGEST_A
from tests.conftest import CollectorProcess, RunningCollector

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
MB = 1024 * 1024


def _large_body(size: int) -> bytes:
    """One trace whose spans carry 200 KB prompts (stored whole), about ``size`` bytes in all."""
    trace = new_trace_id()
    text = ("the agent asked the model to summarise the quarterly report; " * 4000)[: 200 * 1024]
    spans = [make_span(trace, (i + 1).to_bytes(8, "big"), f"llm {i}") for i in range(size // (200 * 1024))]
    for span in spans:
        span.attributes.append(KeyValue(key="gen_ai.prompt", value=AnyValue(string_value=text)))
    return make_request(spans).SerializeToString()


def _spans_in(body: bytes) -> int:
    request = ExportTraceServiceRequest.FromString(body)
    return sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)


def _channel(target: str) -> grpc.Channel:
    """A connection of its own (grpc shares one between channels to the same address by default)."""
    return grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1),
                                                  ("grpc.max_send_message_length", 64 * MB)])  # fmt: skip


def _stalled_uploads(http_url: str, count: int, declared: int, key: str | None = None) -> list[socket.socket]:
    """HTTP uploads that declare ``declared`` bytes and send one: each holds that much room."""
    url = urlsplit(http_url)
    auth = f"x-api-key: {key}\r\n" if key else ""
    uploads = []
    for _ in range(count):
        upload = socket.create_connection((url.hostname, url.port))
        upload.sendall(f"POST /v1/traces HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: application/x-protobuf\r\n"
                       f"{auth}Content-Length: {declared}\r\n\r\n".encode() + b"\n")  # fmt: skip
        uploads.append(upload)
    return uploads


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def _send_once(target: str, body: bytes) -> grpc.RpcError | None:
    with _channel(target) as channel:
        try:
            channel.unary_unary(EXPORT)(body, timeout=60)
        except grpc.RpcError as exc:
            return exc
    return None


def _send_until_acknowledged(target: str, body: bytes) -> int:
    """Like an OTLP exporter: retry UNAVAILABLE after its RetryInfo delay; returns the retries."""
    retries = 0
    with _channel(target) as channel:
        export = channel.unary_unary(EXPORT)
        while True:
            try:
                export(body, timeout=60)
                return retries
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc.details()
                assert retries < 60, "never acknowledged"
                delay = RetryInfo.FromString(dict(exc.trailing_metadata())["google.rpc.retryinfo-bin"]).retry_delay
                retries += 1
                time.sleep(delay.seconds + delay.nanos / 1e9)


def test_grpc_calls_beyond_the_budget_wait_without_their_bodies_in_memory(collector_process) -> None:  # type: ignore[no-untyped-def]
    """With the budget held by stalled uploads, 24 calls of ~4 MB are refused as busy without the
    collector reading them (it read all ~94 MB of them first, before the change); then all 24 are
    stored once retried."""
    limit = 4 * MB
    child: CollectorProcess = collector_process(max_request_bytes=str(limit), analytics_interval_s="3600")
    bodies = [_large_body(limit - 200 * 1024) for _ in range(24)]
    with ThreadPoolExecutor(len(bodies)) as pool:
        probe = spans_request(1).SerializeToString()  # stored once, however often it gets in
        _send_until_acknowledged(child.grpc_endpoint, probe)  # gRPC warmed up
        uploads = _stalled_uploads(child.http_url, 4, limit)  # 4 x limit: the whole budget
        try:
            while (refused := _send_once(child.grpc_endpoint, probe)) is None:
                pass  # the uploads have not all taken their room yet: the probe got in
            assert refused.code() == grpc.StatusCode.UNAVAILABLE and "busy" in refused.details()

            idle_kb = max(_rss_kb(child.pid) for _ in range(5))
            peak_kb = idle_kb
            calls = [pool.submit(_send_once, child.grpc_endpoint, body) for body in bodies]
            while not all(call.done() for call in calls):
                peak_kb = max(peak_kb, _rss_kb(child.pid))
                time.sleep(0.005)
            outcomes = [call.result() for call in calls]
        finally:
            for upload in uploads:
                upload.close()
        assert all(o is not None and o.code() == grpc.StatusCode.UNAVAILABLE for o in outcomes)
        held_mb = (peak_kb - idle_kb) / 1024
        sent_mb = sum(map(len, bodies)) / MB
        assert held_mb < sent_mb / 3, f"the collector grew by {held_mb:.0f} MB for {sent_mb:.0f} MB of refused calls"

        retries = list(pool.map(_send_until_acknowledged, [child.grpc_endpoint] * len(bodies), bodies))
    assert sum(retries) > 0  # they did not all fit at once: some waited, were refused and retried
    rows = httpx.post(f"{child.http_url}/api/sql", json={"sql": "SELECT count(*) FROM spans"}, timeout=30)
    assert rows.json()["rows"] == [[1 + sum(map(_spans_in, bodies))]]  # and the probe


def _exporter_batches(count: int, spans: int, prompt_bytes: int) -> list[list]:  # type: ignore[type-arg]
    """``count`` batches of SDK spans, as the official exporter is handed them."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tests.grpc_bodies")
    prompt = "x" * prompt_bytes
    for _ in range(count * spans):
        with tracer.start_as_current_span("chat", attributes={"gen_ai.prompt": prompt}):
            pass
    finished = list(memory.get_finished_spans())
    return [finished[i : i + spans] for i in range(0, len(finished), spans)]


def test_concurrent_large_exports_from_the_official_exporter_are_all_stored(make_collector) -> None:  # type: ignore[no-untyped-def]
    """16 exporters at once, each with a batch near the size limit, while commits are held: the
    budget lets 4 in, the rest are refused as busy and retried by the exporter until stored."""
    limit = 256 * 1024
    collector: RunningCollector = make_collector(max_request_bytes=limit)
    batches = _exporter_batches(16, 4, 55 * 1024)  # ~220 KB a request: 4 fill the 1 MB budget
    writer, metrics = collector.server.writer, collector.server.metrics
    assert metrics is not None
    release = threading.Event()
    blocked = writer.execute(lambda con: release.wait(30))
    with ThreadPoolExecutor(len(batches)) as pool:
        exports = [pool.submit(OTLPSpanExporter(endpoint=collector.grpc_endpoint, insecure=True, timeout=60).export, b)
                   for b in batches]  # fmt: skip
        _wait_until(lambda: (metrics.registry.get_sample_value("tracehouse_spans_rejected_total", {"reason": "busy"}) or 0) > 0)
        release.set()  # some found no room and were refused: now the held ones commit
        assert [e.result(90) for e in exports] == [SpanExportResult.SUCCESS] * len(batches)
    blocked.result(30)
    _wait_until(lambda: collector.server.pipeline.inflight_bytes == 0)
    assert collector.sql("SELECT count(*) FROM spans") == [(16 * 4,)]


def test_grpc_calls_cancelled_waiting_or_admitted_give_their_room_back(make_collector) -> None:  # type: ignore[no-untyped-def]
    """The room a call takes before its message is read lasts exactly as long as the call: a call
    whose deadline passes while it waits for room, or while its spans wait for their commit,
    leaves the budget as it found it."""
    limit = 64 * 1024
    collector: RunningCollector = make_collector(max_request_bytes=limit)
    pipeline = collector.server.pipeline
    body = spans_request(5).SerializeToString()
    with _channel(collector.grpc_endpoint) as channel:
        export = channel.unary_unary(EXPORT)
        uploads = _stalled_uploads(collector.http_url, 4, limit)
        try:
            while pipeline.inflight_bytes < 4 * limit:
                time.sleep(0.01)
            for _ in range(3):  # no room: cancelled by its deadline while it waits
                try:
                    export(body, timeout=0.2)
                except grpc.RpcError as exc:
                    assert exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert pipeline.inflight_bytes == 4 * limit
        finally:
            for upload in uploads:
                upload.close()
        _wait_until(lambda: pipeline.inflight_bytes == 0)

        release = threading.Event()
        blocked = collector.server.writer.execute(lambda con: release.wait(30))
        try:
            for _ in range(3):  # admitted: cancelled while its spans wait for the held commit
                try:
                    export(body, timeout=0.3)
                except grpc.RpcError as exc:
                    assert exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            _wait_until(lambda: pipeline.inflight_bytes == 0)
        finally:
            release.set()
            blocked.result(30)
        export(body, timeout=30)  # still serving
    _wait_until(lambda: pipeline.inflight_bytes == 0)  # given back as the call's task ends
    assert collector.sql("SELECT count(*) FROM spans") == [(5,)]


def test_a_grpc_call_without_a_valid_key_takes_no_room(make_collector) -> None:  # type: ignore[no-untyped-def]
    """With keys configured, a call with no or a wrong key is refused UNAUTHENTICATED before it
    takes room or has its message read: with the budget full it is not held for room and then
    refused as busy (a client without a key could otherwise keep the budget busy), while a call
    with the key waits its turn as before."""
    limit = 64 * 1024
    collector: RunningCollector = make_collector(max_request_bytes=limit, ingest_keys=f"alpha={INGEST_A}")
    pipeline = collector.server.pipeline
    body = spans_request(3).SerializeToString()
    keyed, wrong = (("x-api-key", INGEST_A),), (("x-api-key", INGEST_A[:-1] + "B"),)
    with _channel(collector.grpc_endpoint) as channel:
        export = channel.unary_unary(EXPORT)
        uploads = _stalled_uploads(collector.http_url, 4, limit, key=INGEST_A)
        try:
            _wait_until(lambda: pipeline.inflight_bytes >= 4 * limit)
            for metadata in ((), wrong):
                try:
                    export(body, metadata=metadata, timeout=30)
                except grpc.RpcError as exc:
                    assert exc.code() == grpc.StatusCode.UNAUTHENTICATED, exc.details()
                else:
                    raise AssertionError("a call without a valid key was accepted")
            try:
                export(body, metadata=keyed, timeout=30)
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAVAILABLE and "busy" in exc.details()
            else:
                raise AssertionError("a call found room in a full budget")
            assert pipeline.inflight_bytes == 4 * limit
        finally:
            for upload in uploads:
                upload.close()
        _wait_until(lambda: pipeline.inflight_bytes == 0)
        export(body, metadata=keyed, timeout=30)
    assert collector.sql("SELECT count(*) FROM spans") == [(3,)]


def _wait_until(condition: Callable[[], bool], within_s: float = 20) -> None:
    deadline = time.time() + within_s
    while not condition():
        assert time.time() < deadline, "condition not met"
        time.sleep(0.01)
