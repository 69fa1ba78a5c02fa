"""Realistic agent traffic as pre-serialized OTLP requests with cheaply refreshable ids.

Building protobuf messages in the load generator would eat the CPU the collector needs (both
share 2 cores), so each template request is serialized once; its ids sit at known byte offsets
and are overwritten with fresh ones per request (``RequestFactory.next``). Every prompt and
completion also starts with a request tag that is rewritten the same way: without it the few
templates would repeat the same texts, which DuckDB's dictionary compression stores once, and
bytes per span on disk would look far better than real traffic gives.
"""

from __future__ import annotations

import json
import os
import random
import struct
import time
from dataclasses import dataclass

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

SPANS_PER_TRACE = 10
_WORDS = (
    "the customer asked about order status refund shipping delay invoice account password reset "
    "agent tool search knowledge base policy escalate summary answer please thanks update tracking "
    "number warehouse payment card declined retry schedule meeting calendar report draft review"
).split()
MODELS = ("gpt-4.1", "gpt-4.1-mini", "gpt-4o", "claude-sonnet-4", "claude-3-5-haiku")
TOOLS = ("lookup_order", "search_kb", "refund_payment", "check_inventory", "send_email")
AGENTS = ("Triage", "Order Specialist", "Tech Support", "Writer", "Editor")


TAG_LENGTH = 12  # "req-" + 8 hex digits, rewritten per request


def _tag(rng: random.Random) -> str:
    return "req-" + "".join(rng.choice("ghijklmnopqrstuvwxyz") for _ in range(TAG_LENGTH - 4))


def _text(rng: random.Random, size: int) -> str:
    words: list[str] = [_tag(rng)]
    length = TAG_LENGTH + 1
    while length < size:
        word = rng.choice(_WORDS)
        words.append(word)
        length += len(word) + 1
    return " ".join(words)[:size]


def _kv(key: str, value: object) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


@dataclass
class _Placeholder:
    trace_ids: list[bytes]
    span_ids: list[bytes]
    tags: list[bytes]


def _trace_spans(rng: random.Random, trace_id: bytes, span_ids: list[bytes], start_ns: int, tags: list[bytes]) -> list[Span]:
    """One 10-span agent run: workflow → agent → (llm, tool) × 3 + guardrail + handoff."""
    session = f"session-{rng.randrange(10_000)}"
    agent = rng.choice(AGENTS)
    model = rng.choice(MODELS)
    spans: list[Span] = []
    t = start_ns

    def add(index: int, parent: int | None, name: str, dur_ms: float, attrs: dict[str, object], error: bool = False) -> None:
        nonlocal t
        span = Span(
            trace_id=trace_id,
            span_id=span_ids[index],
            parent_span_id=span_ids[parent] if parent is not None else b"",
            name=name,
            kind=Span.SPAN_KIND_INTERNAL if parent is None or "chat" not in name else Span.SPAN_KIND_CLIENT,
            start_time_unix_nano=t,
            end_time_unix_nano=t + int(dur_ms * 1e6),
            attributes=[_kv(k, v) for k, v in attrs.items()],
            status=Status(code=Status.STATUS_CODE_ERROR if error else Status.STATUS_CODE_OK),
        )
        spans.append(span)
        t += int(dur_ms * 1e6 / 4)

    add(0, None, "Customer service", 4000, {"gen_ai.operation.name": "invoke_workflow", "gen_ai.conversation.id": session})
    add(1, 0, f"invoke_agent {agent}", 3800, {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent, "gen_ai.conversation.id": session})
    add(2, 1, "guardrail pii", 5, {"openinference.span.kind": "GUARDRAIL", "gen_ai.conversation.id": session})
    for i in range(3):
        prompt = _text(rng, rng.randint(500, 2000))
        completion = _text(rng, rng.randint(300, 1200))
        tags.extend((prompt[:TAG_LENGTH].encode(), completion[:TAG_LENGTH].encode()))
        add(3 + 2 * i, 1, f"chat {model}", rng.uniform(300, 1500), {
            "openinference.span.kind": "LLM",
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "anthropic" if model.startswith("claude") else "openai",
            "gen_ai.request.model": model,
            "llm.model_name": model,
            "gen_ai.usage.input_tokens": rng.randint(200, 3000),
            "gen_ai.usage.output_tokens": rng.randint(50, 800),
            "gen_ai.usage.cache_read.input_tokens": rng.choice((0, 0, 128, 512)),
            "llm.input_messages.0.message.role": "user",
            "llm.input_messages.0.message.content": prompt,
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": completion,
            "gen_ai.conversation.id": session,
        })
        tool = rng.choice(TOOLS)
        add(4 + 2 * i, 1, f"execute_tool {tool}", rng.uniform(5, 300), {
            "openinference.span.kind": "TOOL",
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": tool,
            "tool.name": tool,
            "gen_ai.tool.call.arguments": json.dumps({"order_id": rng.randrange(10**6)}),
            "gen_ai.tool.call.result": json.dumps({"status": "shipped", "eta_days": rng.randint(1, 9)}),
            "gen_ai.conversation.id": session,
        }, error=rng.random() < 0.03)
    add(9, 1, f"handoff {agent} -> Order Specialist", 2, {
        "gen_ai.operation.name": "handoff",
        "openai_agents.handoff.from_agent": agent,
        "openai_agents.handoff.to_agent": "Order Specialist",
        "gen_ai.conversation.id": session,
    })
    return spans


