"""Demo traffic: the workflows produce the variety the dashboard needs, at the asked rate."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from opentelemetry.trace import StatusCode

from sdk_shim import semconv as sc
from sdk_shim.demo.traffic import generate
from tests.sdk_shim.conftest import Captured

ROOT = Path(__file__).resolve().parents[2]


def test_workflows_cover_agents_models_errors_and_sessions(
    captured: Captured, tmp_path: Path
) -> None:
    stats = asyncio.run(
        generate(6000, duration_s=3, seed=7, latency_scale=0, session_db=tmp_path / "s.db")
    )
    assert stats.traces >= 100
    spans = captured.spans
    roots = [s for s in spans if s.parent is None]
    assert {s.name for s in roots} == {"customer-service", "content-pipeline", "order-workflow"}
    types = Counter(s.attributes.get(sc.SPAN_TYPE) for s in spans)
    assert {"trace", "agent", "generation", "function", "handoff", "guardrail"} <= set(types)
    models = {s.attributes.get(sc.REQUEST_MODEL) for s in spans} - {None}
    assert {
        "gpt-4.1",
        "gpt-4.1-mini",
        "gpt-4o",
        "o3-mini",
        "claude-sonnet-4",
        "claude-3-5-haiku",
    } <= models
    agents = {
        s.attributes.get(sc.AGENT_NAME) for s in spans if s.attributes.get(sc.SPAN_TYPE) == "agent"
    }
    assert {
        "triage",
        "order_specialist",
        "tech_support",
        "researcher",
        "writer",
        "editor",
        "publisher",
        "validation",
        "payment",
        "inventory",
    } <= agents
    failed_tools = {
        s.attributes[sc.TOOL_NAME]
        for s in spans
        if s.attributes.get(sc.SPAN_TYPE) == "function" and s.status.status_code is StatusCode.ERROR
    }
    assert len(failed_tools) >= 3
    assert any(s.attributes.get(sc.GUARDRAIL_TRIGGERED) for s in spans)
    cached = [s.attributes.get(sc.USAGE_CACHE_READ_INPUT_TOKENS, 0) for s in spans]
    assert sum(1 for c in cached if c > 0) > 10
    # multi-turn conversations: several traces share one group id
    per_group = Counter(
        s.attributes[sc.CONVERSATION_ID] for s in roots if s.name == "customer-service"
    )
    assert max(per_group.values()) >= 2
    assert all(sc.CONVERSATION_ID in s.attributes for s in spans)
    assert stats.outcomes["ok"] > 0 and stats.dropped_spans == 0


def test_rate_is_respected(captured: Captured) -> None:
    stats = asyncio.run(generate(120, duration_s=3, seed=3, latency_scale=0))
    assert 2 <= stats.traces <= 14  # 6 expected: Poisson arrivals, first one at once


def test_demo_command_with_collector_down_exits_cleanly() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "collector.cli",
            "demo",
            "--rate",
            "600",
            "--duration",
            "2",
            "--latency-scale",
            "0",
            "--endpoint",
            f"http://127.0.0.1:{port}",
            "--seed",
            "1",
        ],
        cwd=ROOT,
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "spans not delivered" in proc.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "collector.cli", "demo", "--rate", "0"],
        cwd=ROOT,
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
    )
    assert (
        bad.returncode == 2
        and bad.stderr.strip() == "tracehouse demo: error: --rate must be above 0 (got 0.0)"
    )


def test_run_demo_in_a_thread_stops_on_event(tmp_path: Path) -> None:
    import threading

    import sdk_shim
    from sdk_shim.demo import run_demo

    stop = threading.Event()
    result: list = []
    out = tmp_path / "demo.jsonl"
    thread = threading.Thread(
        target=lambda: result.append(
            run_demo(
                endpoint=f"http://127.0.0.1:{_closed_port()}",
                rate_per_min=1200,
                stop=stop,
                latency_scale=0,
                seed=2,
            )
        )
    )
    thread.start()
    try:
        # watch the spans through a file processor added to the demo's own provider
        for _ in range(200):
            handle = sdk_shim.current()
            if handle is not None:
                handle.tracer_provider.add_span_processor(sdk_shim.JsonlFileProcessor(out))
                break
            stop.wait(0.01)
        stop.wait(1.5)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not thread.is_alive()
    (stats,) = result
    assert stats.traces >= 2 and stats.dropped_spans > 0
    assert out.exists() and out.read_text().count("\n") > 5


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_demo_defaults_to_the_configured_local_collector(monkeypatch: pytest.MonkeyPatch) -> None:
    from sdk_shim.demo.cli import _local_collector

    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TRACEHOUSE_GRPC_PORT", "14317")
    monkeypatch.setenv("TRACEHOUSE_HTTP_PORT", "14318")
    monkeypatch.setenv("TRACEHOUSE_HOST", "0.0.0.0")
    assert _local_collector(None) == "http://127.0.0.1:14317"
    assert _local_collector("http") == "http://127.0.0.1:14318"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://elsewhere:4317")
    assert _local_collector(None) is None  # the standard variable wins
