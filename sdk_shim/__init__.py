"""Tracehouse sdk_shim: agent tracing on OpenTelemetry, in the OpenAI Agents SDK's data model.

One line to send spans to a Tracehouse (or any OTLP) collector::

    import sdk_shim
    sdk_shim.configure(endpoint="http://127.0.0.1:4317", service_name="support-bot")
    with sdk_shim.trace("support", group_id=conversation_id):
        with sdk_shim.agent_span("triage"):
            ...

With the real ``openai-agents`` package: ``sdk_shim.instrument_openai_agents(endpoint=...)``.
"""

from __future__ import annotations

from typing import Any

from sdk_shim.attributes import Usage
from sdk_shim.config import ShimHandle, configure, current
from sdk_shim.processors import ConsoleProcessor, JsonlFileProcessor
from sdk_shim.spans import (
    SpanHandle,
    agent_span,
    current_trace,
    custom_span,
    function_span,
    generation_span,
    guardrail_span,
    handoff_span,
    propagate,
    trace,
)


def instrument_openai_agents(
    endpoint: str | None = None,
    service_name: str | None = None,
    headers: dict[str, str] | None = None,
    **configure_kwargs: Any,
) -> Any:
    """Forward the real openai-agents SDK's traces to the collector (see sdk_shim.agents_adapter)."""
    from sdk_shim.agents_adapter import instrument

    return instrument(
        endpoint=endpoint, service_name=service_name, headers=headers, **configure_kwargs
    )


__all__ = [
    "ConsoleProcessor",
    "JsonlFileProcessor",
    "ShimHandle",
    "SpanHandle",
    "Usage",
    "agent_span",
    "configure",
    "current",
    "current_trace",
    "custom_span",
    "function_span",
    "generation_span",
    "guardrail_span",
    "handoff_span",
    "instrument_openai_agents",
    "propagate",
    "trace",
]
