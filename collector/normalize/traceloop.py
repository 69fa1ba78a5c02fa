"""OpenLLMetry / Traceloop (opentelemetry-instrumentation-openai-agents and its siblings):
``traceloop.span.kind`` on workflow/agent/tool/handoff spans, ``gen_ai.*`` everywhere else.
"""

from __future__ import annotations

from typing import Any

from collector.decode import DecodedSpan
from collector.normalize import genai
from collector.normalize.common import Kind, first_str

NAME = "traceloop"

SCOPE = genai.SCOPE  # with a non-empty version (contrib's is empty)
SPAN_KIND = "traceloop.span.kind"
WORKFLOW_NAME = "traceloop.workflow.name"
ENTITY_INPUT = "traceloop.entity.input"
ENTITY_OUTPUT = "traceloop.entity.output"
CACHE_READ_TOKENS_OLD = "gen_ai.usage.cache_read_input_tokens"
CACHE_WRITE_TOKENS_OLD = "gen_ai.usage.cache_creation_input_tokens"
REASONING_TOKENS = "gen_ai.usage.reasoning_tokens"
SESSION_ID = "traceloop.association.properties.session_id"
USER_ID = "traceloop.association.properties.user_id"

# The openai-agents package names every root this way; it is no workflow name.
PLACEHOLDER_WORKFLOWS = frozenset({"Agent Workflow"})

SPAN_KINDS: dict[str, str] = {
    "workflow": Kind.WORKFLOW,
    "agent": Kind.AGENT,
    "tool": Kind.TOOL,
    "handoff": Kind.HANDOFF,
    "task": Kind.CHAIN,
}

# traceloop records the served model on Responses spans and only the request on generation spans.
MODEL_KEYS = (genai.RESPONSE_MODEL, genai.REQUEST_MODEL)
PROVIDER_KEYS = genai.PROVIDER_KEYS
TOKEN_KEYS = (
    (genai.INPUT_TOKENS, genai.PROMPT_TOKENS),
    (genai.OUTPUT_TOKENS, genai.COMPLETION_TOKENS),
    (genai.CACHE_READ_TOKENS, CACHE_READ_TOKENS_OLD),
    (genai.CACHE_WRITE_TOKENS, CACHE_WRITE_TOKENS_OLD),
    (REASONING_TOKENS, genai.REASONING_TOKENS),
)


def is_traceloop(span: DecodedSpan) -> bool:
    return SPAN_KIND in span.attributes or (span.scope_name == SCOPE and bool(span.scope_version))


def kind_of(span: DecodedSpan) -> str:
    value = span.attributes.get(SPAN_KIND)
    if type(value) is str:
        kind = SPAN_KINDS.get(value.strip().lower())
        if kind is not None:
            return kind
    return genai.kind_of(span)  # LLM spans carry gen_ai.operation.name=chat only


def details(span: DecodedSpan, kind: str) -> dict[str, Any]:
    attributes = span.attributes
    fields = genai.details(span, kind)
    workflow = first_str(attributes, (WORKFLOW_NAME,))
    fields["workflow_name"] = None if workflow in PLACEHOLDER_WORKFLOWS else workflow
    if kind == Kind.HANDOFF:
        fields.update(
            genai.handoff(attributes, (genai.HANDOFF_FROM, genai.AGENT_NAME), (genai.HANDOFF_TO,))
        )
    elif fields.get("input") is None and fields.get("output") is None:
        fields["input"] = attributes.get(ENTITY_INPUT)
        fields["output"] = attributes.get(ENTITY_OUTPUT)
    return fields
