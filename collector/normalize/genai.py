"""OpenTelemetry GenAI semantic conventions (``gen_ai.*``), as emitted by the OTel contrib
openai-agents instrumentation (opentelemetry-instrumentation-openai-agents-v2) and by any other
GenAI-semconv instrumentation. traceloop and openai_agents reuse these keys.
"""

from __future__ import annotations

from typing import Any

from collector.decode import DecodedSpan
from collector.normalize.common import Kind, first_str, to_bool

NAME = "genai"

# The contrib package's scope: same name as traceloop's, but with an empty version.
SCOPE = "opentelemetry.instrumentation.openai_agents"
PREFIX = "gen_ai."

OPERATION = "gen_ai.operation.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
PROVIDER = "gen_ai.provider.name"
SYSTEM = "gen_ai.system"  # deprecated spelling of the provider, still sent by contrib
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
PROMPT_TOKENS = "gen_ai.usage.prompt_tokens"  # pre-1.27 spelling
COMPLETION_TOKENS = "gen_ai.usage.completion_tokens"  # pre-1.27 spelling
CACHE_READ_TOKENS = "gen_ai.usage.cache_read.input_tokens"
CACHE_WRITE_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
REASONING_TOKENS = "gen_ai.usage.reasoning.output_tokens"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
TOOL_NAME = "gen_ai.tool.name"
TOOL_ARGUMENTS = "gen_ai.tool.call.arguments"
TOOL_RESULT = "gen_ai.tool.call.result"
AGENT_NAME = "gen_ai.agent.name"
HANDOFF_FROM = "gen_ai.handoff.from_agent"
HANDOFF_TO = "gen_ai.handoff.to_agent"
GUARDRAIL_NAME = "gen_ai.guardrail.name"
GUARDRAIL_TRIGGERED = "gen_ai.guardrail.triggered"
CONVERSATION_ID = "gen_ai.conversation.id"
WORKFLOW_NAME = "gen_ai.workflow.name"

# contrib puts this agent on every span that is not an invoke_agent span.
PLACEHOLDER_AGENTS = frozenset({"OpenAI Agent"})

# gen_ai.operation.name → kind. Values beyond the spec are what the openai-agents
# instrumentations send (agent_handoff, guardrail_check, handoff, guardrail, invoke_workflow).
OPERATION_KINDS: dict[str, str] = {
    "chat": Kind.LLM,
    "text_completion": Kind.LLM,
    "generate_content": Kind.LLM,
    "completion": Kind.LLM,
    "response": Kind.LLM,
    "embeddings": Kind.EMBEDDING,
    "embedding": Kind.EMBEDDING,
    "retrieval": Kind.RETRIEVER,
    "retrieve": Kind.RETRIEVER,
    "execute_tool": Kind.TOOL,
    "invoke_agent": Kind.AGENT,
    "create_agent": Kind.AGENT,
    "invoke_workflow": Kind.WORKFLOW,
    "agent_handoff": Kind.HANDOFF,
    "handoff": Kind.HANDOFF,
    "guardrail_check": Kind.GUARDRAIL,
    "guardrail": Kind.GUARDRAIL,
    "unknown": Kind.CHAIN,
}

_AGENT_SPAN_PREFIX = "invoke_agent "

MODEL_KEYS = (REQUEST_MODEL, RESPONSE_MODEL)
PROVIDER_KEYS = (PROVIDER, SYSTEM)
TOKEN_KEYS = (
    (INPUT_TOKENS, PROMPT_TOKENS),
    (OUTPUT_TOKENS, COMPLETION_TOKENS),
    (CACHE_READ_TOKENS,),
    (CACHE_WRITE_TOKENS,),
    (REASONING_TOKENS, "gen_ai.usage.reasoning_tokens"),
)


def agent_name(attributes: dict[str, Any]) -> str | None:
    """``gen_ai.agent.name`` unless it is a placeholder (then the writer takes the ancestor's)."""
    name = first_str(attributes, (AGENT_NAME,))
    return None if name in PLACEHOLDER_AGENTS else name


def kind_from_operation(span: DecodedSpan) -> str | None:
    """Kind by ``gen_ai.operation.name``; None when the span has no known operation."""
    attributes = span.attributes
    operation = attributes.get(OPERATION)
    if type(operation) is not str:
        return None
    kind = OPERATION_KINDS.get(operation.strip().lower())
    # contrib's trace root: an invoke_agent span with no parent and no real agent.
    if kind == Kind.AGENT and span.parent_span_id is None and agent_name(attributes) is None:
        return Kind.WORKFLOW
    return kind


def kind_of(span: DecodedSpan) -> str:
    kind = kind_from_operation(span)
    if kind is not None:
        return kind
    attributes = span.attributes
    if OPERATION in attributes:
        return Kind.CHAIN  # an operation we do not know: still a step of the agent
    if REQUEST_MODEL in attributes or RESPONSE_MODEL in attributes or INPUT_TOKENS in attributes:
        return Kind.LLM  # older instrumentations: a model call without an operation name
    return Kind.SPAN


def details(span: DecodedSpan, kind: str) -> dict[str, Any]:
    """Kind-specific fields from ``gen_ai.*`` keys (input/output are raw values, not yet cut)."""
    attributes = span.attributes
    fields: dict[str, Any] = {"agent_name": agent_name(attributes)}
    if (
        kind == Kind.AGENT
        and fields["agent_name"] is None
        and span.name.startswith(_AGENT_SPAN_PREFIX)
    ):
        fields["agent_name"] = span.name[len(_AGENT_SPAN_PREFIX) :] or None  # semconv span name
    if kind == Kind.TOOL:
        fields["tool_name"] = first_str(attributes, (TOOL_NAME,))
        fields["input"] = attributes.get(TOOL_ARGUMENTS)
        fields["output"] = attributes.get(TOOL_RESULT)
    elif kind == Kind.HANDOFF:
        fields.update(handoff(attributes, (HANDOFF_FROM,), (HANDOFF_TO,)))
    elif kind == Kind.GUARDRAIL:
        fields["guardrail_triggered"] = to_bool(attributes.get(GUARDRAIL_TRIGGERED))
    elif kind == Kind.WORKFLOW:
        fields["workflow_name"] = first_str(attributes, (WORKFLOW_NAME,)) or span.name
    else:
        fields["input"] = attributes.get(INPUT_MESSAGES)
        fields["output"] = attributes.get(OUTPUT_MESSAGES)
    return fields


def handoff(
    attributes: dict[str, Any], from_keys: tuple[str, ...], to_keys: tuple[str, ...]
) -> dict[str, Any]:
    """handoff_from/to, with the input/output text of a handoff being the two agents.

    traceloop reads the target at span start, before the SDK knows it: ``unknown`` is no agent.
    """
    source = first_str(attributes, from_keys)
    target = first_str(attributes, to_keys)
    if target == "unknown":
        target = None
    return {"handoff_from": source, "handoff_to": target, "input": source, "output": target}
