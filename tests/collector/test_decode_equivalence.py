"""The tuned hot path gives exactly what the plain one gave (ingest rounds 3 and 4, bench/RESULTS.md).

``decode_request`` reads each protobuf field once and inlines the common attribute types;
``prepare_request`` builds Arrow columns from ``normalize_values`` tuples instead of SpanRows,
and ``normalize_values`` skips the JSON value walk, the UTF-8 encoding of ASCII text and a
second pass over flattened messages where they cannot change the result. All are checked here
against straightforward reference versions (the code before the tuning; the normalizer's in
tests/collector/reference_normalize.py) on the captured fixtures, the benchmark's workload and
generated requests full of edge cases.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from bench.workload import RequestFactory
from collector.arrow_rows import rows_to_arrow
from collector.decode import DecodedRequest, DecodedSpan, Rejected, decode_request, nanos_to_datetime, parse_json
from collector.model import SpanRow
from collector.normalize import normalize_values
from collector.prepare import prepare_request
from tests.collector.reference_normalize import reference_normalize_values

FIXTURES = sorted((Path(__file__).resolve().parent.parent / "fixtures" / "otlp").glob("*/*.json"))
LIMITS = (256 * 1024, 200, 1000)


# -- reference decoder: one accessor call per use, a helper call per value -----------------------

_KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
_CODES = ("unset", "ok", "error")


def _ref_value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which in ("string_value", "int_value", "double_value", "bool_value"):
        return getattr(value, which)
    if which == "array_value":
        return [_ref_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _ref_value(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return None


def _ref_attributes(attributes: Any) -> dict[str, Any]:
    return {kv.key: _ref_value(kv.value) for kv in attributes}


def _ref_reason(span: Any) -> str | None:
    if len(span.trace_id) != 16 or span.trace_id == b"\x00" * 16:
        return f"span {span.name!r}: invalid trace_id (must be 16 bytes / 32 hex digits, not all zero)"
    if len(span.span_id) != 8 or span.span_id == b"\x00" * 8:
        return f"span {span.name!r}: invalid span_id (must be 8 bytes / 16 hex digits, not all zero)"
    if span.parent_span_id and len(span.parent_span_id) != 8:
        return f"span {span.name!r}: invalid parent_span_id (must be 8 bytes / 16 hex digits or empty)"
    if span.start_time_unix_nano == 0:
        return f"span {span.name!r}: start_time_unix_nano is missing"
    if span.end_time_unix_nano and span.end_time_unix_nano < span.start_time_unix_nano:
        return f"span {span.name!r}: end time is before start time"
    return None


def reference_decode(request: ExportTraceServiceRequest) -> DecodedRequest:
    spans: list[DecodedSpan] = []
    rejected: list[Rejected] = []
    index = 0
    for resource_spans in request.resource_spans:
        resource = _ref_attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            schema_url = scope_spans.schema_url or resource_spans.schema_url
            for span in scope_spans.spans:
                reason = _ref_reason(span)
                if reason:
                    rejected.append(Rejected(index, reason))
                    index += 1
                    continue
                parent = span.parent_span_id
                spans.append(
                    DecodedSpan(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=parent.hex() if parent and parent != b"\x00" * 8 else None,
                        name=span.name,
                        span_kind=_KINDS[span.kind] if 0 <= span.kind < 6 else "unspecified",
                        start_unix_nano=span.start_time_unix_nano,
                        end_unix_nano=span.end_time_unix_nano or span.start_time_unix_nano,
                        status_code=_CODES[span.status.code] if 0 <= span.status.code < 3 else "unset",
                        status_message=span.status.message or None,
                        attributes=_ref_attributes(span.attributes),
                        resource=resource,
                        scope_name=scope_spans.scope.name,
                        scope_version=scope_spans.scope.version,
                        schema_url=schema_url,
                        events=[
                            {
                                "name": e.name,
                                "time": nanos_to_datetime(e.time_unix_nano).isoformat(),
                                "attributes": _ref_attributes(e.attributes),
                            }
                            for e in span.events
                        ],
                        links=[
                            {
                                "trace_id": link.trace_id.hex(),
                                "span_id": link.span_id.hex(),
                                "attributes": _ref_attributes(link.attributes),
                            }
                            for link in span.links
                        ],
                    )
                )
                index += 1
    return DecodedRequest(spans, rejected)


def reference_prepare(request: ExportTraceServiceRequest, limit: int, project: str | None) -> tuple[list[dict[str, Any]], list[Rejected]]:
    decoded = reference_decode(request)
    rows = [SpanRow(*reference_normalize_values(span, max_payload_bytes=limit)) for span in decoded.spans]
    if project is not None:
        for row in rows:
            row.project = project
    return rows_to_arrow(rows).to_pylist(), decoded.rejected


# -- requests ------------------------------------------------------------------------------------


def _workload() -> list[bytes]:
    factory = RequestFactory(traces_per_request=3, seed=7)
    return [factory.next() for _ in range(3)]


REQUESTS = [parse_json(path.read_bytes()) for path in FIXTURES] + [
    ExportTraceServiceRequest.FromString(body) for body in _workload()
]


def _assert_same(request: ExportTraceServiceRequest, limit: int, project: str | None) -> None:
    assert decode_request(request) == reference_decode(request)
    table, rejected = prepare_request(request.SerializeToString(), "protobuf", limit, project=project)
    expected_rows, expected_rejected = reference_prepare(request, limit, project)
    assert table.to_pylist() == expected_rows
    assert rejected == expected_rejected


@pytest.mark.parametrize("limit", LIMITS)
@pytest.mark.parametrize("project", [None, "team-a"])
def test_fixtures_and_workload_decode_and_prepare_as_the_reference(limit: int, project: str | None) -> None:
    assert len(REQUESTS) > len(FIXTURES)  # the workload is in
    for request in REQUESTS:
        _assert_same(request, limit, project)


_ids = st.sampled_from([b"", b"\x00" * 8, b"\x00" * 16, b"\x01" * 8, b"\x02" * 16, b"\x03" * 5])
_scalars = st.one_of(
    st.builds(lambda s: AnyValue(string_value=s), st.text(max_size=80)),
    st.builds(lambda i: AnyValue(int_value=i), st.integers(-(2**63), 2**63 - 1)),
    st.builds(lambda d: AnyValue(double_value=d), st.floats(allow_nan=False)),  # NaN != NaN in a dict compare
    st.builds(lambda b: AnyValue(bool_value=b), st.booleans()),
    st.builds(lambda b: AnyValue(bytes_value=b), st.binary(max_size=12)),
    st.just(AnyValue()),
)


def _nested(children: st.SearchStrategy[AnyValue]) -> st.SearchStrategy[AnyValue]:
    def array(values: list[AnyValue]) -> AnyValue:
        value = AnyValue()
        value.array_value.values.extend(values)
        return value

    def kvlist(items: list[tuple[str, AnyValue]]) -> AnyValue:
        value = AnyValue()
        for key, item in items:
            value.kvlist_value.values.add(key=key).value.CopyFrom(item)
        return value

    return st.builds(array, st.lists(children, max_size=3)) | st.builds(
        kvlist, st.lists(st.tuples(st.text(max_size=8), children), max_size=3)
    )


_values = st.recursive(_scalars, _nested, max_leaves=6)
_attributes = st.lists(
    st.tuples(st.sampled_from(["input.value", "llm.model_name", "gen_ai.usage.input_tokens", "x", ""]) | st.text(max_size=10), _values),
    max_size=5,
)

# Keys every convention reads, in any order, repeated, with the values they expect or others.
_CONVENTION_KEYS = [
    "openinference.span.kind", "llm.model_name", "llm.provider", "llm.token_count.prompt",
    "llm.token_count.completion", "llm.token_count.prompt_details.cache_read", "input.value",
    "output.value", "tool.name", "agent.name", "graph.node.id", "session.id", "user.id",
    "llm.input_messages.0.message.role", "llm.input_messages.0.message.content",
    "llm.input_messages.1.message.content", "llm.input_messages.x.message.content",
    "llm.output_messages.0.message.content", "llm.output_messages.0.message.tool_calls.0.tool_call.id",
    "gen_ai.operation.name", "gen_ai.request.model", "gen_ai.response.model", "gen_ai.provider.name",
    "gen_ai.system", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.usage.prompt_tokens",
    "gen_ai.usage.reasoning.output_tokens", "gen_ai.tool.name", "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result", "gen_ai.agent.name", "gen_ai.handoff.from_agent", "gen_ai.handoff.to_agent",
    "gen_ai.guardrail.triggered", "gen_ai.input.messages", "gen_ai.output.messages",
    "gen_ai.conversation.id", "gen_ai.workflow.name", "traceloop.span.kind", "traceloop.workflow.name",
    "traceloop.entity.input", "traceloop.entity.output", "traceloop.association.properties.session_id",
    "openai_agents.span_type", "openai_agents.handoff.from_agent", "openai_agents.handoff.to_agent",
    "openai_agents.guardrail.triggered", "error.type", "enduser.id",
]
_WORDS = [
    "LLM", "TOOL", "AGENT", "CHAIN", "GUARDRAIL", "EMBEDDING", " llm ", "chat", "execute_tool",
    "invoke_agent", "handoff", "guardrail", "unknown", "embeddings", "workflow", "agent", "tool", "task",
    "trace", "custom", "speech", "OpenAI Agent", "Agent Workflow", "true", "0", " 12 ", "gpt-4o", "",
]
_long_text = st.text(st.characters(codec="utf-8"), min_size=40, max_size=300) | st.builds(
    lambda n, c: c * n, st.integers(40, 300), st.sampled_from(["a", "é", "😀", "\n", '"'])
)
_convention_values = st.one_of(
    st.builds(lambda s: AnyValue(string_value=s), st.sampled_from(_WORDS) | _long_text),
    _values,
)
_convention_attributes = st.lists(
    st.tuples(st.sampled_from(_CONVENTION_KEYS), _convention_values), min_size=1, max_size=12
)
# An OpenInference model call with flattened messages only: input/output rebuilt from them, long
# values lifted out of the attributes (nested paths and cut lists are not).
_MESSAGE_KEYS = [
    f"llm.{side}_messages.{index}.message.{path}"
    for side in ("input", "output")
    for index in ("0", "1", "10")
    for path in ("role", "content", "tool_calls.0.tool_call.function.arguments")
]
_flattened_llm_attributes: st.SearchStrategy[list[tuple[str, AnyValue]]] = st.builds(
    lambda kind, items: [("openinference.span.kind", AnyValue(string_value=kind)), *items],
    st.sampled_from(["LLM", "llm"]),
    st.lists(st.tuples(st.sampled_from(_MESSAGE_KEYS + _CONVENTION_KEYS[:8]), _convention_values), max_size=10),
).flatmap(st.permutations)


@st.composite
def _requests(draw: st.DrawFn) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    for _ in range(draw(st.integers(1, 2))):
        resource_spans = request.resource_spans.add(schema_url=draw(st.sampled_from(["", "r"])))
        for key, value in draw(_attributes):
            resource_spans.resource.attributes.add(key=key).value.CopyFrom(value)
        scope_spans = resource_spans.scope_spans.add(schema_url=draw(st.sampled_from(["", "s"])))
        scope_spans.scope.name = draw(
            st.sampled_from(["", "openinference.instrumentation.openai_agents", "opentelemetry.instrumentation.openai_agents", "x"])
        )
        scope_spans.scope.version = draw(st.sampled_from(["", "1.0"]))
        for _ in range(draw(st.integers(0, 4))):
            span = scope_spans.spans.add(
                trace_id=draw(_ids), span_id=draw(_ids), parent_span_id=draw(_ids), name=draw(st.text(max_size=8)),
                kind=draw(st.integers(0, 7)),
                start_time_unix_nano=draw(st.sampled_from([0, 1, 10**18])),
                end_time_unix_nano=draw(st.sampled_from([0, 1, 10**18, 2 * 10**18])),
            )
            span.status.code = draw(st.integers(0, 4))
            span.status.message = draw(st.sampled_from(["", "boom"]))
            for key, value in draw(_attributes | _convention_attributes | _flattened_llm_attributes):
                span.attributes.add(key=key).value.CopyFrom(value)
            for _ in range(draw(st.integers(0, 2))):
                event = span.events.add(name=draw(st.sampled_from(["exception", "e"])), time_unix_nano=draw(st.integers(0, 2 * 10**18)))
                for key, value in draw(_attributes):
                    event.attributes.add(key=key).value.CopyFrom(value)
            for _ in range(draw(st.integers(0, 1))):
                link = span.links.add(trace_id=draw(_ids), span_id=draw(_ids))
                for key, value in draw(_attributes):
                    link.attributes.add(key=key).value.CopyFrom(value)
    return request


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(_requests(), st.sampled_from(LIMITS), st.sampled_from([None, "p"]))
def test_generated_requests_decode_and_prepare_as_the_reference(
    request: ExportTraceServiceRequest, limit: int, project: str | None
) -> None:
    _assert_same(request, limit, project)


_python_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats() | st.sampled_from(_WORDS) | _long_text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=5,
)


@st.composite
def _spans(draw: st.DrawFn) -> DecodedSpan:
    """Valid spans (most generated requests above are refused for their ids) with every convention's keys."""
    pairs = draw(
        st.lists(st.tuples(st.sampled_from(_CONVENTION_KEYS + _MESSAGE_KEYS) | st.text(max_size=8), _python_values), max_size=14)
        | st.builds(lambda items: [("openinference.span.kind", "LLM"), *items], st.lists(st.tuples(st.sampled_from(_MESSAGE_KEYS), _long_text), max_size=8))
    )
    status = draw(st.sampled_from(["ok", "error", "unset"]))
    exception = {"name": "exception", "time": "2026-01-01T00:00:00", "attributes": {"exception.type": draw(_python_values)}}
    return DecodedSpan(
        "0af7651916cd43dd8448eb211c80319c",
        "b7ad6b7169203331",
        draw(st.sampled_from([None, "00000000000000aa"])),
        draw(st.sampled_from(["s", "invoke_agent Writer", "handoff to B"])),
        "internal",
        10**18,
        10**18 + draw(st.integers(0, 10**9)),
        status,
        draw(st.sampled_from([None, "Error running tool: {'x': 1}", "{'message': 'boom', 'data': 1}"])),
        dict(pairs),  # a repeated key keeps its first position and its last value, as decode gives it
        draw(st.sampled_from([{"service.name": "svc"}, {"service.name": 5, "tracehouse.project": "p"}])),
        draw(st.sampled_from(["", "opentelemetry.instrumentation.openai_agents", "x"])),
        draw(st.sampled_from(["", "0.1"])),
        "",
        draw(st.sampled_from([[], [exception], [{"name": "e", "time": "t", "attributes": {}}]])),
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(_spans(), st.sampled_from((*LIMITS, 64)))
def test_generated_spans_normalize_as_the_reference(span: DecodedSpan, limit: int) -> None:
    assert normalize_values(span, max_payload_bytes=limit) == reference_normalize_values(span, max_payload_bytes=limit)
