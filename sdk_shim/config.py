"""configure(): an OpenTelemetry TracerProvider with the OTLP exporter, owned by the shim.

Batching, retry and export are the OTel SDK's (BatchSpanProcessor + OTLP exporters). What we add:
standard-env defaults, a bounded flush at exit, and counting of spans that never reached the
collector, logged once, so an unreachable collector costs the agent nothing but a warning.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Tracer

logger = logging.getLogger("sdk_shim")

SCOPE_NAME = "tracehouse.sdk_shim"
SCOPE_VERSION = "0.1.0"
DEFAULT_GRPC_ENDPOINT = "http://127.0.0.1:4317"
DEFAULT_HTTP_ENDPOINT = "http://127.0.0.1:4318"
EXIT_FLUSH_TIMEOUT_S = 3.0


class _DropCounter:
    """Counts spans lost on the way to the collector; warns once, then stays quiet."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.count = 0
        self._warned = False
        self._lock = threading.Lock()

    def add(self, n: int, reason: str) -> None:
        with self._lock:
            self.count += n
            warn, self._warned = not self._warned, True
        if warn:
            logger.warning(
                "sdk_shim: %s spans not delivered to %s (%s); the agent keeps running, "
                "further drops are counted in handle.dropped_spans",
                n,
                self.endpoint,
                reason,
            )


class _FirstOnly(logging.Filter):
    """Lets the OTel exporters' first failure log through; repeats are what the drop count is for."""

    def __init__(self) -> None:
        super().__init__()
        self._seen = False

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        seen, self._seen = self._seen, True
        return not seen


_EXPORTER_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http._common",
    "opentelemetry.sdk._shared_internal",
)


def _quiet_exporter_logs() -> None:
    for name in _EXPORTER_LOGGERS:
        log = logging.getLogger(name)
        if not any(isinstance(f, _FirstOnly) for f in log.filters):
            log.addFilter(_FirstOnly())


class _CountingExporter(SpanExporter):
    """Delegates to the OTLP exporter; a failed or raising export counts its spans as dropped."""

    def __init__(self, inner: SpanExporter, drops: _DropCounter) -> None:
        self._inner = inner
        self._drops = drops

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self._inner.export(spans)
        except Exception as exc:  # noqa: BLE001 - an exporter bug must not kill the export thread
            self._drops.add(len(spans), f"export raised {type(exc).__name__}")
            return SpanExportResult.FAILURE
        if result is not SpanExportResult.SUCCESS:
            self._drops.add(len(spans), "collector unreachable or refused the batch")
        return result

    def shutdown(self, *args: Any, **kwargs: Any) -> None:
        self._inner.shutdown(*args, **kwargs)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._inner.force_flush(timeout_millis)


class _CountingBatchProcessor(BatchSpanProcessor):
    """BatchSpanProcessor that counts the spans it drops because its queue is full."""

    def __init__(self, exporter: SpanExporter, drops: _DropCounter, **kwargs: Any) -> None:
        super().__init__(exporter, **kwargs)
        self._drops = drops
        inner = getattr(self, "_batch_processor", None)
        self._queue = getattr(inner, "_queue", None)
        self._max_queue = getattr(inner, "_max_queue_size", None)

    def on_end(self, span: ReadableSpan) -> None:
        if self._queue is not None and len(self._queue) >= (self._max_queue or 0):
            self._drops.add(1, "export queue full")
        super().on_end(span)


def _env(*names: str) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value.strip()
    return None


def _parse_headers(raw: str | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    for part in (raw or "").split(","):
        if "=" in part:
            key, value = part.split("=", 1)
            headers[key.strip()] = value.strip()
    return headers


def _otlp_exporter(
    endpoint: str | None, headers: Mapping[str, str], protocol: str, timeout: float
) -> tuple[SpanExporter, str]:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )

        url = (
            endpoint
            or _env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
            or DEFAULT_GRPC_ENDPOINT
        )
        insecure = not url.startswith("https://")
        return GrpcExporter(
            endpoint=url, headers=dict(headers), insecure=insecure, timeout=timeout
        ), url
    if protocol in {"http", "http/protobuf"}:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpExporter,
        )

        url = endpoint or _env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        if url is None:
            base = _env("OTEL_EXPORTER_OTLP_ENDPOINT") or DEFAULT_HTTP_ENDPOINT
            url = base.rstrip("/") + "/v1/traces"
        elif not url.rstrip("/").endswith("/v1/traces"):
            url = url.rstrip("/") + "/v1/traces"
        return HttpExporter(endpoint=url, headers=dict(headers), timeout=timeout), url
    raise ValueError(f"protocol must be 'grpc' or 'http', not {protocol!r}")


