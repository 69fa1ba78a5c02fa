"""The official OpenTelemetry exporters work unchanged against the collector (gRPC and HTTP)."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Status, StatusCode

from tests.conftest import RunningCollector


def make_exporter(protocol: str, collector: RunningCollector | None = None) -> SpanExporter:
    """An official OTLP exporter; without a collector it reads the OTEL_EXPORTER_OTLP_* variables."""
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )

        if collector is None:
            return GrpcExporter()
        return GrpcExporter(endpoint=collector.grpc_endpoint, insecure=True)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpExporter,
    )

    if collector is None:
        return HttpExporter()
    return HttpExporter(endpoint=f"{collector.http_url}/v1/traces")


def emit_trace(exporter: SpanExporter, service: str) -> tuple[str, int]:
    """Emit a 3-span trace through a BatchSpanProcessor; returns (trace_id hex, span count)."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("tests.exporters")
    with tracer.start_as_current_span("workflow") as root:
        with tracer.start_as_current_span(
            "llm call", attributes={"gen_ai.request.model": "gpt-4o"}
        ):
            pass
        with tracer.start_as_current_span("tool") as tool:
            tool.set_status(Status(StatusCode.ERROR, "tool failed"))
        trace_id = format(root.get_span_context().trace_id, "032x")
    assert provider.force_flush(10_000)
    provider.shutdown()
    return trace_id, 3


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_official_exporter_spans_are_stored(collector: RunningCollector, protocol: str) -> None:
    trace_id, count = emit_trace(make_exporter(protocol, collector), f"svc-{protocol}")
    rows = collector.sql(
        "SELECT name, parent_span_id IS NULL, status, status_message, service_name FROM spans "
        "WHERE trace_id = ? ORDER BY start_time",
        [trace_id],
    )
    assert len(rows) == count
    assert rows[0] == ("workflow", True, "unset", None, f"svc-{protocol}")
    assert ("tool", False, "error", "tool failed", f"svc-{protocol}") in rows


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_exporter_configured_by_standard_env_vars(
    collector: RunningCollector, protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = f"http://{collector.grpc_endpoint}" if protocol == "grpc" else collector.http_url
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
    trace_id, count = emit_trace(make_exporter(protocol), "svc-env")
    assert collector.sql("SELECT count(*) FROM spans WHERE trace_id = ?", [trace_id]) == [(count,)]


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_exporter_result_is_success_only_after_commit(
    collector: RunningCollector, protocol: str
) -> None:
    """export() returning SUCCESS means the spans are already in the database."""
    provider = TracerProvider()
    spans = []

    class Capture(SpanExporter):
        def export(self, batch):  # type: ignore[no-untyped-def]
            spans.extend(batch)
            return SpanExportResult.SUCCESS

    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider.add_span_processor(SimpleSpanProcessor(Capture()))
    with provider.get_tracer("t").start_as_current_span("one"):
        pass
    assert make_exporter(protocol, collector).export(spans) == SpanExportResult.SUCCESS
    trace_id = format(spans[0].context.trace_id, "032x")
    assert collector.sql("SELECT count(*) FROM spans WHERE trace_id = ?", [trace_id]) == [(1,)]
