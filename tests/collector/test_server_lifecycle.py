"""CollectorServer start/stop in-process: stop waits for in-flight requests and their commit."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import duckdb
import httpx

from tests.collector.otlp_payloads import spans_request


def test_stop_commits_and_answers_in_flight_requests(make_collector) -> None:  # type: ignore[no-untyped-def]
    collector = make_collector()
    writer = collector.server.writer
    release = threading.Event()
    writer.execute(lambda con: release.wait(30))  # the next request's spans wait behind this
    request = spans_request(5)
    with ThreadPoolExecutor(2) as pool:
        in_flight = pool.submit(
            httpx.post,
            f"{collector.http_url}/v1/traces",
            content=request.SerializeToString(),
            headers={"Content-Type": "application/x-protobuf"},
            timeout=60,
        )
        while writer.queue_depth < 5:
            time.sleep(0.01)
        stopping = pool.submit(collector.stop)
        time.sleep(0.2)
        assert not stopping.done()  # waiting for the in-flight request
        release.set()
        assert in_flight.result(60).status_code == 200
        stopping.result(60)
    assert not writer.alive
    con = duckdb.connect(str(collector.db_path), read_only=True)  # closed cleanly: reopens at once
    try:
        assert con.execute("SELECT count(*) FROM spans").fetchone() == (5,)
    finally:
        con.close()


def test_ports_are_ephemeral_and_reported(make_collector) -> None:  # type: ignore[no-untyped-def]
    first, second = make_collector(), make_collector()
    ports = {
        first.server.grpc_port,
        first.server.http_port,
        second.server.grpc_port,
        second.server.http_port,
    }
    assert len(ports) == 4 and 0 not in ports
    assert httpx.get(f"{second.http_url}/healthz", timeout=10).status_code == 200
