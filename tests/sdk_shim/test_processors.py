"""JSONL and console processors, redaction, and the behaviour with the collector down."""

from __future__ import annotations

import io
import json
import logging
import socket
import time
from pathlib import Path

import pytest

import sdk_shim
from sdk_shim import semconv as sc


def _emit() -> None:
    with sdk_shim.trace("wf", group_id="g"):
        with sdk_shim.generation_span(
            "gpt-4o", "openai", input=[{"role": "user", "content": "secret plan"}]
        ) as gen:
            gen.set_usage(sdk_shim.Usage(100, 20, 64))
            gen.set_output("the answer")
        with sdk_shim.function_span("search", arguments={"q": "secret"}) as tool:
            tool.set_result("secret result")


@pytest.mark.parametrize("redact", [False, True])
def test_jsonl_file_processor_writes_every_span(tmp_path: Path, redact: bool) -> None:
    path = tmp_path / "spans" / "trace.jsonl"
    handle = sdk_shim.configure(
        otlp=False, processors=[sdk_shim.JsonlFileProcessor(path, redact_sensitive=redact)]
    )
    _emit()
    handle.shutdown()
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert sorted(r["name"] for r in rows) == ["chat gpt-4o", "execute_tool search", "wf"]
    root = next(r for r in rows if r["name"] == "wf")
    assert all(r["trace_id"] == root["trace_id"] for r in rows)
    tool = next(r for r in rows if r["name"] == "execute_tool search")
    assert tool["parent_span_id"] == root["span_id"]
    assert tool["attributes"][sc.CONVERSATION_ID] == "g"
    text = path.read_text()
    assert ("secret" in text) is not redact
    if redact:
        assert tool["attributes"][sc.TOOL_CALL_ARGUMENTS] == sc.REDACTED
        llm = next(r for r in rows if r["name"] == "chat gpt-4o")
        assert llm["attributes"][sc.USAGE_CACHE_READ_INPUT_TOKENS] == 64


def test_include_sensitive_data_false_reaches_file_and_console(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    stream = io.StringIO()
    handle = sdk_shim.configure(
        otlp=False,
        include_sensitive_data=False,
        processors=[sdk_shim.JsonlFileProcessor(path), sdk_shim.ConsoleProcessor(stream)],
    )
    _emit()
    handle.shutdown()
    assert "secret" not in path.read_text()
    assert "secret" not in stream.getvalue()
    assert "execute_tool search" in stream.getvalue()
    assert "tokens in=100 out=20 cached=64" in stream.getvalue()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_unreachable_collector_counts_drops_logs_once_and_never_raises(
    protocol: str, caplog: pytest.LogCaptureFixture
) -> None:
    port = _closed_port()
    handle = sdk_shim.configure(
        endpoint=f"http://127.0.0.1:{port}",
        protocol=protocol,
        export_timeout_s=0.5,
        schedule_delay_ms=50,
    )
    with caplog.at_level(logging.WARNING, logger="sdk_shim"):
        for _ in range(3):
            _emit()
            handle.force_flush(timeout_s=2)
        deadline = time.monotonic() + 10
        while handle.dropped_spans < 9 and time.monotonic() < deadline:
            time.sleep(0.05)
        handle.shutdown(timeout_s=1)
    assert handle.dropped_spans == 9
    warnings = [r for r in caplog.records if r.name == "sdk_shim"]
    assert len(warnings) == 1 and "not delivered" in warnings[0].getMessage()


def test_configure_reads_standard_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    handle = sdk_shim.configure()
    try:
        assert handle.endpoint == "http://127.0.0.1:9/v1/traces"
        assert handle.tracer_provider.resource.attributes["service.name"] == "from-env"
    finally:
        handle.shutdown(timeout_s=0.1)
    with pytest.raises(ValueError, match="protocol"):
        sdk_shim.configure(protocol="carrier-pigeon")


EXIT_SCRIPT = """
import sys, sdk_shim
sdk_shim.configure(endpoint=sys.argv[2], export_timeout_s=1,
                   processors=[sdk_shim.JsonlFileProcessor(sys.argv[1])])
with sdk_shim.trace("at-exit", group_id="g"):
    with sdk_shim.function_span("tool"):
        pass
print("done")
"""


def test_spans_are_flushed_at_interpreter_exit_even_with_collector_down(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "exit.jsonl"
    proc = subprocess.run(
        [sys.executable, "-c", EXIT_SCRIPT, str(path), f"http://127.0.0.1:{_closed_port()}"],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "done", proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(json.loads(line)["name"] for line in path.read_text().splitlines()) == [
        "at-exit",
        "execute_tool tool",
    ]


def test_headers_from_arguments_and_env_reach_the_collector(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """OTLP/HTTP to a local server that records what arrives (protobuf body, our headers)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    received: list[tuple[str, dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, dict(self.headers.items()), body))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=acme,x-from-env=1")
    try:
        handle = sdk_shim.configure(
            endpoint=f"http://127.0.0.1:{server.server_address[1]}",
            protocol="http",
            headers={"authorization": "Bearer t0k3n"},
            service_name="hdr",
        )
        _emit()
        assert handle.force_flush()
        handle.shutdown()
    finally:
        server.shutdown()
        server.server_close()
    assert handle.dropped_spans == 0
    path, headers, body = received[0]
    lowered = {k.lower(): v for k, v in headers.items()}
    assert path == "/v1/traces"
    assert lowered["authorization"] == "Bearer t0k3n" and lowered["x-tenant"] == "acme"
    request = ExportTraceServiceRequest.FromString(body)
    names = {s.name for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans}
    assert names == {"wf", "chat gpt-4o", "execute_tool search"}
    scope = request.resource_spans[0].scope_spans[0].scope
    assert scope.name == "tracehouse.sdk_shim"
