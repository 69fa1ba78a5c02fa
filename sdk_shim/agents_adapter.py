"""Adapter for the real ``openai-agents`` package: its traces and spans → OTLP spans.

A :class:`TracingProcessor` mirrors the SDK's trace tree into OTel spans (parent by the SDK's
own parent ids, SDK timestamps kept), using the same attribute builders as the shim API, so the
collector sees one ``sdk-processor`` shape whichever way spans were made.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace as otel_trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from sdk_shim import attributes as build
from sdk_shim import semconv as sc
from sdk_shim.attributes import Attributes, Usage
from sdk_shim.config import ShimHandle, configure, current

try:
    from agents.tracing import TracingProcessor
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "instrument_openai_agents needs the openai-agents package: pip install 'tracehouse[agents]'"
    ) from exc

logger = logging.getLogger("sdk_shim")


def _ns(iso: str | None) -> int | None:
    if not iso:
        return None
    try:
        return int(datetime.fromisoformat(iso).timestamp() * 1_000_000_000)
    except ValueError:
        return None


def _dump(value: Any) -> Any:
    """Pydantic models (SDK items, Responses output) → plain data for JSON attributes."""
    if hasattr(value, "model_dump"):
        return value.model_dump(exclude_none=True)
    if isinstance(value, (list, tuple)):
        return [_dump(v) for v in value]
    return value


def _start_shape(data: Any) -> tuple[str, Attributes, SpanKind]:
    """Name, attributes and kind known when an SDK span starts."""
    kind = data.type
    if kind == "agent":
        return f"invoke_agent {data.name}", build.agent(data.name), SpanKind.INTERNAL
    if kind in ("generation", "response"):
        return (
            build.llm_name(getattr(data, "model", None)),
            build.llm(None, span_type=kind),
            SpanKind.CLIENT,
        )
    if kind == "function":
        return f"execute_tool {data.name}", build.tool(data.name), SpanKind.INTERNAL
    if kind == "handoff":
        return (
            build.handoff_name(data.from_agent, data.to_agent),
            build.handoff(data.from_agent, None),
            SpanKind.INTERNAL,
        )
    if kind == "guardrail":
        return f"guardrail {data.name}", build.guardrail(data.name, False), SpanKind.INTERNAL
    if kind in ("task", "turn"):
        return kind, build.custom(kind, None, span_type=kind), SpanKind.INTERNAL
    if kind == "custom":
        return data.name, build.custom(data.name), SpanKind.INTERNAL
    return kind, {sc.SPAN_TYPE: kind}, SpanKind.INTERNAL


def _end_shape(data: Any) -> tuple[str | None, Attributes]:
    """Name (when it changed) and attributes known when an SDK span ends."""
    kind = data.type
    if kind == "agent":
        return None, build.agent(data.name, data.handoffs, data.tools, data.output_type)
    if kind == "generation":
        config = data.model_config or {}
        attrs = build.llm(
            data.model,
            build.provider_for(data.model, config.get("base_url")),
            "generation",
            data.input,
        )
        attrs.update(build.llm_result(Usage.from_mapping(data.usage), data.model, data.output))
        return build.llm_name(data.model), attrs
    if kind == "response":
        response = data.response
        model = getattr(response, "model", None)
        usage = Usage.from_mapping(getattr(response, "usage", None) or data.usage)
        attrs = build.llm(model, "openai" if model else None, "response", _dump(data.input))
        attrs.update(
            build.llm_result(
                usage,
                model,
                _dump(response.output) if response is not None else None,
                getattr(response, "id", None),
            )
        )
        return build.llm_name(model), attrs
    if kind == "function":
        attrs = build.tool(data.name, data.input)
        attrs.update(build.tool_result(data.output))
        if data.mcp_data:
            attrs[sc.SPAN_DATA] = build.to_json({"mcp_data": data.mcp_data})
        return None, attrs
    if kind == "handoff":
        return build.handoff_name(data.from_agent, data.to_agent), build.handoff(
            data.from_agent, data.to_agent
        )
    if kind == "guardrail":
        return None, build.guardrail(data.name, data.triggered)
    if kind in ("task", "turn"):
        exported = data.export().get("data", {})
        attrs = build.custom(kind, exported, span_type=kind)
        if kind == "turn" and data.agent_name:
            attrs[sc.AGENT_NAME] = data.agent_name
        return (data.name if kind == "task" else None), attrs
    if kind == "custom":
        return None, build.custom(data.name, data.data)
    if kind in ("transcription", "speech"):
        attrs = {sc.SPAN_TYPE: kind}
        if data.model:
            attrs[sc.REQUEST_MODEL] = data.model
            attrs[sc.PROVIDER_NAME] = build.provider_for(data.model)
        if kind == "transcription" and data.output:
            attrs[sc.SPEECH_OUTPUT] = data.output
        if kind == "speech" and data.input:
            attrs[sc.SPEECH_INPUT] = data.input
        return f"{kind} {data.model}" if data.model else kind, attrs
    if kind == "speech_group":
        return None, {sc.SPAN_TYPE: kind, **({sc.SPEECH_INPUT: data.input} if data.input else {})}
    if kind == "mcp_tools":
        attrs = {sc.SPAN_TYPE: kind, sc.MCP_SERVER: data.server or ""}
        if data.result is not None:
            attrs[sc.MCP_TOOLS] = [str(t) for t in data.result]
        return f"mcp_tools {data.server}" if data.server else kind, attrs
    return None, {sc.SPAN_TYPE: kind, sc.SPAN_DATA: build.to_json(data.export())}


class _Open:
    __slots__ = ("agent", "group_id", "span")

    def __init__(self, span: otel_trace.Span, group_id: str | None, agent: str | None) -> None:
        self.span, self.group_id, self.agent = span, group_id, agent


class OTelTracingProcessor(TracingProcessor):
    """Mirrors openai-agents traces into OTel spans of the shim's tracer provider."""

    def __init__(self, handle: ShimHandle | None = None) -> None:
        self._handle = handle
        self._open: dict[str, _Open] = {}  # SDK trace id / span id → open OTel span
        self._lock = threading.Lock()

    @property
    def handle(self) -> ShimHandle:
        handle = self._handle or current()
        if handle is None:
            handle = self._handle = configure()
        return handle

    def _attrs(self, attrs: Attributes) -> Attributes:
        return attrs if self.handle.include_sensitive_data else build.strip_sensitive(attrs)

    def on_trace_start(self, trace: Any) -> None:
        exported = trace.export() or {}
        group_id = getattr(trace, "group_id", None) or exported.get("group_id")
        metadata = getattr(trace, "metadata", None) or exported.get("metadata")
        attrs = build.workflow(trace.name, trace.trace_id, group_id, metadata)
        span = self.handle.tracer.start_span(
            trace.name, context=otel_context.Context(), attributes=attrs
        )
        with self._lock:
            self._open[trace.trace_id] = _Open(span, group_id, None)

    def on_trace_end(self, trace: Any) -> None:
        with self._lock:
            entry = self._open.pop(trace.trace_id, None)
        if entry is not None:
            entry.span.end()

    def on_span_start(self, span: Any) -> None:
        try:
            self._start(span)
        except Exception:  # a tracing bug must never break the agent
            logger.exception("sdk_shim: could not start span for %s", getattr(span, "span_id", "?"))

    def on_span_end(self, span: Any) -> None:
        try:
            self._end(span)
        except Exception:
            logger.exception("sdk_shim: could not end span for %s", getattr(span, "span_id", "?"))

    def _start(self, span: Any) -> _Open:
        with self._lock:
            parent = self._open.get(span.parent_id or "") or self._open.get(span.trace_id)
        name, attrs, kind = _start_shape(span.span_data)
        group_id = parent.group_id if parent else None
        agent = (
            span.span_data.name
            if span.span_data.type == "agent"
            else (parent.agent if parent else None)
        )
        attrs[sc.SDK_SPAN_ID] = span.span_id
        if group_id:
            attrs[sc.CONVERSATION_ID] = group_id
        if agent and sc.AGENT_NAME not in attrs:
            attrs[sc.AGENT_NAME] = agent
        ctx = otel_trace.set_span_in_context(parent.span) if parent else otel_context.Context()
        otel_span = self.handle.tracer.start_span(
            name,
            context=ctx,
            kind=kind,
            attributes=self._attrs(attrs),
            start_time=_ns(span.started_at),
        )
        entry = _Open(otel_span, group_id, agent)
        with self._lock:
            self._open[span.span_id] = entry
        return entry

    def _end(self, span: Any) -> None:
        with self._lock:
            entry = self._open.pop(span.span_id, None)
        if entry is None:  # started before we were registered
            entry = self._start(span)
            with self._lock:
                self._open.pop(span.span_id, None)
        name, attrs = _end_shape(span.span_data)
        if name:
            entry.span.update_name(name)
        error = span.error
        if error:
            message = str(error.get("message") or "error")
            entry.span.set_status(Status(StatusCode.ERROR, message))
            attrs[sc.ERROR_TYPE] = message
            if error.get("data") is not None:
                attrs[sc.ERROR_DATA] = build.to_json(error["data"])
        entry.span.set_attributes(self._attrs(attrs))
        entry.span.end(end_time=_ns(span.ended_at))

    def shutdown(self) -> None:
        self.handle.shutdown()

    def force_flush(self) -> None:
        self.handle.force_flush()


def instrument(
    endpoint: str | None = None,
    service_name: str | None = None,
    headers: dict[str, str] | None = None,
    replace_default: bool = False,
    **configure_kwargs: Any,
) -> OTelTracingProcessor:
    """Register the processor with the SDK (beside its default exporter unless ``replace_default``).

    Configures the shim when arguments are given or nothing is configured yet; otherwise reuses
    the current configuration.
    """
    from agents import add_trace_processor, set_trace_processors

    handle = current()
    if handle is None or endpoint or service_name or headers or configure_kwargs:
        handle = configure(
            endpoint=endpoint, headers=headers, service_name=service_name, **configure_kwargs
        )
    processor = OTelTracingProcessor(handle)
    if replace_default:
        set_trace_processors([processor])
    else:
        add_trace_processor(processor)
    return processor
