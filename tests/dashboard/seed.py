"""Known agent traffic for the dashboard tests, sent with the official OpenTelemetry SDK exporter.

Spans carry OTel GenAI attributes (what our sdk_shim and the contrib instrumentation emit), so
they travel the real path: OTLP gRPC → decode → normalize → writer → DuckDB → /api. The numbers
the pages must show are computed here from the same data, never typed in by hand.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, Status, StatusCode, set_span_in_context

SERVICE = "shop-agents"
SESSION = "sess-alpha"
BIG_TRACE_SPANS = 2_000
USER_QUESTION = "I want a refund for order 1234"
TOOL_ERROR = "Error running tool (non-fatal): refund service timed out"


@dataclass
class Seeded:
    """What was sent, and the figures a person should read on the pages."""

    spans: int = 0
    traces: dict[str, str] = field(default_factory=dict)  # label → trace id
    failed_traces: int = 0
    agents: set[str] = field(default_factory=set)
    tokens: int = 0
    handoffs: dict[tuple[str, str], int] = field(default_factory=dict)


def _messages(role: str, text: str) -> str:
    return json.dumps([{"role": role, "parts": [{"type": "text", "content": text}]}])


class _Builder:
    def __init__(self, provider: TracerProvider, seeded: Seeded, t0_ns: int) -> None:
        self.tracer = provider.get_tracer("tests.dashboard.seed")
        self.seeded = seeded
        self.t0 = t0_ns

    def span(self, name: str, parent: Span | None, start_ms: float, dur_ms: float,
             attributes: dict[str, Any], error: str | None = None) -> Span:
        context = set_span_in_context(parent) if parent is not None else None
        span = self.tracer.start_span(name, context=context, attributes=attributes,
                                      start_time=self.t0 + int(start_ms * 1e6))
        if error:
            span.set_status(Status(StatusCode.ERROR, error))
        span.end(end_time=self.t0 + int((start_ms + dur_ms) * 1e6))
        self.seeded.spans += 1
        return span

    def open(self, name: str, parent: Span | None, start_ms: float, attributes: dict[str, Any]) -> Span:
        context = set_span_in_context(parent) if parent is not None else None
        self.seeded.spans += 1
        return self.tracer.start_span(name, context=context, attributes=attributes,
                                      start_time=self.t0 + int(start_ms * 1e6))

    def close(self, span: Span, end_ms: float, error: str | None = None) -> None:
        if error:
            span.set_status(Status(StatusCode.ERROR, error))
        span.end(end_time=self.t0 + int(end_ms * 1e6))

    def workflow(self, label: str, name: str, start_ms: float, session: str | None) -> Span:
        attributes = {"gen_ai.operation.name": "invoke_workflow", "gen_ai.workflow.name": name}
        if session:
            attributes["gen_ai.conversation.id"] = session
        root = self.open(name, None, start_ms, attributes)
        self.seeded.traces[label] = format(root.get_span_context().trace_id, "032x")
        return root

    def agent(self, name: str, parent: Span, start_ms: float) -> Span:
        self.seeded.agents.add(name)
        return self.open(f"invoke_agent {name}", parent, start_ms,
                         {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": name})

    def chat(self, parent: Span, agent: str, model: str, start_ms: float, dur_ms: float, tokens: tuple[int, int],
             question: str, answer: str) -> None:
        self.seeded.tokens += sum(tokens)
        self.span(f"chat {model}", parent, start_ms, dur_ms, {
            "gen_ai.operation.name": "chat", "gen_ai.request.model": model, "gen_ai.provider.name": "openai",
            "gen_ai.agent.name": agent, "gen_ai.usage.input_tokens": tokens[0],
            "gen_ai.usage.output_tokens": tokens[1], "gen_ai.input.messages": _messages("user", question),
            "gen_ai.output.messages": _messages("assistant", answer),
        })

    def tool(self, parent: Span, agent: str, tool: str, start_ms: float, dur_ms: float, error: str | None = None,
             result: str = '{"status": "shipped"}') -> None:
        self.span(f"execute_tool {tool}", parent, start_ms, dur_ms, {
            "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool, "gen_ai.agent.name": agent,
            "gen_ai.tool.call.arguments": '{"order_id": 1234}', "gen_ai.tool.call.result": result,
        }, error=error)

    def handoff(self, parent: Span, source: str, target: str, start_ms: float) -> None:
        key = (source, target)
        self.seeded.handoffs[key] = self.seeded.handoffs.get(key, 0) + 1
        self.span(f"handoff {source} -> {target}", parent, start_ms, 2, {
            "gen_ai.operation.name": "handoff", "gen_ai.handoff.from_agent": source,
            "gen_ai.handoff.to_agent": target, "gen_ai.agent.name": source,
        })


def _build(b: _Builder) -> None:
    # 1. A refund conversation, turn 1: triage checks, answers, hands off to billing.
    root = b.workflow("refund", "refund-flow", 0, SESSION)
    triage = b.agent("triage", root, 5)
    b.span("guardrail pii_check", triage, 6, 20, {"gen_ai.operation.name": "guardrail_check",
                                                  "gen_ai.guardrail.name": "pii_check",
                                                  "gen_ai.guardrail.triggered": False, "gen_ai.agent.name": "triage"})
    b.chat(triage, "triage", "gpt-4.1", 30, 900, (1200, 300), USER_QUESTION, "Let me hand you to billing.")
    b.handoff(triage, "triage", "billing", 935)
    b.close(triage, 940)
    billing = b.agent("billing", root, 941)
    b.chat(billing, "billing", "gpt-4.1-mini", 945, 600, (800, 100), "Look up order 1234", "Order 1234 shipped.")
    b.tool(billing, "billing", "lookup_order", 1550, 120)
    b.close(billing, 1700)
    b.close(root, 1705)
    # 2. Turn 2 of the same conversation: the refund tool fails.
    root = b.workflow("refund_failed", "refund-flow", 3000, SESSION)
    billing = b.agent("billing", root, 3005)
    b.chat(billing, "billing", "gpt-4.1-mini", 3010, 500, (900, 80), "Please refund it", "Issuing the refund.")
    b.tool(billing, "billing", "issue_refund", 3520, 5000, error=TOOL_ERROR, result="Tool execution failed")
    b.close(billing, 8530)
    b.close(root, 8535)
    b.seeded.failed_traces += 1
    # 3. A research run on a model missing from every price table.
    root = b.workflow("research", "research-run", 4000, None)
    researcher = b.agent("researcher", root, 4010)
    b.chat(researcher, "researcher", "mystery-model-x", 4020, 1500, (500, 50), "Summarise the refund policy",
           "Refunds within 30 days.")
    b.close(researcher, 5600)
    b.close(root, 5605)
    # 4. A crawl of 2,000 spans: what Jaeger's UI chokes on.
    root = b.workflow("big", "bulk-crawl", 6000, None)
    crawler = b.agent("crawler", root, 6001)
    for i in range(BIG_TRACE_SPANS - 2):
        b.tool(crawler, "crawler", f"fetch_page_{i:04d}", 6002 + i * 2, 1.5, result="200 OK")
    b.close(crawler, 6002 + BIG_TRACE_SPANS * 2)
    b.close(root, 6003 + BIG_TRACE_SPANS * 2)


def severity_rules(severities: tuple[str, ...]) -> str:
    """An alert rules file (TRACEHOUSE_RULES_FILE) with one rule per severity, each tripped by the
    seeded traffic (it has traces in the last hour): the Anomalies page then lists an alert of each."""
    return "".join(f"""
