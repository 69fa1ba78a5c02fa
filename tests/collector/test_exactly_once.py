"""A span re-sent with the same trace and span id is stored once, whatever the path."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

from tests.collector.otlp_payloads import spans_request
from tests.conftest import RunningCollector


def send(collector: RunningCollector, request: ExportTraceServiceRequest, protocol: str) -> None:
    if protocol == "grpc":
        with grpc.insecure_channel(collector.grpc_endpoint) as channel:
            TraceServiceStub(channel).Export(request, timeout=30)
    else:
        response = httpx.post(
            f"{collector.http_url}/v1/traces",
            content=request.SerializeToString(),
            headers={"Content-Type": "application/x-protobuf"},
            timeout=30,
        )
        assert response.status_code == 200


def trace_of(request: ExportTraceServiceRequest) -> str:
    return request.resource_spans[0].scope_spans[0].spans[0].trace_id.hex()


@pytest.mark.parametrize("first, second", [("grpc", "grpc"), ("http", "http"), ("grpc", "http")])
def test_resent_request_is_stored_once(
    collector: RunningCollector, first: str, second: str
) -> None:
    request = spans_request(10)
    send(collector, request, first)
    send(collector, request, second)
    trace = trace_of(request)
    assert collector.sql(
        "SELECT count(*), count(DISTINCT span_id) FROM spans WHERE trace_id = ?", [trace]
    ) == [(10, 10)]


def test_span_repeated_inside_one_request_is_stored_once(collector: RunningCollector) -> None:
    request = spans_request(3)
    spans = request.resource_spans[0].scope_spans[0].spans
    spans.append(spans[0])
    send(collector, request, "grpc")
    assert collector.sql("SELECT count(*) FROM spans WHERE trace_id = ?", [trace_of(request)]) == [
        (3,)
    ]


def test_concurrent_resends_in_one_group_commit_are_stored_once(make_collector) -> None:  # type: ignore[no-untyped-def]
    collector = make_collector(batch_interval_ms=200.0)  # a wide window so the copies share a batch
    request = spans_request(20)
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda p: send(collector, request, p), ["grpc", "http"] * 3))
    assert collector.sql("SELECT count(*) FROM spans WHERE trace_id = ?", [trace_of(request)]) == [
        (20,)
    ]
    assert collector.server.writer.stats.duplicates == 100
