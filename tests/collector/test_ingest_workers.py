"""TRACEHOUSE_INGEST_WORKERS > 0: requests are prepared in worker processes, the collector
process keeps the database; storage, refusals, attribution and shutdown behave as in-process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

from tests.collector.otlp_payloads import (
    json_request,
    json_span,
    make_request,
    make_span,
    new_span_id,
    new_trace_id,
    spans_request,
)
from tests.conftest import REPO_ROOT, RunningCollector

METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
AGENT = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"}
LLM = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}


@pytest.fixture
def pooled(make_collector) -> RunningCollector:  # type: ignore[no-untyped-def]
    return make_collector(ingest_workers=1)


@pytest.fixture
def channel(pooled: RunningCollector) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(pooled.grpc_endpoint) as ch:
        yield ch


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purpose (its parent has not reaped it yet).
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ")[1][0] != "Z"


def _wait_gone(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        alive = [pid for pid in pids if _alive(pid)]
        if not alive:
            return []
        time.sleep(0.1)
    return alive


def test_requests_are_stored_refused_and_deduplicated(
    pooled: RunningCollector, channel: grpc.Channel
) -> None:
    stub = TraceServiceStub(channel)
    request = spans_request(6, service="pooled")
    assert stub.Export(request, timeout=30).partial_success.rejected_spans == 0
    stub.Export(request, timeout=30)  # re-sent: stored once
    assert pooled.sql("SELECT count(*) FROM spans WHERE service_name = 'pooled'") == [(6,)]

    trace = new_trace_id()
    spans = [make_span(trace, new_span_id(), "good"), make_span(trace, b"\x00" * 8, "zero-id")]
    response = stub.Export(make_request(spans), timeout=30)
    assert response.partial_success.rejected_spans == 1
    assert "zero-id" in response.partial_success.error_message
    assert pooled.sql("SELECT name FROM spans WHERE trace_id = ?", [trace.hex()]) == [("good",)]

    with pytest.raises(grpc.RpcError) as excinfo:
        channel.unary_unary(METHOD)(b"\x0a\xff\xff\xff\xff\x0f garbage", timeout=30)
    assert excinfo.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid OTLP protobuf" in excinfo.value.details()

    trace_hex, span_hex = "5b8efff798038103d269b633813fc60d", "eee19b7ec3c1b175"
    response_http = httpx.post(
        f"{pooled.http_url}/v1/traces",
        content=json_request([json_span(trace_hex, span_hex, "json-span")]),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert response_http.status_code == 200, response_http.text
    assert pooled.sql("SELECT name FROM spans WHERE trace_id = ?", [trace_hex]) == [("json-span",)]


def test_agent_attribution_across_requests(pooled: RunningCollector, channel: grpc.Channel) -> None:
    """The child ends (and arrives) first; its agent, in a later request, fills it in."""
    stub = TraceServiceStub(channel)
    trace, agent, child = new_trace_id(), new_span_id(), new_span_id()
    stub.Export(make_request([make_span(trace, child, "llm", parent=agent, attributes=LLM)]), timeout=30)
    assert pooled.sql("SELECT agent_name FROM spans WHERE trace_id = ?", [trace.hex()]) == [(None,)]
    stub.Export(make_request([make_span(trace, agent, "agent", attributes=AGENT)]), timeout=30)
    rows = pooled.sql("SELECT name, agent_name FROM spans WHERE trace_id = ? ORDER BY name", [trace.hex()])
    assert rows == [("agent", "planner"), ("llm", "planner")]


def test_workers_stop_with_the_collector(pooled: RunningCollector) -> None:
    pool = pooled.server.pipeline._pool  # noqa: SLF001 - which processes to watch
    assert pool is not None
    deadline = time.monotonic() + 30
    while not pool._processes and time.monotonic() < deadline:  # noqa: SLF001
        time.sleep(0.05)
    pids = list(pool._processes)  # noqa: SLF001
    assert len(pids) == 1
    pooled.stop()
    assert _wait_gone(pids, 10) == []


_ORPHAN_SCRIPT = """
import sys, time
from collector.ingest_pool import create_pool
pool = create_pool(1)
while not pool._processes:
    time.sleep(0.05)
print(*pool._processes, flush=True)
time.sleep(60)
"""


def test_workers_exit_when_the_collector_is_killed() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN_SCRIPT], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        pids = [int(pid) for pid in parent.stdout.readline().split()]
        assert len(pids) == 1 and _alive(pids[0])
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
    assert _wait_gone(pids, 10) == []
