"""DecodedSpan → SpanRow: the only code that knows attribute keys.

Each convention module (openinference, genai, traceloop, openai_agents) holds its keys and says
what kind a span is and where its fields are. This module decides, in one place, which
convention a span follows (``convention_of``), then fills what every convention shares:
model/provider/tokens on model-call spans, session, user, error type, the payload limit and
the JSON columns, where payload text lifted into input/output is kept once (``lift``). See README.md, "Conventions".
"""

from __future__ import annotations

import ast
from types import ModuleType
from typing import Any, NamedTuple

from collector.decode import DecodedSpan
from collector.model import RowValues, SpanKind, SpanRow
from collector.normalize import genai, openai_agents, openinference, traceloop
from collector.normalize.common import counts, dumps, dumps_attributes, first_str, payload, to_text, truncate
from collector.normalize.lift import lift

OTEL = "otel"

SESSION_KEYS = (openinference.SESSION_ID, genai.CONVERSATION_ID, traceloop.SESSION_ID)
USER_KEYS = (openinference.USER_ID, "enduser.id", traceloop.USER_ID)
ERROR_TYPE = "error.type"
EXCEPTION_TYPE = "exception.type"
SERVICE_NAME = "service.name"
# Resource attributes naming the project a span belongs to (Phoenix's key, then ours).
PROJECT_KEYS = ("tracehouse.project", "openinference.project.name")
DEFAULT_PROJECT = "default"

# Kinds whose spans are model calls: only these get model, provider and tokens.
_MODEL_KINDS = frozenset({SpanKind.LLM.value, SpanKind.EMBEDDING.value})
_KINDS = {kind.value: kind.value for kind in SpanKind}
_SPAN = SpanKind.SPAN.value  # an enum's .value is a property call: ~0.5 µs per span on the hot path

# A span with these keys besides openinference.span.kind is dual-emitted; gen_ai.* fills the gaps.
_DUAL_MARKERS = (
    genai.OPERATION,
    genai.REQUEST_MODEL,
    genai.RESPONSE_MODEL,
    genai.INPUT_TOKENS,
    genai.TOOL_NAME,
)


def convention_of(span: DecodedSpan) -> ModuleType | None:
    """The precedence, decided here only: OpenInference > traceloop > sdk-processor > GenAI.

    ``None`` means a plain OTel span. CONVENTIONS.md §2 says how each convention is recognised.
    """
    attributes = span.attributes
    if openinference.SPAN_KIND in attributes:
        return openinference
    if traceloop.is_traceloop(span):
        return traceloop
    keys = "\x00" + "\x00".join(attributes)  # one scan for both prefixes
    if "\x00" + openai_agents.PREFIX in keys:
        return openai_agents
    if span.scope_name == genai.SCOPE or "\x00" + genai.PREFIX in keys:
        return genai
    return None


def normalize(span: DecodedSpan, *, max_payload_bytes: int) -> SpanRow:
    """Map one decoded span to the row model. Never raises on attribute values."""
    return SpanRow(*normalize_values(span, max_payload_bytes=max_payload_bytes))


def normalize_values(span: DecodedSpan, *, max_payload_bytes: int) -> RowValues:
    """:func:`normalize` as a tuple in ``ROW_COLUMNS`` order (collector.model) (SpanRow's fields but ``received_at``).

    The ingest path builds Arrow columns from these tuples: a 40-field SpanRow per span and
    reading it back cost ~5 µs a span, a tenth of the whole preparation (measured).
    """
    attributes = span.attributes
    convention = convention_of(span)
    fields: dict[str, Any] = _NO_FIELDS
    kind = _SPAN
    keys = _OTEL_KEYS
    if convention is not None:
        kind = convention.kind_of(span)
        fields = convention.details(span, kind)
        keys = _KEYS[convention]
        if convention is openinference and _dual_emitted(attributes):
            kind, fields = _fill_from_genai(span, kind, fields)
            keys = _DUAL_KEYS
    kind = _KINDS.get(kind, _SPAN)

    model = provider = None
    tokens: tuple[int | None, ...] = _NO_TOKENS
    if kind in _MODEL_KINDS:
        model = first_str(attributes, keys.model)
        provider = first_str(attributes, keys.provider)
        tokens = counts(attributes, keys.tokens)

    limit = max_payload_bytes
    raw_input, raw_output = fields.get("input"), fields.get("output")
    input_text, input_cut = payload(raw_input, limit)
    output_text, output_cut = payload(raw_output, limit)
    stored_attributes = (
        lift(
            attributes,
            (
                ("input", raw_input, fields.get("input_flat"), input_cut),
                ("output", raw_output, fields.get("output_flat"), output_cut),
            ),
        )
        if raw_input is not None or raw_output is not None
        else attributes
    )
    attributes_json, attributes_cut = dumps_attributes(stored_attributes, attributes, limit)
    events_json, events_cut = dumps(span.events, limit) if span.events else ("[]", False)
    links_json, links_cut = dumps(span.links, limit) if span.links else ("[]", False)
    status_message, message_cut = (
        truncate(span.status_message, limit) if span.status_message else (None, False)
    )
    resource = _resource(span.resource, limit)

    return (
        span.trace_id,
        span.span_id,
        span.parent_span_id,
        span.name,
        kind,
        span.span_kind,
        span.status_code,
        status_message,
        span.start_unix_nano // 1000,
        span.end_unix_nano // 1000,
        (span.end_unix_nano - span.start_unix_nano) / 1e6,
        resource.service_name,
        span.scope_name or None,
        convention.NAME if convention is not None else OTEL,
        resource.project,
        first_str(attributes, SESSION_KEYS),
        first_str(attributes, USER_KEYS),
        fields.get("workflow_name"),
        fields.get("agent_name"),
        model,
        provider,
        *tokens,
        None,  # cost_usd: priced later by the analytics cost job
        fields.get("tool_name"),
        fields.get("handoff_from"),
        fields.get("handoff_to"),
        fields.get("guardrail_triggered"),
        _error_type(span),
        input_text,
        output_text,
        (
            input_cut
            or output_cut
            or attributes_cut
            or events_cut
            or links_cut
            or message_cut
            or resource.truncated
        ),
        attributes_json,
        resource.text,
        events_json,
        links_json,
    )


