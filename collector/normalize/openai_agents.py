"""Our own sdk-processor convention: a TracingProcessor that forwards the Agents SDK's spans with
``gen_ai.*`` keys plus ``openai_agents.*`` keys (what tracehouse's sdk_shim emits).
"""

from __future__ import annotations

from typing import Any

from collector.decode import DecodedSpan
from collector.normalize import genai
from collector.normalize.common import Kind, first_str, to_bool

NAME = "openai_agents"

PREFIX = "openai_agents."
SPAN_TYPE = "openai_agents.span_type"
TRACE_ID = "openai_agents.trace_id"  # the SDK's own trace_… id (root only)
SPAN_ID = "openai_agents.span_id"
SPAN_DATA = "openai_agents.span_data"  # the SDK span's data as JSON; usage there is never counted
METADATA_PREFIX = "openai_agents.metadata."
HANDOFF_FROM = "openai_agents.handoff.from_agent"
HANDOFF_TO = "openai_agents.handoff.to_agent"
GUARDRAIL_NAME = "openai_agents.guardrail.name"
GUARDRAIL_TRIGGERED = "openai_agents.guardrail.triggered"
ERROR_DATA = "openai_agents.error.data"

# SDK span types that gen_ai.operation.name does not distinguish.
SPAN_TYPES: dict[str, str] = {
    "trace": Kind.WORKFLOW,
    "task": Kind.CHAIN,
    "turn": Kind.CHAIN,
    "custom": Kind.CHAIN,
    "speech_group": Kind.CHAIN,
    "mcp_tools": Kind.CHAIN,  # lists an MCP server's tools; calling one is a function span
    "transcription": Kind.LLM,  # audio model calls
    "speech": Kind.LLM,
}

MODEL_KEYS = genai.MODEL_KEYS
PROVIDER_KEYS = genai.PROVIDER_KEYS
TOKEN_KEYS = genai.TOKEN_KEYS


def kind_of(span: DecodedSpan) -> str:
    kind = genai.kind_from_operation(span)
    if kind is not None:
        return kind
    value = span.attributes.get(SPAN_TYPE)
    if type(value) is str and value in SPAN_TYPES:
        return SPAN_TYPES[value]
    return genai.kind_of(span)


def details(span: DecodedSpan, kind: str) -> dict[str, Any]:
    attributes = span.attributes
    fields = genai.details(span, kind)
    if kind == Kind.HANDOFF:
        fields.update(
            genai.handoff(
                attributes, (HANDOFF_FROM, genai.HANDOFF_FROM), (HANDOFF_TO, genai.HANDOFF_TO)
            )
        )
    elif kind == Kind.GUARDRAIL:
        triggered = to_bool(attributes.get(GUARDRAIL_TRIGGERED))
        fields["guardrail_triggered"] = (
            triggered if triggered is not None else fields.get("guardrail_triggered")
        )
    fields["workflow_name"] = first_str(attributes, (genai.WORKFLOW_NAME,)) or fields.get(
        "workflow_name"
    )
    return fields
