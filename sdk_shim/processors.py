"""Span processors beside OTLP: a one-line-per-span console printer and a JSONL file writer.

Both redact user content (inputs, outputs, tool arguments and results) when asked; spans made
with ``include_sensitive_data=False`` never carry it in the first place.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import IO, Any

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import StatusCode

from sdk_shim import semconv as sc


def redact(attributes: dict[str, Any]) -> dict[str, Any]:
    """Attributes with every sensitive value replaced by ``<redacted>``."""
    return {
        key: (sc.REDACTED if key in sc.SENSITIVE_KEYS else value)
        for key, value in attributes.items()
    }


def span_to_dict(span: ReadableSpan, redacted: bool) -> dict[str, Any]:
    """A JSON-ready view of a finished span (ids in hex, times in ns since the epoch)."""
    ctx = span.get_span_context()
    attrs = dict(span.attributes or {})
    attrs = redact(attrs) if redacted else attrs
    return {
        "trace_id": f"{ctx.trace_id:032x}" if ctx else None,
        "span_id": f"{ctx.span_id:016x}" if ctx else None,
        "parent_span_id": f"{span.parent.span_id:016x}" if span.parent else None,
        "name": span.name,
        "kind": span.kind.name,
        "start_time_unix_nano": span.start_time,
        "end_time_unix_nano": span.end_time,
        "status": span.status.status_code.name,
        "status_message": span.status.description,
        "attributes": {k: list(v) if isinstance(v, tuple) else v for k, v in attrs.items()},
        "events": [
            {
                "name": e.name,
                "time_unix_nano": e.timestamp,
                "attributes": redact(dict(e.attributes or {}))
                if redacted
                else dict(e.attributes or {}),
            }
            for e in span.events
        ],
        "resource": dict(span.resource.attributes) if span.resource else {},
    }


class JsonlFileProcessor(SpanProcessor):
    """Appends one JSON object per finished span to a file (a local, greppable trace log)."""

    def __init__(self, path: str | Path, redact_sensitive: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = self.path.open("a", encoding="utf-8")
        self._redact = redact_sensitive
        self._lock = threading.Lock()

    def on_end(self, span: ReadableSpan) -> None:
        line = json.dumps(span_to_dict(span, self._redact), default=str, ensure_ascii=False)
        with self._lock:
            if self._file is not None:
                self._file.write(line + "\n")

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        with self._lock:
            if self._file is not None:
                self._file.flush()
        return True

    def shutdown(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


class ConsoleProcessor(SpanProcessor):
    """Prints one readable line per finished span: kind, name, duration, tokens, status."""

    def __init__(self, stream: IO[str] | None = None, redact_sensitive: bool = False) -> None:
        self._stream = stream
        self._redact = redact_sensitive
        self._lock = threading.Lock()

    def on_end(self, span: ReadableSpan) -> None:
        attrs = dict(span.attributes or {})
        ms = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
        parts = [f"{attrs.get(sc.SPAN_TYPE, 'span'):<10}", f"{span.name:<40}", f"{ms:9.1f} ms"]
        if sc.USAGE_INPUT_TOKENS in attrs:
            parts.append(
                f"tokens in={attrs[sc.USAGE_INPUT_TOKENS]} out={attrs.get(sc.USAGE_OUTPUT_TOKENS, 0)} "
                f"cached={attrs.get(sc.USAGE_CACHE_READ_INPUT_TOKENS, 0)}"
            )
        if sc.TOOL_CALL_RESULT in attrs:
            result = sc.REDACTED if self._redact else str(attrs[sc.TOOL_CALL_RESULT])[:60]
            parts.append(f"result={result}")
        if span.status.status_code is StatusCode.ERROR:
            parts.append(f"ERROR {span.status.description or ''}")
        with self._lock:
            print("  ".join(parts), file=self._stream or sys.stderr, flush=True)