class ShimHandle:
    """What configure() returns: the tracer provider and its lifecycle."""

    def __init__(
        self,
        provider: TracerProvider,
        include_sensitive_data: bool,
        drops: _DropCounter | None,
        endpoint: str | None,
    ) -> None:
        self.tracer_provider = provider
        self.tracer: Tracer = provider.get_tracer(SCOPE_NAME, SCOPE_VERSION)
        self.include_sensitive_data = include_sensitive_data
        self.endpoint = endpoint
        self._drops = drops
        self._closed = False

    @property
    def dropped_spans(self) -> int:
        """Spans that did not reach the collector (export failed or queue full)."""
        return self._drops.count if self._drops else 0

    def force_flush(self, timeout_s: float = 10.0) -> bool:
        """Send every ended span now; False if that did not finish in time."""
        return self.tracer_provider.force_flush(int(timeout_s * 1000))

    def shutdown(self, timeout_s: float = EXIT_FLUSH_TIMEOUT_S) -> None:
        """Flush (bounded by ``timeout_s``) and stop exporting. Idempotent."""
        if self._closed:
            return
        self._closed = True
        processor = self.tracer_provider._active_span_processor
        for inner in getattr(processor, "_span_processors", ()):
            try:
                batch = getattr(inner, "_batch_processor", None)
                if isinstance(inner, BatchSpanProcessor) and batch is not None:
                    batch.shutdown(
                        timeout_millis=int(timeout_s * 1000)
                    )  # bounded, unlike inner.shutdown()
                    self._count_unsent(batch)
                else:
                    inner.shutdown()
            except Exception:  # pragma: no cover - a processor failing at exit must not raise
                logger.exception("sdk_shim: processor shutdown failed")
        if self is _current_handle():
            _set_handle(None)

    def _count_unsent(self, batch: Any) -> None:
        """Spans still queued after a bounded shutdown never leave: count them as dropped."""
        worker = getattr(batch, "_worker_thread", None)
        if worker is not None:
            worker.join(0.5)  # the export in flight was just aborted; let it report its result
        queue = getattr(batch, "_queue", None)
        if self._drops is not None and queue:
            self._drops.add(len(queue), "still queued at shutdown")
            queue.clear()


_HANDLE: ShimHandle | None = None
_HANDLE_LOCK = threading.Lock()


def _current_handle() -> ShimHandle | None:
    return _HANDLE


def _set_handle(handle: ShimHandle | None) -> None:
    global _HANDLE
    _HANDLE = handle


def configure(
    endpoint: str | None = None,
    headers: Mapping[str, str] | None = None,
    service_name: str | None = None,
    protocol: str | None = None,
    include_sensitive_data: bool = True,
    processors: Sequence[SpanProcessor] = (),
    otlp: bool = True,
    export_timeout_s: float | None = None,
    max_queue_size: int = 8192,
    schedule_delay_ms: int = 500,
    resource_attributes: Mapping[str, Any] | None = None,
) -> ShimHandle:
    """Start exporting agent spans; unset arguments come from the standard OTEL_* variables.

    ``otlp=False`` skips the OTLP exporter (only ``processors`` receive spans). Calling it again
    replaces the previous configuration (which is shut down).
    """
    protocol = (
        protocol
        or _env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
        or "grpc"
    ).lower()
    protocol = "http" if protocol.startswith("http") else protocol
    if protocol not in {"grpc", "http"}:
        raise ValueError(f"protocol must be 'grpc' or 'http', not {protocol!r}")
    merged_headers = {
        **_parse_headers(_env("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS")),
        **(headers or {}),
    }
    timeout = export_timeout_s or float(
        _env("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT") or 10
    )
    service = service_name or _env("OTEL_SERVICE_NAME") or "agent"
    resource = Resource.create({"service.name": service, **(resource_attributes or {})})
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    drops: _DropCounter | None = None
    url: str | None = None
    if otlp:
        _quiet_exporter_logs()
        exporter, url = _otlp_exporter(endpoint, merged_headers, protocol, timeout)
        drops = _DropCounter(url)
        provider.add_span_processor(
            _CountingBatchProcessor(
                _CountingExporter(exporter, drops),
                drops,
                max_queue_size=max_queue_size,
                schedule_delay_millis=schedule_delay_ms,
            )
        )
    for processor in processors:
        provider.add_span_processor(processor)
    handle = ShimHandle(provider, include_sensitive_data, drops, url)
    with _HANDLE_LOCK:
        previous = _current_handle()
        _set_handle(handle)
    if previous is not None:
        previous.shutdown()
    return handle


def current() -> ShimHandle | None:
    """The active configuration, or None before configure()."""
    return _current_handle()


@atexit.register
def _flush_at_exit() -> None:
    handle = _current_handle()
    if handle is not None:
        handle.shutdown()
