"""DecodedSpan → SpanRow: the only code that knows attribute keys.

Baseline: every span lands as kind ``span`` with its attributes kept whole. The convention
modules (OpenInference, GenAI, traceloop, openai_agents) refine the row.
"""

from __future__ import annotations

import json
from typing import Any

from collector.decode import DecodedSpan
from collector.model import SpanKind, SpanRow


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def normalize(span: DecodedSpan, *, max_payload_bytes: int) -> SpanRow:
    """Map one decoded span to the row model."""
    return SpanRow(
        trace_id=span.trace_id,
        span_id=span.span_id,
        parent_span_id=span.parent_span_id,
        name=span.name,
        kind=SpanKind.SPAN.value,
        span_kind=span.span_kind,
        status=span.status_code,
        status_message=span.status_message,
        start_time=span.start_time,
        end_time=span.end_time,
        duration_ms=(span.end_unix_nano - span.start_unix_nano) / 1e6,
        service_name=span.resource.get("service.name"),
        scope_name=span.scope_name or None,
        convention="otel",
        attributes=_json(span.attributes),
        resource=_json(span.resource),
        events=_json(span.events),
        links=_json(span.links),
    )