def _dual_emitted(attributes: dict[str, Any]) -> bool:
    return not attributes.keys().isdisjoint(_DUAL_MARKERS)  # C-level: no loop in Python


class _ModelKeys(NamedTuple):
    """Where a convention keeps a model call's model, provider and the five token counts."""

    model: tuple[str, ...]
    provider: tuple[str, ...]
    tokens: tuple[tuple[str, ...], ...]


_KEYS = {
    module: _ModelKeys(module.MODEL_KEYS, module.PROVIDER_KEYS, module.TOKEN_KEYS)
    for module in (openinference, traceloop, openai_agents, genai)
}
# A dual-emitted OpenInference span: its own keys first, then gen_ai.*'s (built once, not per span).
_DUAL_KEYS = _ModelKeys(
    openinference.MODEL_KEYS + genai.MODEL_KEYS,
    openinference.PROVIDER_KEYS + genai.PROVIDER_KEYS,
    tuple(a + b for a, b in zip(openinference.TOKEN_KEYS, genai.TOKEN_KEYS, strict=True)),
)
_OTEL_KEYS = _ModelKeys((), (), ((),) * 5)
_NO_FIELDS: dict[str, Any] = {}  # read only
_NO_TOKENS: tuple[None, ...] = (None,) * 5


def _fill_from_genai(
    span: DecodedSpan, kind: str, fields: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """OpenInference wins; gen_ai.* only fills what it leaves empty (Phoenix's setdefault)."""
    if kind == _SPAN:
        kind = genai.kind_of(span)
    for key, value in genai.details(span, kind).items():
        if fields.get(key) is None:
            fields[key] = value
    return kind, fields


class _Resource(NamedTuple):
    source: dict[str, Any]  # held so that its id cannot be reused while cached
    limit: int
    text: str
    truncated: bool
    service_name: str | None
    project: str


# Resource attributes are shared by every span of a request: read them once.
_resource_cache: _Resource | None = None


def _resource(resource: dict[str, Any], limit: int) -> _Resource:
    global _resource_cache
    cached = _resource_cache
    if cached is not None and cached.source is resource and cached.limit == limit:
        return cached
    text, truncated = dumps(resource, limit)
    cached = _Resource(
        source=resource,
        limit=limit,
        text=text,
        truncated=truncated,
        service_name=first_str(resource, (SERVICE_NAME,)),
        project=first_str(resource, PROJECT_KEYS) or DEFAULT_PROJECT,
    )
    _resource_cache = cached
    return cached


def _error_type(span: DecodedSpan) -> str | None:
    """``error.type``, else the exception event's type, else the SDK message of an ERROR status.

    The openai-agents instrumentations put ``"<SDK message>: <data repr>"`` (OpenInference,
    contrib) or ``str({'message': …, 'data': …})`` (traceloop) in the status message; the
    SDK message ("Error running tool (non-fatal)", "Error getting response", …) is the type.
    """
    declared = span.attributes.get(ERROR_TYPE)
    if declared is not None and declared != "":  # first_str's rule, without its call: every span asks
        return truncate(declared if type(declared) is str else to_text(declared), 256)[0]
    for event in span.events:
        if event.get("name") == "exception":
            event_attributes = event.get("attributes")
            if isinstance(event_attributes, dict) and event_attributes.get(EXCEPTION_TYPE):
                return truncate(str(event_attributes[EXCEPTION_TYPE]), 256)[0]
    if span.status_code != "error" or not span.status_message:
        return None
    return truncate(_sdk_message(span.status_message), 256)[0]


def _sdk_message(message: str) -> str:
    text = message.strip()
    if text.startswith("{") and len(text) < 65536:
        try:
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
            parsed = None
        if isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
            return parsed["message"]
    head, separator, _ = text.partition(": ")
    if separator and head and len(head) <= 100:
        return head
    return text
