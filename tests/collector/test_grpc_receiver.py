"""OTLP/gRPC: status codes for every bad input, gzip, partial success, backpressure."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from google.rpc.error_details_pb2 import RetryInfo
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

from tests.collector.otlp_payloads import (
    make_request,
    make_span,
    new_span_id,
    new_trace_id,
    spans_request,
)
from tests.conftest import RunningCollector

METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@pytest.fixture
def channel(collector: RunningCollector) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(collector.grpc_endpoint) as ch:
        yield ch


def export(
    channel: grpc.Channel, request: ExportTraceServiceRequest, **kwargs: object
) -> ExportTraceServiceResponse:
    return TraceServiceStub(channel).Export(request, timeout=30, **kwargs)


def assert_still_serving(collector: RunningCollector, channel: grpc.Channel) -> None:
    request = spans_request(2)
    trace = request.resource_spans[0].scope_spans[0].spans[0].trace_id.hex()
    export(channel, request)
    assert collector.sql("SELECT count(*) FROM spans WHERE trace_id = ?", [trace]) == [(2,)]


def test_export_is_stored(collector: RunningCollector, channel: grpc.Channel) -> None:
    response = export(channel, spans_request(4, service="grpc-svc"))
    assert response.partial_success.rejected_spans == 0
    assert collector.sql("SELECT count(*) FROM spans WHERE service_name = 'grpc-svc'") == [(4,)]


def test_gzip_compressed_export(collector: RunningCollector, channel: grpc.Channel) -> None:
    export(channel, spans_request(3, service="grpc-gzip"), compression=grpc.Compression.Gzip)
    assert collector.sql("SELECT count(*) FROM spans WHERE service_name = 'grpc-gzip'") == [(3,)]


def test_malformed_protobuf_is_invalid_argument(
    collector: RunningCollector, channel: grpc.Channel
) -> None:
    raw = channel.unary_unary(METHOD)  # no serializer: send bytes as they are
    with pytest.raises(grpc.RpcError) as excinfo:
        raw(b"\x0a\xff\xff\xff\xff\x0f garbage", timeout=30)
    assert excinfo.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid OTLP protobuf" in excinfo.value.details()
    assert_still_serving(collector, channel)


def test_invalid_ids_are_partial_success(
    collector: RunningCollector, channel: grpc.Channel
) -> None:
    trace = new_trace_id()
    spans = [make_span(trace, new_span_id(), "good"), make_span(trace, b"\x00" * 8, "zero-id")]
    response = export(channel, make_request(spans))
    assert response.partial_success.rejected_spans == 1
    assert "zero-id" in response.partial_success.error_message
    assert collector.sql("SELECT name FROM spans WHERE trace_id = ?", [trace.hex()]) == [("good",)]


def test_oversized_request_is_resource_exhausted(make_collector) -> None:  # type: ignore[no-untyped-def]
    collector = make_collector(max_request_bytes=64 * 1024)
    big = spans_request(1)
    big.resource_spans[0].scope_spans[0].spans[0].name = "x" * 100_000
    with grpc.insecure_channel(collector.grpc_endpoint) as ch:
        with pytest.raises(grpc.RpcError) as excinfo:
            export(ch, big)
        assert excinfo.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # Compressed below the limit but over it once inflated: refused as well.
        with pytest.raises(grpc.RpcError) as excinfo:
            export(ch, big, compression=grpc.Compression.Gzip)
        assert excinfo.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert_still_serving(collector, ch)


def test_full_queue_is_unavailable(make_collector) -> None:  # type: ignore[no-untyped-def]
    collector = make_collector(queue_max_spans=10, batch_max_spans=10)
    writer = collector.server.writer
    release = threading.Event()
    blocked = writer.execute(lambda con: release.wait(30))
    with grpc.insecure_channel(collector.grpc_endpoint) as ch, ThreadPoolExecutor(1) as pool:
        try:
            first = pool.submit(export, ch, spans_request(8))
            while writer.queue_depth < 8:
                threading.Event().wait(0.01)
            with pytest.raises(grpc.RpcError) as excinfo:
                export(ch, spans_request(8))
            assert excinfo.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "queue is full" in excinfo.value.details()
            trailer = dict(excinfo.value.trailing_metadata())["google.rpc.retryinfo-bin"]
            assert (
                RetryInfo.FromString(trailer).retry_delay.seconds == 1
            )  # exporters back off this long
            release.set()
            first.result(30)
        finally:
            release.set()
            blocked.result(30)
        assert collector.sql("SELECT count(*) FROM spans") == [(8,)]
        assert_still_serving(collector, ch)
