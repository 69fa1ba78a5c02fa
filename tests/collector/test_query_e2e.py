"""End to end through the real ingest path: spans from the official OTel SDK exporter reach a
running collector and come back through /api/traces, /api/traces/{id}, /api/sessions, /api/sql
over real HTTP, with the trace summary kept current by the collector itself."""

from __future__ import annotations

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode

from tests.conftest import RunningCollector


def emit_agent_run(collector: RunningCollector, conversation: str, question: str) -> str:
    """One agent run with GenAI semantic-convention attributes; returns its trace id."""
    provider = TracerProvider(resource=Resource.create({"service.name": "support-bot"}))
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=collector.grpc_endpoint, insecure=True))
    )
    tracer = provider.get_tracer("tests.query")
    common = {"gen_ai.conversation.id": conversation}
    with tracer.start_as_current_span(
        "invoke_workflow Support", attributes={**common, "gen_ai.operation.name": "invoke_workflow"}
    ) as root:
        with tracer.start_as_current_span(
            "invoke_agent triage",
            attributes={
                **common,
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": "triage",
            },
        ):
            with tracer.start_as_current_span(
                "chat gpt-4o",
                attributes={
                    **common,
                    "gen_ai.operation.name": "chat",
                    "gen_ai.request.model": "gpt-4o",
                    "gen_ai.usage.input_tokens": 120,
                    "gen_ai.usage.output_tokens": 30,
                    "gen_ai.input.messages": f'[{{"role": "user", "content": "{question}"}}]',
                },
            ):
                pass
            with tracer.start_as_current_span(
                "execute_tool lookup_order",
                attributes={
                    **common,
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": "lookup_order",
                },
            ) as tool:
                tool.set_status(Status(StatusCode.ERROR, "order service timed out"))
        trace_id = format(root.get_span_context().trace_id, "032x")
    assert provider.force_flush(10_000)
    provider.shutdown()
    return trace_id


@pytest.fixture()
def api(collector: RunningCollector):
    with httpx.Client(base_url=collector.http_url, timeout=30) as client:
        yield client


def test_spans_sent_by_the_sdk_come_back_as_traces(
    collector: RunningCollector, api: httpx.Client
) -> None:
    first = emit_agent_run(collector, "conv-1", "Where is my order?")
    second = emit_agent_run(collector, "conv-1", "Can I get a refund?")
    body = api.get("/api/traces", params={"session": "conv-1"}).json()
    assert body["total"] == 2
    assert [t["trace_id"] for t in body["traces"]] == [second, first]
    trace = body["traces"][1]
    assert trace["span_count"] == 4 and trace["llm_calls"] == 1 and trace["tool_calls"] == 1
    assert trace["status"] == "error" and trace["error_count"] == 1
    assert trace["agents"] == ["triage"] and trace["models"] == ["gpt-4o"]
    assert (trace["input_tokens"], trace["output_tokens"]) == (120, 30)
    assert (
        trace["service_name"] == "support-bot" and trace["root_name"] == "invoke_workflow Support"
    )

    assert {
        t["trace_id"] for t in api.get("/api/traces", params={"q": "refund"}).json()["traces"]
    } == {second}
    assert (
        api.get("/api/traces", params={"agent": "triage", "status": "error"}).json()["total"] == 2
    )

    spans = api.get(f"/api/traces/{first}").json()["spans"]
    assert [(s["name"], s["depth"]) for s in spans] == [
        ("invoke_workflow Support", 0),
        ("invoke_agent triage", 1),
        ("chat gpt-4o", 2),
        ("execute_tool lookup_order", 2),
    ]
    assert spans[2]["attributes"]["gen_ai.request.model"] == "gpt-4o"

    session = api.get("/api/sessions/conv-1").json()
    assert session["trace_count"] == 2 and session["error_traces"] == 2
    rows = api.post(
        "/api/sql", json={"sql": "SELECT count(*) FROM traces WHERE session_id = 'conv-1'"}
    ).json()
    assert rows["rows"] == [[2]]


def test_trace_api_shows_attributes_as_received(collector: RunningCollector, api: httpx.Client) -> None:
    """Payload text is stored once (a reference in `attributes`); the API puts it back."""
    question = "My order 8812 arrived damaged and the replacement never shipped, what now?"
    trace_id = emit_agent_run(collector, "conv-lift", question)
    stored = collector.sql(
        "SELECT attributes->>'$.\"gen_ai.input.messages\"', input FROM spans "
        "WHERE trace_id = ? AND name = 'chat gpt-4o'",
        [trace_id],
    )
    assert stored[0][0] != stored[0][1] and question in stored[0][1]  # lifted, kept once
    spans = api.get(f"/api/traces/{trace_id}").json()["spans"]
    llm = next(s for s in spans if s["name"] == "chat gpt-4o")
    assert llm["attributes"]["gen_ai.input.messages"] == f'[{{"role": "user", "content": "{question}"}}]'
