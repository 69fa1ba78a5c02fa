"""The normalizer's row assembly as it was before the CPU tuning of ingest round 4: the reference
that ``test_decode_equivalence`` holds the hot path to.

Plain and slow on purpose: one helper call per column, the stdlib-checked JSON path for every
attribute dict, ``str.encode`` for every length, two passes to lift flattened messages. The
convention modules (kind and fields per convention) are shared with the hot path; what the
tuning changed around them is copied here as it was.
"""

from __future__ import annotations

from typing import Any

from collector.decode import DecodedSpan
from collector.model import RowValues
from collector.normalize import (
    OTEL,
    SESSION_KEYS,
    USER_KEYS,
    _DUAL_MARKERS,
    _KINDS,
    _MODEL_KINDS,
    _SPAN,
    _fill_from_genai,
    _resource,
    _sdk_message,
    convention_of,
    genai,
    openinference,
)
from collector.normalize.common import dumps, first_str, to_count
from collector.normalize.lift import _REFS, FLAT_PREFIXES, MIN_LIFTED_CHARS, flat_key


def truncate(text: str, limit: int) -> tuple[str, bool]:
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
        raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text, False
    return raw[:limit].decode("utf-8", "ignore"), True


def payload(value: Any, limit: int) -> tuple[str | None, bool]:
    if value is None:
        return None, False
    if type(value) is not str:
        value = dumps(value, None)[0]
    return truncate(value, limit)


def first_int(attributes: dict[str, Any], keys: tuple[str, ...]) -> int | None:
    for key in keys:
        value = attributes.get(key)
        if value is None:
            continue
        count = to_count(value)
        if count is not None:
            return count
    return None


def lift(attributes: dict[str, Any], payloads: tuple[tuple[str, Any, bool, bool], ...]) -> dict[str, Any]:
    lifted: dict[str, Any] | None = None
    for column, raw, flat, truncated in payloads:
        if raw is None:
            continue
        if flat:
            if truncated:
                continue
            prefix = FLAT_PREFIXES[column]
            for key, value in attributes.items():
                if (
                    type(value) is str
                    and len(value) >= MIN_LIFTED_CHARS
                    and key.startswith(prefix)
                    and (parsed := flat_key(key, prefix)) is not None
                    and "." not in parsed[1]
                ):
                    lifted = lifted if lifted is not None else dict(attributes)
                    lifted[key] = _REFS[column]
        elif type(raw) is str and len(raw) >= MIN_LIFTED_CHARS:
            for key, value in attributes.items():
                if value is raw:
                    lifted = lifted if lifted is not None else dict(attributes)
                    lifted[key] = _REFS[column]
                    break
    return lifted if lifted is not None else attributes


def dual_emitted(attributes: dict[str, Any]) -> bool:
    for key in _DUAL_MARKERS:
        if key in attributes:
            return True
    return False


def error_type(span: DecodedSpan) -> str | None:
    declared = first_str(span.attributes, ("error.type",))
    if declared is not None:
        return truncate(declared, 256)[0]
    for event in span.events:
        if event.get("name") == "exception":
            event_attributes = event.get("attributes")
            if isinstance(event_attributes, dict) and event_attributes.get("exception.type"):
                return truncate(str(event_attributes["exception.type"]), 256)[0]
    if span.status_code != "error" or not span.status_message:
        return None
    return truncate(_sdk_message(span.status_message), 256)[0]


def reference_normalize_values(span: DecodedSpan, *, max_payload_bytes: int) -> RowValues:
    attributes = span.attributes
    convention = convention_of(span)
    fields: dict[str, Any] = {}
    kind = _SPAN
    model_keys: tuple[str, ...] = ()
    provider_keys: tuple[str, ...] = ()
    token_keys: tuple[tuple[str, ...], ...] = ()
    if convention is not None:
        kind = convention.kind_of(span)
        fields = convention.details(span, kind)
        model_keys, provider_keys, token_keys = convention.MODEL_KEYS, convention.PROVIDER_KEYS, convention.TOKEN_KEYS
        if convention is openinference and dual_emitted(attributes):
            kind, fields = _fill_from_genai(span, kind, fields)
            model_keys += genai.MODEL_KEYS
            provider_keys += genai.PROVIDER_KEYS
            token_keys = tuple(a + b for a, b in zip(token_keys, genai.TOKEN_KEYS, strict=True))
    kind = _KINDS.get(kind, _SPAN)

    model = provider = None
    tokens: list[int | None] = [None] * 5
    if kind in _MODEL_KINDS:
        model = first_str(attributes, model_keys)
        provider = first_str(attributes, provider_keys)
        tokens = [first_int(attributes, keys) or 0 for keys in token_keys]

    limit = max_payload_bytes
    raw_input, raw_output = fields.get("input"), fields.get("output")
    input_text, input_cut = payload(raw_input, limit)
    output_text, output_cut = payload(raw_output, limit)
    stored_attributes = lift(
        attributes,
        (
            ("input", raw_input, fields.get("input_flat", False), input_cut),
            ("output", raw_output, fields.get("output_flat", False), output_cut),
        ),
    )
    attributes_json, attributes_cut = dumps(stored_attributes, limit)
    events_json, events_cut = dumps(span.events, limit) if span.events else ("[]", False)
    links_json, links_cut = dumps(span.links, limit) if span.links else ("[]", False)
    status_message, message_cut = truncate(span.status_message, limit) if span.status_message else (None, False)
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
        None,
        fields.get("tool_name"),
        fields.get("handoff_from"),
        fields.get("handoff_to"),
        fields.get("guardrail_triggered"),
        error_type(span),
        input_text,
        output_text,
        input_cut or output_cut or attributes_cut or events_cut or links_cut or message_cut or resource.truncated,
        attributes_json,
        resource.text,
        events_json,
        links_json,
    )