class RequestFactory:
    """Serves serialized requests of ``traces_per_request`` 10-span traces with fresh ids each time."""

    def __init__(self, traces_per_request: int = 50, templates: int = 8, seed: int = 7, worker: int = 0) -> None:
        rng = random.Random(seed)
        self._templates: list[tuple[bytes, list[tuple[int, int]], list[tuple[int, int]], list[int]]] = []
        self.spans_per_request = traces_per_request * SPANS_PER_TRACE
        for _ in range(templates):
            placeholders = _Placeholder([], [], [])
            spans: list[Span] = []
            now = time.time_ns()
            for _ in range(traces_per_request):
                trace_id = rng.randbytes(16)
                span_ids = [rng.randbytes(8) for _ in range(SPANS_PER_TRACE)]
                placeholders.trace_ids.append(trace_id)
                placeholders.span_ids.extend(span_ids)
                spans.extend(_trace_spans(rng, trace_id, span_ids, now - rng.randrange(10**9), placeholders.tags))
            request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(
                resource=Resource(attributes=[_kv("service.name", "bench-agents"), _kv("deployment.environment", "bench")]),
                scope_spans=[ScopeSpans(scope=InstrumentationScope(name="tracehouse.bench", version="1"), spans=spans)],
            )])
            body = request.SerializeToString()
            trace_offsets = _offsets(body, placeholders.trace_ids)
            span_offsets = _offsets(body, placeholders.span_ids)
            tag_offsets = [offset + 4 for offset, _ in _offsets(body, placeholders.tags)]
            self._templates.append((body, trace_offsets, span_offsets, tag_offsets))
        self._counter = 0
        # Ids unique across processes and runs: a random 6-byte prefix + worker + counter.
        self._prefix = os.urandom(6)
        self._worker = worker

    def next(self) -> bytes:
        body, trace_offsets, span_offsets, tag_offsets = self._templates[self._counter % len(self._templates)]
        self._counter += 1
        buffer = bytearray(body)
        # prefix, worker, request, trace: a new trace id in every request (the request number was
        # once packed as 8 bytes and cut to its 4 zero high bytes, so every request of a sender
        # reused its 50 trace ids and traces grew to thousands of spans)
        base = struct.pack(">6sHI", self._prefix, self._worker, self._counter & 0xFFFFFFFF)
        for offset, n in trace_offsets:
            buffer[offset : offset + 16] = base + struct.pack(">I", n + 1)
        stamp = struct.pack(">I", self._counter & 0xFFFFFFFF)
        for offset, n in span_offsets:
            buffer[offset : offset + 8] = stamp + struct.pack(">HH", self._worker, n + 1)
        for number, offset in enumerate(tag_offsets):
            buffer[offset : offset + 8] = b"%08x" % ((self._counter * 7919 + number * 104729 + self._worker) & 0xFFFFFFFF)
        return bytes(buffer)


def _offsets(body: bytes, needles: list[bytes]) -> list[tuple[int, int]]:
    """(byte offset, id number) of every occurrence of each id: a span id recurs as a parent id."""
    offsets: list[tuple[int, int]] = []
    for number, needle in enumerate(needles):
        start = body.find(needle)
        while start != -1:
            offsets.append((start, number))
            start = body.find(needle, start + 1)
    return offsets