[[alert]]
name = "TRAFFIC_{severity.upper()}"
metric = "traces"
threshold = 1
window_minutes = 60
group_by = "service"
severity = "{severity}"
""" for severity in severities)


def send(grpc_endpoint: str, *, seconds_ago: float = 30.0) -> Seeded:
    """Export the traffic over OTLP/gRPC and return what a person should see."""
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
    exporter = OTLPSpanExporter(endpoint=grpc_endpoint, insecure=True)
    provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=512, schedule_delay_millis=50))
    seeded = Seeded()
    _build(_Builder(provider, seeded, time.time_ns() - int(seconds_ago * 1e9)))
    assert provider.force_flush(30_000), "the exporter could not flush to the collector"
    provider.shutdown()
    return seeded


def wait_stored(http_url: str, spans: int, timeout_s: float = 30.0) -> None:
    """Block until the collector's API sees every span (acknowledged means committed)."""
    deadline = time.monotonic() + timeout_s
    count = -1
    while time.monotonic() < deadline:
        body = httpx.post(f"{http_url}/api/sql", json={"sql": "SELECT count(*) FROM spans"}, timeout=10).json()
        count = body["rows"][0][0]
        if count >= spans:
            return
        time.sleep(0.1)
    raise AssertionError(f"only {count} of {spans} spans reached the store")
