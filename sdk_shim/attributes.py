"""Pure builders: agent data model values → OTel attribute dicts (``sdk-processor`` shape).

Both the shim's own span API and the openai-agents adapter call these, so the two emit exactly
the same keys for the same facts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sdk_shim import semconv as sc

Attributes = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage of one model call, as the provider reports it.

    OpenAI counts cached tokens inside ``input_tokens``; Anthropic reports cache reads
    (``cached_tokens``) and writes (``cache_write_tokens``) apart from ``input_tokens``. The
    collector prices each class once, knowing the provider.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_tokens + other.cached_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
        )

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | Any | None) -> Usage | None:
        """Read usage from an SDK dict or an OpenAI usage object (Responses or Chat Completions)."""
        if raw is None:
            return None

        def get(obj: Any, *names: str) -> Any:
            for name in names:
                value = obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)
                if value is not None:
                    return value
            return None

        in_details = get(raw, "input_tokens_details", "prompt_tokens_details") or {}
        out_details = get(raw, "output_tokens_details", "completion_tokens_details") or {}
        return cls(
            input_tokens=int(get(raw, "input_tokens", "prompt_tokens") or 0),
            output_tokens=int(get(raw, "output_tokens", "completion_tokens") or 0),
            cached_tokens=int(get(in_details, "cached_tokens") or get(raw, "cached_tokens") or 0),
            reasoning_tokens=int(
                get(out_details, "reasoning_tokens") or get(raw, "reasoning_tokens") or 0
            ),
            cache_write_tokens=int(
                get(in_details, "cache_write_tokens")
                or get(raw, "cache_creation_input_tokens")
                or 0
            ),
        )


def to_json(value: Any) -> str:
    """Compact JSON for structured values; anything not JSON-native is ``str()``-ed."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), default=str, ensure_ascii=False)


def _names(items: Iterable[Any] | None) -> list[str]:
    return [str(getattr(item, "name", item)) for item in items or ()]


def workflow(
    name: str, sdk_trace_id: str, group_id: str | None, metadata: Mapping[str, Any] | None
) -> Attributes:
    attrs: Attributes = {
        sc.OPERATION_NAME: sc.OP_WORKFLOW,
        sc.WORKFLOW_NAME: name,
        sc.SPAN_TYPE: sc.TYPE_TRACE,
        sc.SDK_TRACE_ID: sdk_trace_id,
    }
    for key, value in (metadata or {}).items():
        attrs[sc.METADATA_PREFIX + str(key)] = (
            value if isinstance(value, (str, bool, int, float)) else to_json(value)
        )
    if group_id:
        attrs[sc.CONVERSATION_ID] = group_id
    return attrs


def agent(
    name: str,
    handoffs: Iterable[Any] | None = None,
    tools: Iterable[Any] | None = None,
    output_type: str | None = None,
) -> Attributes:
    attrs: Attributes = {
        sc.OPERATION_NAME: sc.OP_AGENT,
        sc.SPAN_TYPE: sc.TYPE_AGENT,
        sc.AGENT_NAME: name,
    }
    if handoffs:
        attrs[sc.AGENT_HANDOFFS] = _names(handoffs)
    if tools:
        attrs[sc.AGENT_TOOLS] = _names(tools)
    if output_type:
        attrs[sc.AGENT_OUTPUT_TYPE] = output_type
    return attrs


def llm(
    model: str | None,
    provider: str | None = None,
    span_type: str = sc.TYPE_GENERATION,
    input_messages: Any = None,
    system_instructions: str | None = None,
) -> Attributes:
    attrs: Attributes = {sc.OPERATION_NAME: sc.OP_CHAT, sc.SPAN_TYPE: span_type}
    if model:
        attrs[sc.REQUEST_MODEL] = model
    if provider:
        attrs[sc.PROVIDER_NAME] = provider
    if input_messages is not None:
        attrs[sc.INPUT_MESSAGES] = to_json(input_messages)
    if system_instructions:
        attrs[sc.SYSTEM_INSTRUCTIONS] = system_instructions
    return attrs


