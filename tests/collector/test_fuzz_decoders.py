"""Fuzzing the ingest path (decode → normalize → writer) with hypothesis, for both encodings.

Whatever bytes or OTLP/JSON structure arrive, the only outcomes allowed are: the request is
refused as a whole as permanent (DecodeFailed → INVALID_ARGUMENT / 400), or it is accepted with
some spans rejected one by one (partial success) and the rest committed. Never another
exception (a 500), and never a failed commit (a 503 the exporter would retry forever).
Inputs: random bytes, mutated real requests (the captured fixtures), generated requests whose
attributes use every key the normalizers know with values of any type.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from collector.decode import parse_json
from collector.metrics import IngestMetrics
from collector.pipeline import Pipeline, PermanentIngestError
from collector.settings import Settings
from collector.store import Store
from collector.writer import BatchWriter

FIXTURES = sorted((Path(__file__).resolve().parent.parent / "fixtures" / "otlp").glob("*/*.json"))
FIXTURE_JSON = [f.read_bytes() for f in FIXTURES]
FIXTURE_PROTO = [parse_json(body).SerializeToString() for body in FIXTURE_JSON]
FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "50")), deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _keys(node: Any, out: set[str]) -> set[str]:
    if isinstance(node, dict):
        if isinstance(node.get("key"), str):
            out.add(node["key"])
        for value in node.values():
            _keys(value, out)
    elif isinstance(node, list):
        for value in node:
            _keys(value, out)
    return out


# Every attribute key real instrumentations sent in the fixtures: the keys normalize reads.
KNOWN_KEYS = sorted(set().union(*(_keys(json.loads(body), set()) for body in FIXTURE_JSON)))


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    store = Store(tmp_path_factory.mktemp("fuzz") / "fuzz.duckdb")
    settings_ = Settings(db=store.path, batch_interval_ms=1.0, max_payload_bytes=4096)
    writer = BatchWriter(store, settings_)
    pipeline = Pipeline(settings_, writer, IngestMetrics())
    yield pipeline
    pipeline.close()
    writer.close()
    store.close()


def ingest(pipeline: Pipeline, body: bytes, fmt: str) -> None:
    """Permanent refusal, or every span accounted for and committed."""
    try:
        future, accepted, rejected = pipeline.submit(body, fmt)  # type: ignore[arg-type]
    except PermanentIngestError as exc:
        assert str(exc) and "\n" not in str(exc).strip()
        return
    future.result(timeout=60)  # a failed commit raises here
    assert accepted >= 0 and all(r.reason for r in rejected)


# -- protobuf ------------------------------------------------------------------------------------


def mutate(data: bytes, draw: Any) -> bytes:
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 8))):
        if not out:
            break
        position = draw(st.integers(0, len(out) - 1))
        action = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "byte"]))
        if action == "flip":
            out[position] ^= 1 << draw(st.integers(0, 7))
        elif action == "byte":
            out[position] = draw(st.integers(0, 255))
        elif action == "insert":
            out[position:position] = draw(st.binary(min_size=1, max_size=16))
        elif action == "delete":
            del out[position : position + draw(st.integers(1, 16))]
        else:
            del out[position:]
    return bytes(out)


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes_as_protobuf(pipeline: Pipeline, body: bytes) -> None:
    ingest(pipeline, body, "protobuf")


@FUZZ
@given(st.sampled_from(FIXTURE_PROTO), st.data())
def test_mutated_real_requests_as_protobuf(pipeline: Pipeline, body: bytes, data: st.DataObject) -> None:
    ingest(pipeline, mutate(body, data.draw), "protobuf")


# Any JSON-like value, and OTLP AnyValue in its JSON form, for generated attributes.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
_scalar_any = st.one_of(
    st.builds(lambda v: {"stringValue": v}, st.text(max_size=300) | st.sampled_from(["", "-1", "1e309", "NaN", "{}", "[", "LLM", "AGENT", "tool"])),
    st.builds(lambda v: {"intValue": str(v)}, st.integers(-(2**63), 2**63 - 1)),
    st.builds(lambda v: {"doubleValue": v}, st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(["NaN", "Infinity", "-Infinity"])),
    st.builds(lambda v: {"boolValue": v}, st.booleans()),
    st.builds(lambda v: {"bytesValue": v}, st.sampled_from(["", "AAEC", "////"])),
    st.just({}),
)
any_values = st.recursive(
    _scalar_any,
    lambda inner: st.builds(lambda vs: {"arrayValue": {"values": vs}}, st.lists(inner, max_size=3))
    | st.builds(
        lambda kvs: {"kvlistValue": {"values": [{"key": k, "value": v} for k, v in kvs]}},
        st.lists(st.tuples(st.text(max_size=8), inner), max_size=3),
    ),
    max_leaves=8,
)
attributes = st.lists(
    st.builds(lambda k, v: {"key": k, "value": v}, st.sampled_from(KNOWN_KEYS) | st.text(max_size=20), any_values),
    max_size=12,
)
hex_ids = st.one_of(
    st.binary(min_size=8, max_size=8).map(bytes.hex),
    st.binary(min_size=16, max_size=16).map(bytes.hex),
    st.binary(max_size=20).map(bytes.hex),
    st.text(max_size=34),
)
nanos = st.one_of(st.integers(0, 2**64 - 1), st.integers(1_700_000_000 * 10**9, 1_900_000_000 * 10**9)).map(str)
valid_trace = st.binary(min_size=16, max_size=16).map(bytes.hex)
valid_span = st.binary(min_size=8, max_size=8).map(bytes.hex)
kinds = st.sampled_from(["LLM", "AGENT", "TOOL", "CHAIN", "GUARDRAIL", "RETRIEVER", "EMBEDDING", "chat", "invoke_agent",
                         "execute_tool", "generation", "function", "handoff", "agent", "response", "custom"])


def _span(times: tuple[int, int], valid: bool, wild: dict[str, Any], **fields: Any) -> dict[str, Any]:
    start, length = times
    span = {"startTimeUnixNano": str(start), "endTimeUnixNano": str(start + length), **fields}
    if not valid:  # ids and times anywhere in their range: most of these spans get rejected
        span.update(wild)
    return span


# Kinds and token counts under the keys that decide them, so that llm/agent/tool rows come out.
_kind_attributes = st.lists(
    st.builds(lambda k, v: {"key": k, "value": {"stringValue": v}},
              st.sampled_from(["openinference.span.kind", "gen_ai.operation.name", "openai_agents.span_type",
                               "traceloop.span.kind"]), kinds),
    max_size=2,
)
spans = st.builds(
    _span,
    st.tuples(st.integers(1_700_000_000 * 10**9, 1_900_000_000 * 10**9), st.integers(0, 10**12)),
    st.integers(0, 3).map(bool),
    st.fixed_dictionaries({}, optional={"traceId": hex_ids, "spanId": hex_ids, "startTimeUnixNano": nanos,
                                        "endTimeUnixNano": nanos}),
    traceId=valid_trace,
    spanId=valid_span,
    name=st.text(max_size=60),
    attributes=st.builds(lambda a, b: a + b, _kind_attributes, attributes),
    parentSpanId=st.one_of(st.just(""), valid_span, hex_ids),
    kind=st.integers(-3, 9),
    status=st.fixed_dictionaries({}, optional={"code": st.integers(-1, 5), "message": st.text(max_size=80)}),
    events=st.lists(
        st.fixed_dictionaries({"name": st.text(max_size=20), "timeUnixNano": nanos, "attributes": attributes}),
        max_size=3,
    ),
    links=st.lists(st.fixed_dictionaries({"traceId": hex_ids, "spanId": hex_ids, "attributes": attributes}), max_size=2),
)
requests = st.builds(
    lambda resource, scope, span_list: {
        "resourceSpans": [{"resource": {"attributes": resource}, "scopeSpans": [{"scope": scope, "spans": span_list}]}]
    },
    attributes,
    st.fixed_dictionaries({}, optional={"name": st.text(max_size=30), "version": st.text(max_size=10)}),
    st.lists(spans, min_size=1, max_size=6),
)


@FUZZ
@given(requests)
def test_generated_requests_as_protobuf(pipeline: Pipeline, document: dict[str, Any]) -> None:
    try:
        body = parse_json(json.dumps(document).encode()).SerializeToString()
    except Exception:  # noqa: BLE001 - a document the JSON form cannot express: tested as JSON below
        return
    ingest(pipeline, body, "protobuf")


# -- OTLP/JSON -----------------------------------------------------------------------------------


@FUZZ
@given(requests)
def test_generated_requests_as_json(pipeline: Pipeline, document: dict[str, Any]) -> None:
    ingest(pipeline, json.dumps(document).encode(), "json")


def _replace_random_node(node: Any, draw: Any) -> Any:
    """Replace one randomly chosen node of a JSON document by an arbitrary JSON value."""
    if isinstance(node, (dict, list)) and node and draw(st.integers(0, 3)):
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        key = draw(st.sampled_from(keys))
        copy = dict(node) if isinstance(node, dict) else list(node)
        copy[key] = _replace_random_node(node[key], draw)
        return copy
    return draw(json_values)


@FUZZ
@given(st.sampled_from(FIXTURE_JSON), st.data())
def test_mutated_real_requests_as_json_structures(pipeline: Pipeline, body: bytes, data: st.DataObject) -> None:
    document = json.loads(body)
    for _ in range(data.draw(st.integers(1, 4))):
        document = _replace_random_node(document, data.draw)
    ingest(pipeline, json.dumps(document).encode(), "json")


@FUZZ
@given(st.sampled_from(FIXTURE_JSON), st.data())
def test_mutated_real_requests_as_json_bytes(pipeline: Pipeline, body: bytes, data: st.DataObject) -> None:
    ingest(pipeline, mutate(body, data.draw), "json")


@FUZZ
@given(json_values)
def test_any_json_document(pipeline: Pipeline, document: Any) -> None:
    ingest(pipeline, json.dumps(document).encode(), "json")


def test_a_refusal_quoting_a_value_with_a_newline_is_one_line(pipeline: Pipeline) -> None:
    """Found by the JSON-structure fuzz above: the parser quotes the bad value, newline and all."""
    with pytest.raises(PermanentIngestError) as refused:
        pipeline.submit(b'{"resourceSpans": "\\n"}', "json")  # type: ignore[arg-type]
    assert "resourceSpans" in str(refused.value) and "\n" not in str(refused.value)
