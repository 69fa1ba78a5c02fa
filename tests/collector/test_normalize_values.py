"""The normalizer on hand-made spans: precedence of dual-emitted keys, plain and non-agent
conventions, the payload limit, and hostile values that must never break a span.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from collector.decode import DecodedSpan
from collector.model import SpanKind, SpanRow
from collector.normalize import normalize, openinference
from collector.normalize.common import Kind

START = 1_763_700_000_000_000_000


def span(
    attributes: dict[str, Any],
    *,
    name: str = "s",
    parent: str | None = "00000000000000aa",
    scope: tuple[str, str] = ("test", "1.0"),
    status: str = "ok",
    message: str | None = None,
    events: list[dict[str, Any]] | None = None,
) -> DecodedSpan:
    return DecodedSpan(
        trace_id="0af7651916cd43dd8448eb211c80319c",
        span_id="b7ad6b7169203331",
        parent_span_id=parent,
        name=name,
        span_kind="internal",
        start_unix_nano=START,
        end_unix_nano=START + 1_500_000,
        status_code=status,
        status_message=message,
        attributes=attributes,
        resource={"service.name": "svc"},
        scope_name=scope[0],
        scope_version=scope[1],
        schema_url="",
        events=events or [],
    )


def norm(s: DecodedSpan, limit: int = 1024) -> SpanRow:
    row = normalize(s, max_payload_bytes=limit)
    for column in ("attributes", "resource", "events", "links"):
        json.loads(getattr(row, column))  # always valid JSON text
    for text in (row.input, row.output, row.attributes, row.status_message):
        if text is not None:
            text.encode("utf-8")  # always storable as UTF-8
    return row


# --- precedence ---------------------------------------------------------------------------


def test_dual_emitted_openinference_wins() -> None:
    row = norm(
        span(
            {
                "openinference.span.kind": "LLM",
                "llm.model_name": "oi-model",
                "llm.token_count.prompt": 10,
                "llm.token_count.completion": 3,
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "genai-model",
                "gen_ai.usage.input_tokens": 99,
                "gen_ai.usage.output_tokens": 98,
                "gen_ai.usage.cache_read.input_tokens": 7,
                "input.value": "oi input",
                "gen_ai.input.messages": "[]",
            }
        )
    )
    assert (row.convention, row.kind, row.model) == ("openinference", "llm", "oi-model")
    assert (row.input_tokens, row.output_tokens) == (10, 3)
    assert row.cached_tokens == 7  # OpenInference left it empty: gen_ai.* fills the gap
    assert row.input == "oi input"


def test_dual_emitted_gaps_filled_from_genai() -> None:
    row = norm(
        span(
            {
                "openinference.span.kind": "LLM",
                "gen_ai.request.model": "genai-model",
                "gen_ai.usage.input_tokens": 5,
                "gen_ai.provider.name": "anthropic",
            }
        )
    )
    assert (row.model, row.provider, row.input_tokens, row.output_tokens) == (
        "genai-model",
        "anthropic",
        5,
        0,
    )
    tool = norm(
        span(
            {
                "openinference.span.kind": "UNKNOWN",
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "t",
            }
        )
    )
    assert (tool.convention, tool.kind, tool.tool_name) == ("openinference", "tool", "t")


@pytest.mark.parametrize(
    ("attributes", "scope", "convention"),
    [
        (
            {
                "traceloop.span.kind": "tool",
                "openai_agents.span_type": "function",
                "gen_ai.tool.name": "t",
            },
            ("x", ""),
            "traceloop",
        ),
        (
            {"gen_ai.operation.name": "chat"},
            ("opentelemetry.instrumentation.openai_agents", "0.62.4"),
            "traceloop",
        ),
        (
            {"gen_ai.operation.name": "chat", "openai_agents.span_id": "s"},
            ("opentelemetry.instrumentation.openai_agents", ""),
            "openai_agents",
        ),
        (
            {"gen_ai.operation.name": "chat"},
            ("opentelemetry.instrumentation.openai_agents", ""),
            "genai",
        ),
        ({}, ("opentelemetry.instrumentation.openai_agents", ""), "genai"),
        ({"gen_ai.system": "openai"}, ("my.lib", "1"), "genai"),
        ({"http.method": "GET"}, ("my.lib", "1"), "otel"),
    ],
)
def test_convention_detection(
    attributes: dict[str, Any], scope: tuple[str, str], convention: str
) -> None:
    assert norm(span(attributes, scope=scope)).convention == convention


# --- kinds beyond the agent runs ------------------------------------------------------------


@pytest.mark.parametrize(
    ("attributes", "parent", "kind"),
    [
        ({"openinference.span.kind": "RETRIEVER"}, "00000000000000aa", "retriever"),
        ({"openinference.span.kind": "RERANKER"}, "00000000000000aa", "retriever"),
        (
            {"openinference.span.kind": "EMBEDDING", "embedding.model_name": "te-3"},
            "00000000000000aa",
            "embedding",
        ),
        ({"openinference.span.kind": "CHAIN"}, None, "chain"),
        ({"openinference.span.kind": "AGENT"}, None, "workflow"),
        ({"openinference.span.kind": "AGENT"}, "00000000000000aa", "agent"),
        ({"openinference.span.kind": "TOOL", "tool.name": "search"}, "00000000000000aa", "tool"),
        ({"openinference.span.kind": "TOOL"}, "00000000000000aa", "handoff"),
        ({"openinference.span.kind": "weird"}, "00000000000000aa", "span"),
        ({"openinference.span.kind": 7}, "00000000000000aa", "span"),
        (
            {"gen_ai.operation.name": "embeddings", "gen_ai.request.model": "te-3"},
            "00000000000000aa",
            "embedding",
        ),
        ({"gen_ai.operation.name": "text_completion"}, "00000000000000aa", "llm"),
        (
            {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "OpenAI Agent"},
            None,
            "workflow",
        ),
        ({"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "weather"}, None, "agent"),
        ({"gen_ai.operation.name": "invoke_workflow"}, None, "workflow"),
        ({"gen_ai.operation.name": "something_new"}, "00000000000000aa", "chain"),
        (
            {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o"},
            "00000000000000aa",
            "llm",
        ),  # pre-operation.name
        ({"traceloop.span.kind": "task"}, "00000000000000aa", "chain"),
        ({"openai_agents.span_type": "turn"}, "00000000000000aa", "chain"),
        ({"openai_agents.span_type": "mcp_tools"}, "00000000000000aa", "chain"),
        ({"openai_agents.span_type": "transcription"}, "00000000000000aa", "llm"),
        (
            {"openai_agents.span_type": "function", "gen_ai.operation.name": "execute_tool"},
            "00000000000000aa",
            "tool",
        ),
    ],
)
def test_kinds(attributes: dict[str, Any], parent: str | None, kind: str) -> None:
    assert norm(span(attributes, parent=parent)).kind == kind


def test_embedding_gets_model_and_tokens() -> None:
    row = norm(
        span(
            {
                "gen_ai.operation.name": "embeddings",
                "gen_ai.request.model": "text-embedding-3-small",
                "gen_ai.usage.input_tokens": 42,
            }
        )
    )
    assert (row.model, row.input_tokens, row.output_tokens) == ("text-embedding-3-small", 42, 0)


def test_plain_span() -> None:
    row = norm(span({"http.method": "GET", "session.id": "s1", "enduser.id": "u1"}, name="GET /"))
    assert (row.kind, row.convention, row.model, row.input_tokens, row.tool_name) == (
        "span",
        "otel",
        None,
        None,
        None,
    )
    assert (row.session_id, row.user_id, row.service_name) == ("s1", "u1", "svc")
    assert row.duration_ms == 1.5


def test_tokens_only_on_model_calls() -> None:
    row = norm(
        span(
            {
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": "a",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.input_tokens": 500,
            }
        )
    )
    assert (row.kind, row.input_tokens, row.model, row.provider) == ("agent", None, None, None)


def test_all_token_kinds() -> None:
    oi = norm(
        span(
            {
                "openinference.span.kind": "LLM",
                "llm.token_count.prompt": 100,
                "llm.token_count.completion": 20,
                "llm.token_count.prompt_details.cache_read": 30,
                "llm.token_count.prompt_details.cache_write": 40,
                "llm.token_count.completion_details.reasoning": 5,
            }
        )
    )
    genai = norm(
        span(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.usage.input_tokens": 100,
                "gen_ai.usage.output_tokens": 20,
                "gen_ai.usage.cache_read.input_tokens": 30,
                "gen_ai.usage.cache_creation.input_tokens": 40,
                "gen_ai.usage.reasoning.output_tokens": 5,
            }
        )
    )
    legacy = norm(
        span(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.usage.prompt_tokens": 100,
                "gen_ai.usage.completion_tokens": 20,
            }
        )
    )
    tokens = (100, 20, 30, 40, 5)
    for row in (oi, genai):
        assert (
            row.input_tokens,
            row.output_tokens,
            row.cached_tokens,
            row.cache_write_tokens,
            row.reasoning_tokens,
        ) == tokens
    assert (legacy.input_tokens, legacy.output_tokens) == (100, 20)


def test_model_fallback_order() -> None:
    both = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4.1",
        "gen_ai.response.model": "gpt-4.1-2025-04-14",
    }
    assert norm(span(both)).model == "gpt-4.1"  # GenAI: request first
    traceloop = norm(span({**both, "traceloop.span.kind": "x"}))
    assert traceloop.model == "gpt-4.1-2025-04-14"  # traceloop: response first
    assert norm(span({"gen_ai.operation.name": "chat", "gen_ai.response.model": "r"})).model == "r"


def test_agent_name_fallbacks() -> None:
    assert (
        norm(span({"openinference.span.kind": "AGENT"}, name="researcher")).agent_name
        == "researcher"
    )
    assert (
        norm(
            span({"openinference.span.kind": "AGENT", "graph.node.id": "node"}, name="x")
        ).agent_name
        == "node"
    )
    contrib = norm(
        span(
            {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "OpenAI Agent"},
            name="invoke_agent Writer",
        )
    )
    assert (contrib.kind, contrib.agent_name) == ("agent", "Writer")
    assert (
        norm(span({"gen_ai.operation.name": "invoke_agent"}, name="invoke_agent")).agent_name
        is None
    )


def test_placeholder_agent_is_null() -> None:
    row = norm(
        span(
            {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "t",
                "gen_ai.agent.name": "OpenAI Agent",
            }
        )
    )
    assert row.agent_name is None


def test_user_and_session_keys() -> None:
    assert norm(span({"user.id": "a", "enduser.id": "b"})).user_id == "a"
    assert norm(span({"session.id": "s", "gen_ai.conversation.id": "c"})).session_id == "s"
    assert norm(span({"gen_ai.conversation.id": "c"})).session_id == "c"


def test_openinference_flattened_messages_without_input_value() -> None:
    row = norm(
        span(
            {
                "openinference.span.kind": "LLM",
                "llm.input_messages.1.message.role": "user",
                "llm.input_messages.1.message.content": "hi",
                "llm.input_messages.0.message.role": "system",
                "llm.input_messages.0.message.content": "be brief",
                "llm.output_messages.0.message.role": "assistant",
                "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "search",
                "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": "{}",
            }
        )
    )
    assert json.loads(row.input) == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
    ]
    assert json.loads(row.output) == [
        {
            "role": "assistant",
            "tool_calls": [{"tool_call": {"function": {"name": "search", "arguments": "{}"}}}],
        }
    ]



def test_flattened_messages_after_the_key_memory_overflows() -> None:
    """Message keys are parsed once and remembered; a flood of distinct keys (one sender's unique
    attribute names) clears the memory instead of growing it, and parsing stays right."""
    messages = {
        "openinference.span.kind": "LLM",
        "llm.input_messages.0.message.content": "q",
        "llm.output_messages.0.message.content": "a",
    }
    first = norm(span(messages))
    flood = {f"custom.key.{i}": i for i in range(openinference._MAX_REMEMBERED_KEYS + 10)}
    again = norm(span({**flood, **messages}))
    assert len(openinference._message_keys) <= openinference._MAX_REMEMBERED_KEYS
    assert (first.input, first.output) == (again.input, again.output) == ('[{"content":"q"}]', '[{"content":"a"}]')


def test_message_index_that_int_refuses_is_an_ordinary_key() -> None:
    """"²" is a digit to str.isdigit but not a number to int(): the span used to be refused."""
    attributes = {
        "openinference.span.kind": "LLM",
        "llm.input_messages.².message.content": "x" * 80,
        "llm.input_messages.0.message.tool_calls.².id": "call",
        "llm.input_messages.١.message.content": "arabic-indic one",
    }
    row = norm(span(attributes))
    assert json.loads(row.input) == [{"tool_calls": {"²": {"id": "call"}}}, {"content": "arabic-indic one"}]
    assert json.loads(row.attributes)["llm.input_messages.².message.content"] == "x" * 80

def test_error_type_sources() -> None:
    declared = norm(
        span({"error.type": "TimeoutError"}, status="error", message="timed out: after 30s")
    )
    event = norm(
        span(
            {},
            status="error",
            message="boom",
            events=[
                {
                    "name": "exception",
                    "time": "2025-11-21T04:40:00",
                    "attributes": {"exception.type": "ValueError"},
                }
            ],
        )
    )
    traceloop = norm(
        span(
            {}, status="error", message="{'message': 'Error in agent run', 'data': {'error': 'x'}}"
        )
    )
    plain = norm(span({}, status="error", message="connection refused"))
    assert (declared.error_type, event.error_type, traceloop.error_type, plain.error_type) == (
        "TimeoutError",
        "ValueError",
        "Error in agent run",
        "connection refused",
    )
    assert norm(span({}, status="ok", message="fine")).error_type is None


# --- payload limit and hostile values -------------------------------------------------------


def test_input_output_truncated_on_a_character_boundary() -> None:
    row = norm(
        span(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.input.messages": "é" * 100,
                "gen_ai.output.messages": "ok",
            }
        ),
        limit=51,
    )
    assert row.payload_truncated
    assert row.input == "é" * 25 and len(row.input.encode()) == 50
    assert row.output == "ok"


def test_oversize_attribute_truncated_not_dropped() -> None:
    row = norm(
        span({"big": "x" * 5000, "nested": {"deep": ["y" * 5000, 1]}, "small": "s"}), limit=100
    )
    attributes = json.loads(row.attributes)
    assert row.payload_truncated
    assert attributes["big"] == "x" * 100
    assert attributes["nested"] == {"deep": ["y" * 100, 1]}
    assert attributes["small"] == "s"


def test_exact_limit_is_not_truncated() -> None:
    row = norm(
        span(
            {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.call.arguments": "a" * 64,
                "k": "b" * 64,
            }
        ),
        limit=64,
    )
    assert not row.payload_truncated and row.input == "a" * 64


HOSTILE: dict[str, Any] = {
    "nan": math.nan,
    "inf": -math.inf,
    "bytes": b"\x00\xffraw",
    "surrogate": "bad \ud800 text",
    "nested": [[1, [2, [3, {"k": [b"x", math.nan]}]]], {"a": None}],
    "tuple_key": {(1, 2): "v"},
    "object": object(),
    "set": {1},
    "deep": json.loads("[" * 60 + "]" * 60),
}


def test_hostile_attribute_values_never_break_the_span() -> None:
    attributes_in: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": ["not", "a", "string"],
        "gen_ai.usage.input_tokens": "12",
        "gen_ai.usage.output_tokens": 3.0,
        "gen_ai.usage.cache_read.input_tokens": "many",
        "gen_ai.usage.reasoning.output_tokens": True,
        "gen_ai.usage.cache_creation.input_tokens": -5,
        "gen_ai.input.messages": "not json {",
        "gen_ai.output.messages": {"role": "assistant"},
        **HOSTILE,
    }
    row = norm(span(attributes_in))
    assert (
        row.kind,
        row.input_tokens,
        row.output_tokens,
        row.cached_tokens,
        row.reasoning_tokens,
        row.cache_write_tokens,
    ) == ("llm", 12, 3, 0, 0, 0)
    assert row.model == '["not","a","string"]'
    assert row.input == "not json {"
    assert json.loads(row.output) == {"role": "assistant"}
    attributes = json.loads(row.attributes)
    assert attributes["nan"] == "nan" and attributes["inf"] == "-inf"
    assert attributes["surrogate"] == "bad ? text"
    assert set(attributes) == set(attributes_in)  # nothing dropped
    assert "<nested too deep>" in row.attributes
    assert row.payload_truncated  # the cut-off nesting counts as truncation


def test_hostile_fields() -> None:
    row = norm(
        span(
            {
                "gen_ai.operation.name": "guardrail_check",
                "gen_ai.guardrail.triggered": "true",
                "gen_ai.agent.name": 42,
                "session.id": ["a"],
                "user.id": "",
            },
            message="\ud800" * 3,
            status="error",
        )
    )
    assert (row.kind, row.guardrail_triggered, row.agent_name, row.session_id, row.user_id) == (
        "guardrail",
        True,
        "42",
        '["a"]',
        None,
    )
    assert row.error_type is not None
    huge = norm(span({}, status="error", message="m" * 10_000), limit=100)
    assert huge.payload_truncated and huge.status_message == "m" * 100


def test_hostile_events_and_resource() -> None:
    s = span(
        {},
        events=[
            {
                "name": "e",
                "time": "t",
                "attributes": {"b": b"\x01", "n": math.nan, "long": "z" * 500},
            }
        ],
    )
    s.resource = {"service.name": 123, "b": b"\x02"}
    row = norm(s, limit=100)
    assert json.loads(row.events)[0]["attributes"]["long"] == "z" * 100 and row.payload_truncated
    assert row.service_name == "123"
    assert json.loads(row.resource)["b"] == "Ag=="


def test_project_from_resource() -> None:
    s = span({})
    assert norm(s).project == "default"
    s.resource = {"service.name": "svc", "openinference.project.name": "billing"}
    assert norm(s).project == "billing"
    s.resource = {
        "tracehouse.project": "ours",
        "openinference.project.name": "billing",
        "x": "y" * 300,
    }
    row = norm(s, limit=100)
    assert row.project == "ours" and row.payload_truncated


# Keys every convention module reads, so that random values hit each extraction path.
KNOWN_KEYS = sorted(
    {
        "openinference.span.kind",
        "llm.model_name",
        "llm.token_count.prompt",
        "llm.token_count.completion",
        "llm.token_count.prompt_details.cache_read",
        "input.value",
        "output.value",
        "tool.name",
        "agent.name",
        "llm.input_messages.0.message.role",
        "llm.input_messages.x.message.content",
        "llm.output_messages.0.message.a.0.b",
        "gen_ai.operation.name",
        "gen_ai.request.model",
        "gen_ai.response.model",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.tool.name",
        "gen_ai.tool.call.arguments",
        "gen_ai.agent.name",
        "gen_ai.handoff.from_agent",
        "gen_ai.guardrail.triggered",
        "gen_ai.conversation.id",
        "traceloop.span.kind",
        "traceloop.workflow.name",
        "openai_agents.span_type",
        "openai_agents.guardrail.triggered",
        "openai_agents.handoff.to_agent",
        "session.id",
        "user.id",
        "error.type",
    }
)
KINDS = [
    "LLM",
    "TOOL",
    "AGENT",
    "CHAIN",
    "chat",
    "execute_tool",
    "invoke_agent",
    "handoff",
    "guardrail_check",
    "embeddings",
    "workflow",
    "agent",
    "tool",
    "task",
    "turn",
]


def _random_value(rng: Any, depth: int = 0) -> Any:
    choice = rng.randrange(12)
    if choice == 0:
        return rng.choice(KINDS)
    if choice == 1:
        return rng.randrange(-(2**70), 2**70)
    if choice == 2:
        return rng.choice([math.nan, math.inf, -0.0, 1e308, 3.5])
    if choice == 3:
        return "".join(chr(rng.randrange(0, 0x11000)) for _ in range(rng.randrange(0, 40)))
    if choice == 4:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 20)))
    if choice == 5 and depth < 4:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))]
    if choice == 6 and depth < 4:
        return {
            str(_random_value(rng, depth + 1))[:10]: _random_value(rng, depth + 1)
            for _ in range(rng.randrange(0, 4))
        }
    if choice == 7:
        return rng.choice([True, False, None, "", "true", "{not json", "unknown", "OpenAI Agent"])
    if choice == 8:
        return "x" * rng.randrange(0, 3000)
    return rng.choice(["12", " 7 ", "1e3", "gpt-4.1", "\ud83d", "é" * 50])


def test_random_hostile_spans_never_raise() -> None:
    import random

    rng = random.Random(20251121)
    for _ in range(600):
        attributes = {
            key: _random_value(rng) for key in rng.sample(KNOWN_KEYS, rng.randrange(1, 12))
        }
        s = span(
            attributes,
            parent=rng.choice([None, "00000000000000aa"]),
            status=rng.choice(["ok", "error", "unset"]),
            message=rng.choice(
                [None, "", "{'message': [", "x: y", "{" * 300, str(_random_value(rng))]
            ),
            scope=rng.choice(
                [
                    ("opentelemetry.instrumentation.openai_agents", ""),
                    ("opentelemetry.instrumentation.openai_agents", "1"),
                    ("x", ""),
                ]
            ),
        )
        row = norm(s, limit=rng.choice([1, 7, 64, 4096]))
        for count in (row.input_tokens, row.output_tokens, row.cached_tokens):
            assert count is None or 0 <= count <= 2**62
        assert row.kind in {
            "workflow",
            "chain",
            "agent",
            "llm",
            "tool",
            "handoff",
            "guardrail",
            "retriever",
            "embedding",
            "span",
        }


def test_plain_kind_constants_are_the_span_kinds() -> None:
    plain = {name: value for name, value in vars(Kind).items() if name.isupper()}
    assert plain == {kind.name: kind.value for kind in SpanKind}
    assert all(type(value) is str for value in plain.values())  # not Enum members: cheap to read
