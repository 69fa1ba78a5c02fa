"""OTLP request → plain Python values. The only module that touches protobuf types.

No semantics here: ids become lowercase hex, nanoseconds become naive UTC datetimes, AnyValue
becomes str/int/float/bool/list/dict/bytes, resource and scope attributes ride along.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(slots=True)
class DecodedSpan:
    """One OTLP span with its resource and scope, as plain values."""

    trace_id: str  # 32 lowercase hex
    span_id: str  # 16 lowercase hex
    parent_span_id: str | None  # None for a root span (empty parent id on the wire)
    name: str
    span_kind: str  # internal, server, client, producer, consumer, unspecified
    start_time: datetime  # naive UTC
    end_time: datetime  # naive UTC
    start_unix_nano: int
    end_unix_nano: int
    status_code: str  # ok, error, unset
    status_message: str | None
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope_name: str
    scope_version: str
    schema_url: str
    events: list[dict[str, Any]] = field(default_factory=list)  # {name, time, attributes}
    links: list[dict[str, Any]] = field(default_factory=list)  # {trace_id, span_id, attributes}


@dataclass(slots=True)
class Rejected:
    """A span refused on its own (invalid id, bad times); the rest of its request goes on."""

    index: int  # position of the span in the request, counting from 0
    reason: str