def llm_name(model: str | None) -> str:
    return f"chat {model}" if model else "chat"


def llm_result(
    usage: Usage | None,
    response_model: str | None = None,
    output_messages: Any = None,
    response_id: str | None = None,
) -> Attributes:
    attrs: Attributes = {}
    if response_model:
        attrs[sc.RESPONSE_MODEL] = response_model
    if response_id:
        attrs[sc.RESPONSE_ID] = response_id
    if usage is not None:
        attrs[sc.USAGE_INPUT_TOKENS] = usage.input_tokens
        attrs[sc.USAGE_OUTPUT_TOKENS] = usage.output_tokens
        attrs[sc.USAGE_CACHE_READ_INPUT_TOKENS] = usage.cached_tokens
        attrs[sc.USAGE_REASONING_TOKENS] = usage.reasoning_tokens
        if usage.cache_write_tokens:
            attrs[sc.USAGE_CACHE_CREATION_INPUT_TOKENS] = usage.cache_write_tokens
    if output_messages is not None:
        attrs[sc.OUTPUT_MESSAGES] = to_json(output_messages)
    return attrs


def tool(name: str, arguments: Any = None, call_id: str | None = None) -> Attributes:
    attrs: Attributes = {
        sc.OPERATION_NAME: sc.OP_TOOL,
        sc.SPAN_TYPE: sc.TYPE_FUNCTION,
        sc.TOOL_NAME: name,
    }
    if arguments is not None:
        attrs[sc.TOOL_CALL_ARGUMENTS] = to_json(arguments)
    if call_id:
        attrs[sc.TOOL_CALL_ID] = call_id
    return attrs


def tool_result(result: Any) -> Attributes:
    # str() of the return value, as the SDK's function span records it.
    return (
        {}
        if result is None
        else {sc.TOOL_CALL_RESULT: result if isinstance(result, str) else str(result)}
    )


def handoff(from_agent: str | None, to_agent: str | None) -> Attributes:
    attrs: Attributes = {sc.OPERATION_NAME: sc.OP_HANDOFF, sc.SPAN_TYPE: sc.TYPE_HANDOFF}
    if from_agent:
        attrs[sc.HANDOFF_FROM] = from_agent
        attrs[sc.AGENT_NAME] = from_agent
    if to_agent:
        attrs[sc.HANDOFF_TO] = to_agent
    return attrs


def handoff_name(from_agent: str | None, to_agent: str | None) -> str:
    return f"handoff {from_agent or 'unknown'} -> {to_agent or 'unknown'}"


def guardrail(name: str, triggered: bool = False) -> Attributes:
    return {
        sc.OPERATION_NAME: sc.OP_GUARDRAIL,
        sc.SPAN_TYPE: sc.TYPE_GUARDRAIL,
        sc.GUARDRAIL_NAME: name,
        sc.GUARDRAIL_TRIGGERED: bool(triggered),
    }


def custom(
    name: str, data: Mapping[str, Any] | None = None, span_type: str = sc.TYPE_CUSTOM
) -> Attributes:
    attrs: Attributes = {sc.SPAN_TYPE: span_type, sc.CUSTOM_NAME: name}
    if data:
        attrs[sc.SPAN_DATA] = to_json(dict(data))
    return attrs


def strip_sensitive(attrs: Attributes) -> Attributes:
    """The same attributes without user content (inputs, outputs, tool arguments and results)."""
    if not any(key in sc.SENSITIVE_KEYS for key in attrs):
        return attrs
    return {key: value for key, value in attrs.items() if key not in sc.SENSITIVE_KEYS}


def provider_for(model: str | None, base_url: str | None = None) -> str | None:
    """Best guess of the provider from the model name (or the client's base URL)."""
    text = f"{model or ''} {base_url or ''}".lower()
    for marker, provider in (
        ("anthropic", "anthropic"),
        ("claude", "anthropic"),
        ("gemini", "gcp.gemini"),
        ("mistral", "mistral_ai"),
        ("llama", "meta"),
        ("deepseek", "deepseek"),
    ):
        if marker in text:
            return provider
    return "openai" if model or base_url else None
