"""SpanRow builders for writer and resolver tests."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from collector.model import SpanRow

T0 = datetime(2026, 3, 1, 12, 0, 0)


def span_row(
    trace_id: str | None = None,
    span_id: str | None = None,
    *,
    parent: str | None = None,
    kind: str = "span",
    agent: str | None = None,
    offset_ms: int = 0,
    **fields: Any,
) -> SpanRow:
    start = T0 + timedelta(milliseconds=offset_ms)
    row = SpanRow(
        trace_id=trace_id or os.urandom(16).hex(),
        span_id=span_id or os.urandom(8).hex(),
        parent_span_id=parent,
        name=fields.pop("name", f"{kind}-span"),
        kind=kind,
        span_kind="internal",
        status="ok",
        status_message=None,
        start_time=start,
        end_time=start + timedelta(milliseconds=5),
        duration_ms=5.0,
        service_name="tests",
        scope_name=None,
        convention="otel",
        agent_name=agent,
    )
    return replace(row, **fields) if fields else row


def new_id() -> str:
    return os.urandom(8).hex()
