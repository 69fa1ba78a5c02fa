"""Microbenchmark of normalize(), the per-span step of the ingest hot path.

Prints microseconds per span for an LLM span with ~1.5 KB of messages (GenAI semconv and
OpenInference shapes), a tool span and a plain span. Budget: ≤ 15 µs/span, so that decode +
normalize + append stay well above 30,000 spans/s on 2 cores.

    python -m bench.normalize [--spans 50000]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

from collector.decode import DecodedSpan
from collector.normalize import normalize
from collector.settings import Settings

_START = 1_763_700_000_000_000_000
_RESOURCE = {
    "service.name": "support-bot",
    "service.version": "1.4.2",
    "deployment.environment": "prod",
    "telemetry.sdk.language": "python",
    "telemetry.sdk.name": "opentelemetry",
    "telemetry.sdk.version": "1.45.2",
}
_QUESTION = (
    "My invoice INV-7 was charged twice last month and I would like a refund of the duplicate charge. "
    * 6
)
_ANSWER = (
    "I have checked invoice INV-7: it was indeed charged twice. A refund of 42.50 EUR is on its way. "
    * 5
)
_MESSAGES_IN = json.dumps(
    [
        {
            "role": "system",
            "parts": [
                {"type": "text", "content": "You are a billing assistant. Be precise and brief."}
            ],
        },
        {"role": "user", "parts": [{"type": "text", "content": _QUESTION}]},
    ]
)
_MESSAGES_OUT = json.dumps(
    [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": _ANSWER}],
            "finish_reason": "stop",
        }
    ]
)


def _span(name: str, attributes: dict[str, Any], kind: str = "internal") -> DecodedSpan:
    return DecodedSpan(
        trace_id="0af7651916cd43dd8448eb211c80319c",
        span_id="b7ad6b7169203331",
        parent_span_id="00f067aa0ba902b7",
        name=name,
        span_kind=kind,
        start_unix_nano=_START,
        end_unix_nano=_START + 812_000_000,
        status_code="ok",
        status_message=None,
        attributes=attributes,
        resource=_RESOURCE,
        scope_name="opentelemetry.instrumentation.openai_agents",
        scope_version="",
        schema_url="https://opentelemetry.io/schemas/1.28.0",
    )


SPANS = {
    "llm (gen_ai, 1.5 KB)": _span(
        "chat gpt-4.1",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4.1",
            "gen_ai.response.model": "gpt-4.1-2025-04-14",
            "gen_ai.response.id": "resp_1",
            "gen_ai.usage.input_tokens": 812,
            "gen_ai.usage.output_tokens": 96,
            "gen_ai.agent.name": "OpenAI Agent",
            "server.address": "api.openai.com",
            "server.port": 443,
            "gen_ai.input.messages": _MESSAGES_IN,
            "gen_ai.output.messages": _MESSAGES_OUT,
        },
        "client",
    ),
    "llm (openinference, 1.5 KB)": _span(
        "response",
        {
            "openinference.span.kind": "LLM",
            "llm.system": "openai",
            "llm.model_name": "gpt-4.1-2025-04-14",
            "llm.token_count.prompt": 812,
            "llm.token_count.completion": 96,
            "llm.token_count.total": 908,
            "llm.token_count.prompt_details.cache_read": 256,
            "input.mime_type": "application/json",
            "input.value": _MESSAGES_IN,
            "output.mime_type": "application/json",
            "output.value": _MESSAGES_OUT,
            "llm.input_messages.0.message.role": "system",
            "llm.input_messages.0.message.content": "You are a billing assistant.",
            "llm.input_messages.1.message.role": "user",
            "llm.input_messages.1.message.content": _QUESTION,
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": _ANSWER,
        },
    ),
    "tool (gen_ai)": _span(
        "execute_tool lookup_invoice",
        {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.provider.name": "openai",
            "gen_ai.agent.name": "OpenAI Agent",
            "gen_ai.tool.name": "lookup_invoice",
            "gen_ai.tool.type": "function",
            "gen_ai.tool.call.arguments": '{"invoice_id":"INV-7"}',
            "gen_ai.tool.call.result": '{"invoice_id":"INV-7","amount_eur":42.5,"status":"paid"}',
        },
    ),
    "plain span": _span(
        "GET /invoices",
        {"http.request.method": "GET", "url.path": "/invoices", "http.response.status_code": 200},
    ),
}


def measure(work: Callable[[], object], count: int) -> float:
    """Best of three runs, in CPU microseconds per call (CPU time: the machine is shared)."""
    best = float("inf")
    for _ in range(3):
        began = time.process_time()
        for _ in range(count):
            work()
        best = min(best, (time.process_time() - began) / count * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=50_000, help="spans per run (best of three)")
    args = parser.parse_args()
    limit = Settings().max_payload_bytes
    for label, span in SPANS.items():
        micros = measure(lambda span=span: normalize(span, max_payload_bytes=limit), args.spans)
        print(f"{label:<30} {micros:6.2f} µs/span  ({1e6 / micros:,.0f} spans/s on one core)")
    # How fast this machine is right now, to compare figures taken on different days.
    reference = measure(lambda: sum(range(1000)), args.spans // 10 or 1)
    print(f"{'reference: sum(range(1000))':<30} {reference:6.2f} µs")


if __name__ == "__main__":
    main()
