"""The one row shape: what normalize emits, the writer inserts and queries return.

The field names are the column names of the `spans` table in `schema.sql`; a test checks
that the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
from typing import Any


class SpanKind(StrEnum):
    """What a span is, across conventions (DESIGN.md, "The span row")."""

    WORKFLOW = "workflow"  # the root of an agent framework's trace
    AGENT = "agent"
    LLM = "llm"
    TOOL = "tool"
    HANDOFF = "handoff"
    GUARDRAIL = "guardrail"
    CHAIN = "chain"  # task / turn / other grouping spans
    RETRIEVER = "retriever"
    EMBEDDING = "embedding"
    SPAN = "span"  # none of the known conventions


class Status(StrEnum):
    OK = "ok"
    ERROR = "error"
    UNSET = "unset"


@dataclass(slots=True)
class SpanRow:
    """One span as stored. JSON columns hold JSON text.

    Times are UTC: the ingest path fills microseconds since the Unix epoch (an int is ~15x cheaper
    to build and ~40x cheaper to turn into an Arrow timestamp than a datetime, measured per span);
    a naive UTC datetime is accepted as well (tools, tests). Queries return datetimes.

    Not frozen on purpose: a frozen dataclass costs ~4 µs more per row on the ingest hot path
    (measured), and rows are never shared across threads before the writer owns them.
    """

    trace_id: str  # 32 lowercase hex digits
    span_id: str  # 16 lowercase hex digits
    parent_span_id: str | None
    name: str
    kind: str  # a SpanKind value
    span_kind: str  # OTel SpanKind: internal, server, client, producer, consumer, unspecified
    status: str  # a Status value
    status_message: str | None
    start_time: datetime | int  # int: microseconds since the Unix epoch, UTC
    end_time: datetime | int
    duration_ms: float
    service_name: str | None
    scope_name: str | None
    convention: str  # openinference, genai, traceloop, openai_agents or otel
    project: str = "default"
    session_id: str | None = None
    user_id: str | None = None
    workflow_name: str | None = None
    agent_name: str | None = None
    model: str | None = None
    provider: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    cost_usd: float | None = None  # set later by the analytics cost job; None = not priced
    tool_name: str | None = None
    handoff_from: str | None = None
    handoff_to: str | None = None
    guardrail_triggered: bool | None = None
    error_type: str | None = None
    input: str | None = None
    output: str | None = None
    payload_truncated: bool = False
    attributes: str = "{}"
    resource: str = "{}"
    events: str = "[]"
    links: str = "[]"
    received_at: datetime | None = None  # set by the writer at commit


SPAN_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(SpanRow))
# What the ingest path produces per span (collector.normalize.normalize_values): SpanRow's
# fields in this order, all but received_at, which the writer stamps at commit.
ROW_COLUMNS: tuple[str, ...] = tuple(c for c in SPAN_COLUMNS if c != "received_at")
RowValues = tuple[Any, ...]
