"""The ClickHouse collector under a full queue: BatchWriter's QueueFull reaches exporters as
503 + Retry-After (HTTP) and UNAVAILABLE (gRPC), and the queued spans are still stored.

The writer contract itself (acknowledge after the insert, QueueFull, grouped and bounded
batches, close() stores everything) runs on both stores in tests/collector/test_writer_contract.py.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from google.rpc import status_pb2

from tests.collector.otlp_payloads import spans_request
from tests.collector.test_exactly_once import send
from tests.conftest import RunningCollector


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_full_queue_answers_unavailable(
    make_collector: Callable[..., RunningCollector], chdb_url: str, protocol: str
) -> None:
    collector = make_collector(store=chdb_url, queue_max_spans=10, batch_max_spans=10)
    writer = collector.server.writer
    release = threading.Event()
    blocked = writer.execute(lambda _store: release.wait(30))
    try:
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(send, collector, spans_request(8), protocol)
            while writer.queue_depth < 8:
                threading.Event().wait(0.01)
            if protocol == "grpc":
                with pytest.raises(grpc.RpcError) as refused:
                    send(collector, spans_request(8), "grpc")
                assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            else:
                import httpx

                response = httpx.post(
                    f"{collector.http_url}/v1/traces", content=spans_request(8).SerializeToString(),
                    headers={"Content-Type": "application/x-protobuf"}, timeout=30,
                )
                assert response.status_code == 503 and response.headers["Retry-After"] == "1"
                assert "queue is full" in status_pb2.Status.FromString(response.content).message
            release.set()
            first.result(30)
    finally:
        release.set()
        blocked.result(30)
    assert collector.server.store.rows("SELECT count() FROM spans") == [(8,)]
