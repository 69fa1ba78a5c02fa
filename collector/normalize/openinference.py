"""OpenInference (Arize), as emitted by openinference-instrumentation-openai-agents and the other
OpenInference instrumentations: ``openinference.span.kind`` plus ``llm.*`` / ``input.*`` keys.
"""

from __future__ import annotations

from typing import Any

from collector.decode import DecodedSpan
from collector.normalize.common import Kind, dumps, first_str

NAME = "openinference"

SPAN_KIND = "openinference.span.kind"
MODEL_NAME = "llm.model_name"
PROVIDER = "llm.provider"
SYSTEM = "llm.system"
PROMPT_TOKENS = "llm.token_count.prompt"
COMPLETION_TOKENS = "llm.token_count.completion"
CACHE_READ_TOKENS = "llm.token_count.prompt_details.cache_read"
CACHE_WRITE_TOKENS = "llm.token_count.prompt_details.cache_write"
REASONING_TOKENS = "llm.token_count.completion_details.reasoning"
INPUT_VALUE = "input.value"
OUTPUT_VALUE = "output.value"
INPUT_MESSAGES = "llm.input_messages."
OUTPUT_MESSAGES = "llm.output_messages."
TOOL_NAME = "tool.name"
AGENT_NAME = "agent.name"
GRAPH_NODE_ID = "graph.node.id"
SESSION_ID = "session.id"
USER_ID = "user.id"
EMBEDDING_MODEL = "embedding.model_name"

SPAN_KINDS: dict[str, str] = {
    "LLM": Kind.LLM,
    "TOOL": Kind.TOOL,  # or a handoff: see kind_of
    "AGENT": Kind.AGENT,  # or the workflow root: see kind_of
    "CHAIN": Kind.CHAIN,
    "GUARDRAIL": Kind.GUARDRAIL,
    "RETRIEVER": Kind.RETRIEVER,
    "RERANKER": Kind.RETRIEVER,
    "EMBEDDING": Kind.EMBEDDING,
    "EVALUATOR": Kind.CHAIN,
    "PROMPT": Kind.CHAIN,
}

MODEL_KEYS = (MODEL_NAME, EMBEDDING_MODEL)
PROVIDER_KEYS = (PROVIDER, SYSTEM)
TOKEN_KEYS = (
    (PROMPT_TOKENS,),
    (COMPLETION_TOKENS,),
    (CACHE_READ_TOKENS,),
    (CACHE_WRITE_TOKENS,),
    (REASONING_TOKENS,),
)


def kind_of(span: DecodedSpan) -> str:
    attributes = span.attributes
    value = attributes.get(SPAN_KIND)
    kind = (
        SPAN_KINDS.get(value.strip().upper(), Kind.SPAN)
        if type(value) is str
        else Kind.SPAN
    )
    if kind == Kind.TOOL and not attributes.get(TOOL_NAME):
        return Kind.HANDOFF  # openai-agents handoffs are TOOL spans without tool.name
    if kind == Kind.AGENT and not attributes.get(AGENT_NAME) and span.parent_span_id is None:
        return Kind.WORKFLOW  # the SDK trace root: AGENT kind, no agent, no parent
    return kind


def details(span: DecodedSpan, kind: str) -> dict[str, Any]:
    attributes = span.attributes
    # An AGENT span names its agent; frameworks without agent.name name the span after it.
    agent = (
        first_str(attributes, (AGENT_NAME, GRAPH_NODE_ID)) or span.name
        if kind == Kind.AGENT
        else None
    )
    fields: dict[str, Any] = {"agent_name": agent}
    if kind == Kind.HANDOFF:
        source = first_str(attributes, (INPUT_VALUE,))
        target = first_str(attributes, (OUTPUT_VALUE,))
        if target is None and span.name.startswith("handoff to "):
            target = span.name[len("handoff to ") :]
        fields.update(handoff_from=source, handoff_to=target, input=source, output=target)
        return fields
    if kind == Kind.TOOL:
        fields["tool_name"] = first_str(attributes, (TOOL_NAME,))
    elif kind == Kind.WORKFLOW:
        fields["workflow_name"] = span.name
    fields["input"] = attributes.get(INPUT_VALUE)
    fields["output"] = attributes.get(OUTPUT_VALUE)
    if kind == Kind.LLM and (fields["input"] is None or fields["output"] is None):
        messages_in, messages_out = flattened_messages(attributes)
        if fields["input"] is None:
            fields["input"], fields["input_flat"] = messages_in, True
        if fields["output"] is None:
            fields["output"], fields["output_flat"] = messages_out, True
    return fields


_MESSAGE_PREFIXES = (INPUT_MESSAGES, OUTPUT_MESSAGES)


def flattened_messages(attributes: dict[str, Any]) -> tuple[str | None, str | None]:
    """Rebuild ``llm.{input,output}_messages.<i>.message.<path>`` keys into JSON message lists.

    Used when ``input.value`` / ``output.value`` is missing (the OpenInference TraceConfig can
    hide them, and some senders only flatten): nested paths such as
    ``tool_calls.0.tool_call.function.name`` become nested objects, indices in order.
    One pass over the keys for both lists; this runs on the ingest hot path.
    """
    found: dict[str, dict[int, dict[str, Any]]] = {INPUT_MESSAGES: {}, OUTPUT_MESSAGES: {}}
    nested = False
    for key, value in attributes.items():
        if not key.startswith(_MESSAGE_PREFIXES):
            continue
        prefix = INPUT_MESSAGES if key[4] == "i" else OUTPUT_MESSAGES
        index, separator, path = key[len(prefix) :].partition(".message.")
        if not separator or not index.isdigit():
            continue
        node = found[prefix].setdefault(int(index), {})
        if "." not in path:
            node[path] = value
            continue
        nested = True
        parts = path.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = value
    return _as_json(found[INPUT_MESSAGES], nested), _as_json(found[OUTPUT_MESSAGES], nested)


def _as_json(messages: dict[int, dict[str, Any]], nested: bool) -> str | None:
    if not messages:
        return None
    ordered = [messages[i] for i in sorted(messages)]
    return dumps([_lists(m) for m in ordered] if nested else ordered)[0]


def _lists(node: Any) -> Any:
    """Turn dicts keyed by digit strings (flattened indices) back into lists."""
    if not isinstance(node, dict):
        return node
    if node and all(isinstance(k, str) and k.isdigit() for k in node):
        return [_lists(node[k]) for k in sorted(node, key=int)]
    return {k: _lists(v) for k, v in node.items()}
