"""Build OTLP requests for tests: protobuf messages and OTLP/JSON documents with hex ids."""

from __future__ import annotations

import gzip
import json
import os
import time
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span


def new_trace_id() -> bytes:
    return os.urandom(16)


def new_span_id() -> bytes:
    return os.urandom(8)


def make_span(
    trace_id: bytes,
    span_id: bytes,
    name: str = "span",
    parent: bytes = b"",
    start_ns: int | None = None,
    attributes: dict[str, str] | None = None,
) -> Span:
    start = start_ns or time.time_ns()
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        name=name,
        kind=Span.SPAN_KIND_INTERNAL,
        start_time_unix_nano=start,
        end_time_unix_nano=start + 1_000_000,
        attributes=[
            KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in (attributes or {}).items()
        ],
    )


def make_request(spans: list[Span], service: str = "tests") -> ExportTraceServiceRequest:
    resource_spans = ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])
    resource_spans.resource.attributes.append(
        KeyValue(key="service.name", value=AnyValue(string_value=service))
    )
    return ExportTraceServiceRequest(resource_spans=[resource_spans])


def spans_request(
    count: int, trace_id: bytes | None = None, service: str = "tests"
) -> ExportTraceServiceRequest:
    """One trace of `count` sibling spans under no parent."""
    trace = trace_id or new_trace_id()
    return make_request(
        [make_span(trace, new_span_id(), f"span-{i}") for i in range(count)], service
    )


def json_request(spans: list[dict[str, Any]], service: str = "tests") -> bytes:
    """OTLP/JSON: camelCase keys, hex ids, enums as numbers, 64-bit ints as strings."""
    document = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": service}}]
                },
                "scopeSpans": [{"scope": {"name": "tests"}, "spans": spans}],
            }
        ]
    }
    return json.dumps(document).encode()


def json_span(
    trace_id: str, span_id: str, name: str = "json-span", parent: str = ""
) -> dict[str, Any]:
    start = time.time_ns()
    return {
        "traceId": trace_id,
        "spanId": span_id,
        "parentSpanId": parent,
        "name": name,
        "kind": 3,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + 2_000_000),
        "attributes": [{"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}}],
        "status": {"code": 2, "message": "boom"},
    }


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data)
