"""OTLP/HTTP: protobuf and JSON, gzip, partial success, and every bad input the spec names."""

from __future__ import annotations

import gzip
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from tests.collector.otlp_payloads import (
    gzipped,
    json_request,
    json_span,
    make_request,
    make_span,
    new_span_id,
    new_trace_id,
    spans_request,
)
from tests.conftest import RunningCollector

PB = {"Content-Type": "application/x-protobuf"}
JS = {"Content-Type": "application/json"}


def post(collector: RunningCollector, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{collector.http_url}/v1/traces", content=body, headers=headers, timeout=30)


def assert_still_serving(collector: RunningCollector) -> None:
    """After a bad request, a good one is still stored."""
    request = spans_request(2)
    trace = request.resource_spans[0].scope_spans[0].spans[0].trace_id.hex()
    assert post(collector, request.SerializeToString(), PB).status_code == 200
    assert collector.sql("SELECT count(*) FROM spans WHERE trace_id = ?", [trace]) == [(2,)]


def test_protobuf_request_is_stored_and_answered_in_protobuf(collector: RunningCollector) -> None:
    request = spans_request(5, service="pb-svc")
    response = post(collector, request.SerializeToString(), PB)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-protobuf"
    parsed = ExportTraceServiceResponse.FromString(response.content)
    assert parsed.partial_success.rejected_spans == 0
    assert collector.sql("SELECT count(*) FROM spans WHERE service_name = 'pb-svc'") == [(5,)]


def test_json_request_with_hex_ids_and_numeric_enums(collector: RunningCollector) -> None:
    trace, root, child = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174", "eee19b7ec3c1b173"
    body = json_request(
        [json_span(trace, root, "root"), json_span(trace, child, "child", parent=root)]
    )
    response = post(collector, body, JS)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    rows = collector.sql(
        "SELECT span_id, parent_span_id, span_kind, status, status_message FROM spans WHERE trace_id = ? ORDER BY name DESC",
        [trace],
    )
    assert rows == [
        (root, None, "client", "error", "boom"),
        (child, root, "client", "error", "boom"),
    ]


@pytest.mark.parametrize("kind", ["protobuf", "json"])
def test_gzip_bodies_are_accepted(collector: RunningCollector, kind: str) -> None:
    service = f"gzip-{kind}"
    if kind == "protobuf":
        body, headers, expected = spans_request(3, service=service).SerializeToString(), PB, 3
    else:
        body = json_request([json_span(new_trace_id().hex(), new_span_id().hex())], service=service)
        headers, expected = JS, 1
    response = post(collector, gzipped(body), {**headers, "Content-Encoding": "gzip"})
    assert response.status_code == 200, response.text
    assert collector.sql("SELECT count(*) FROM spans WHERE service_name = ?", [service]) == [
        (expected,)
    ]


def test_invalid_ids_are_rejected_one_by_one_and_the_rest_stored(
    collector: RunningCollector,
) -> None:
    trace = new_trace_id()
    good = [make_span(trace, new_span_id(), f"good-{i}") for i in range(3)]
    bad = [
        make_span(trace, b"\x00" * 8, "zero-span-id"),
        make_span(b"\x01" * 15, new_span_id(), "short-trace-id"),
    ]
    response = post(collector, make_request(good + bad).SerializeToString(), PB)
    assert response.status_code == 200
    partial = ExportTraceServiceResponse.FromString(response.content).partial_success
    assert partial.rejected_spans == 2
    assert "zero-span-id" in partial.error_message and "short-trace-id" in partial.error_message
    assert collector.sql("SELECT count(*) FROM spans WHERE trace_id = ?", [trace.hex()]) == [(3,)]


def test_error_message_quotes_three_reasons_and_counts_the_rest(
    collector: RunningCollector,
) -> None:
    trace = new_trace_id()
    bad = [make_span(trace, b"\x00" * 8, f"bad-{i}") for i in range(5)]
    response = post(
        collector,
        make_request([make_span(trace, new_span_id(), "good"), *bad]).SerializeToString(),
        PB,
    )
    partial = ExportTraceServiceResponse.FromString(response.content).partial_success
    assert partial.rejected_spans == 5
    assert partial.error_message.startswith("5 span(s) rejected: span 'bad-0'")
    assert "bad-2" in partial.error_message and "bad-3" not in partial.error_message
    assert partial.error_message.endswith("(and 2 more)")


def test_invalid_hex_id_in_json_is_reported_in_partial_success(collector: RunningCollector) -> None:
    trace = new_trace_id().hex()
    body = json_request(
        [json_span(trace, new_span_id().hex(), "ok"), json_span(trace, "not-hex!", "bad-id")]
    )
    response = post(collector, body, JS)
    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "1" and "bad-id" in partial["errorMessage"]
    assert collector.sql("SELECT name FROM spans WHERE trace_id = ?", [trace]) == [("ok",)]


@pytest.mark.parametrize(
    "body, headers, needle",
    [
        (b"\x0a\xff\xff\xff\xff\x0f garbage", PB, "not a valid OTLP protobuf"),
        (b'{"resourceSpans": [', JS, "not valid JSON"),
        (b"[1, 2, 3]", JS, "must be an object"),
        (b'{"resourceSpans": [{"scopeSpans": 7}]}', JS, "not a valid OTLP/JSON"),
        (
            b"\x1f\x8b\x08\x00 definitely not gzip",
            {**PB, "Content-Encoding": "gzip"},
            "not valid gzip",
        ),
    ],
    ids=["protobuf", "json-syntax", "json-not-object", "json-wrong-shape", "gzip"],
)
def test_malformed_bodies_get_400_with_a_reason(
    collector: RunningCollector, body: bytes, headers: dict[str, str], needle: str
) -> None:
    response = post(collector, body, headers)
    assert response.status_code == 400
    if headers["Content-Type"] == "application/json":
        message = response.json()["message"]
    else:
        message = status_pb2.Status.FromString(response.content).message
    assert needle in message
    assert_still_serving(collector)


@pytest.mark.parametrize(
    "headers",
    [{"Content-Type": "text/plain"}, {}, {**PB, "Content-Encoding": "br"}],
    ids=["text-plain", "no-content-type", "brotli"],
)
def test_unsupported_content_type_or_encoding_gets_415(
    collector: RunningCollector, headers: dict[str, str]
) -> None:
    response = post(collector, spans_request(1).SerializeToString(), headers)
    assert response.status_code == 415
    assert_still_serving(collector)


def test_oversized_requests_get_413(make_collector) -> None:  # type: ignore[no-untyped-def]
    collector = make_collector(max_request_bytes=64 * 1024)
    big = spans_request(1)
    big.resource_spans[0].scope_spans[0].spans[0].name = "x" * 100_000
    body = big.SerializeToString()
    # Declared Content-Length over the limit.
    assert post(collector, body, PB).status_code == 413
    # No Content-Length (chunked): the streamed size is counted.
    streamed = httpx.post(
        f"{collector.http_url}/v1/traces",
        content=iter([body[:50_000], body[50_000:]]),
        headers=PB,
        timeout=30,
    )
    assert streamed.status_code == 413
    # A gzip bomb: 10 MB of zeros compress to about 10 KB, under the limit on the wire.
    bomb = gzip.compress(b"\x00" * (10 * 1024 * 1024))
    assert len(bomb) < 64 * 1024
    response = post(collector, bomb, {**PB, "Content-Encoding": "gzip"})
    assert response.status_code == 413
    assert "decompressed" in status_pb2.Status.FromString(response.content).message
    assert_still_serving(collector)


def test_full_queue_answers_503_with_retry_after(make_collector) -> None:  # type: ignore[no-untyped-def]
    collector = make_collector(queue_max_spans=10, batch_max_spans=10)
    writer = collector.server.writer
    release = threading.Event()
    blocked = writer.execute(lambda con: release.wait(30))  # holds the writer thread
    try:
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(post, collector, spans_request(8).SerializeToString(), PB)
            while writer.queue_depth < 8:  # the first request's spans are queued, not committed
                threading.Event().wait(0.01)
            refused = post(collector, spans_request(8).SerializeToString(), PB)
            assert refused.status_code == 503
            assert refused.headers["Retry-After"] == "1"
            assert "queue is full" in status_pb2.Status.FromString(refused.content).message
            release.set()
            assert first.result(30).status_code == 200
    finally:
        release.set()
        blocked.result(30)
    assert collector.sql("SELECT count(*) FROM spans") == [(8,)]
    assert_still_serving(collector)


def test_request_larger_than_the_whole_queue_is_refused_at_once(make_collector) -> None:  # type: ignore[no-untyped-def]
    collector = make_collector(queue_max_spans=10, batch_max_spans=10)
    response = post(collector, spans_request(11).SerializeToString(), PB)
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert_still_serving(collector)


def test_request_bytes_in_progress_are_bounded(make_collector) -> None:  # type: ignore[no-untyped-def]
    """Large bodies waiting for their commit count against 4 x max_request_bytes; then 503."""
    limit = 64 * 1024
    collector = make_collector(max_request_bytes=limit)
    pipeline = collector.server.pipeline
    writer = collector.server.writer
    release = threading.Event()
    blocked = writer.execute(lambda con: release.wait(30))

    def big_request() -> bytes:
        request = spans_request(1)
        request.resource_spans[0].scope_spans[0].spans[0].name = "x" * (limit // 2)
        return request.SerializeToString()

    try:
        with ThreadPoolExecutor(8) as pool:
            admitted = [pool.submit(post, collector, big_request(), PB) for _ in range(7)]
            while (
                writer.queue_depth < 7
            ):  # 7 bodies of ~32 KB fit in 4 x 64 KB, all wait for commit
                threading.Event().wait(0.01)
            refused = post(collector, big_request(), PB)
            assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
            assert "busy" in status_pb2.Status.FromString(refused.content).message
            release.set()
            assert [f.result(30).status_code for f in admitted] == [200] * 7
    finally:
        release.set()
        blocked.result(30)
    assert pipeline.inflight_bytes == 0
    assert_still_serving(collector)
