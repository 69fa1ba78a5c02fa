"""The collector as a process: SIGTERM flushes, kill -9 loses nothing acknowledged, one owner per file."""

from __future__ import annotations

import signal
import socket
import threading
import time
from pathlib import Path

import duckdb
import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

from tests.collector.otlp_payloads import spans_request
from tests.conftest import CollectorProcess

SENDERS = 4
SPANS_PER_REQUEST = 50


def keys_of(request: ExportTraceServiceRequest) -> set[tuple[str, str]]:
    return {
        (span.trace_id.hex(), span.span_id.hex())
        for rs in request.resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
    }


def stored_counts(db_path: Path) -> dict[tuple[str, str], int]:
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        rows = con.execute("SELECT trace_id, span_id, count(*) FROM spans GROUP BY ALL").fetchall()
    finally:
        con.close()
    return {(t, s): n for t, s, n in rows}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stop_signal_flushes_and_the_database_reopens_cleanly(
    collector_process, tmp_path: Path, sig: int
) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "term.duckdb"
    child: CollectorProcess = collector_process(db)
    sent: set[tuple[str, str]] = set()
    for _ in range(5):
        request = spans_request(20)
        response = httpx.post(
            f"{child.http_url}/v1/traces",
            content=request.SerializeToString(),
            headers={"Content-Type": "application/x-protobuf"},
            timeout=30,
        )
        assert response.status_code == 200
        sent |= keys_of(request)
    child.process.send_signal(sig)
    assert child.process.wait(60) == 0
    output = child.wait_output()
    assert "stopped (100 spans stored)" in output, output
    assert "Traceback" not in output
    assert not Path(f"{db}.wal").exists()  # checkpointed at close
    counts = stored_counts(db)
    assert set(counts) == sent and set(counts.values()) == {1}


def test_second_collector_on_a_locked_file_exits_with_one_clear_line(
    collector_process, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "locked.duckdb"
    first: CollectorProcess = collector_process(db)
    second: CollectorProcess = collector_process(db, wait=False)
    assert second.process.wait(60) == 2
    lines = [line for line in second.wait_output().splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert (
        lines[0].startswith("tracehouse collector: error:")
        and "in use by another process" in lines[0]
    )
    # The first one is unaffected.
    assert httpx.get(f"{first.http_url}/healthz", timeout=10).status_code == 200


def test_kill_9_under_load_loses_no_acknowledged_span(collector_process, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "crash.duckdb"
    child: CollectorProcess = collector_process(db)
    acknowledged: list[ExportTraceServiceRequest] = []
    lock = threading.Lock()
    stop = threading.Event()

    def sender() -> None:
        with grpc.insecure_channel(child.grpc_endpoint) as channel:
            stub = TraceServiceStub(channel)
            while not stop.is_set():
                request = spans_request(SPANS_PER_REQUEST)
                try:
                    stub.Export(request, timeout=5)
                except grpc.RpcError:
                    if stop.is_set():
                        return
                    time.sleep(0.01)  # e.g. UNAVAILABLE once the collector is gone
                    continue
                with lock:
                    acknowledged.append(request)

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(SENDERS)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    child.kill()  # SIGKILL in the middle of the load
    stop.set()
    for thread in threads:
        thread.join(30)
    acked = set().union(*(keys_of(r) for r in acknowledged))
    assert len(acked) >= 40 * SPANS_PER_REQUEST

    # Restart on the same file; exporters retry what they sent: still stored once.
    restarted: CollectorProcess = collector_process(db)
    with grpc.insecure_channel(restarted.grpc_endpoint) as channel:
        for request in acknowledged[:5]:
            TraceServiceStub(channel).Export(request, timeout=30)
    assert restarted.terminate() == 0

    counts = stored_counts(db)
    missing = acked - set(counts)
    assert not missing, f"{len(missing)} acknowledged spans lost"
    assert max(counts.values()) == 1


def test_port_in_use_is_one_clear_line(collector_process, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        child: CollectorProcess = collector_process(
            tmp_path / "port.duckdb", wait=False, HTTP_PORT=str(port)
        )
        assert child.process.wait(60) == 2
        lines = [line for line in child.wait_output().splitlines() if line.strip()]
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0], lines
