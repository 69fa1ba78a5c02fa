"""The ClickHouse writer keeps BatchWriter's contract: a future resolves after the insert
returned, a full queue is refused at once (503 / UNAVAILABLE to exporters), batches are bounded
and grouped, close() inserts everything queued."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from google.rpc import status_pb2

from collector.clickhouse.store import ClickHouseStore
from collector.clickhouse.writer import ClickHouseWriter
from collector.settings import Settings
from collector.writer import QueueFull, WriterClosed
from tests.collector.otlp_payloads import spans_request
from tests.collector.rows import span_row
from tests.collector.test_exactly_once import send
from tests.conftest import RunningCollector


def make_writer(store: ClickHouseStore, **overrides: object) -> ClickHouseWriter:
    return ClickHouseWriter(store, Settings(**{"batch_interval_ms": 5.0, **overrides}))  # type: ignore[arg-type]


def count(store: ClickHouseStore) -> int:
    return int(store.rows("SELECT count() FROM spans")[0][0])


def test_future_resolves_after_the_insert(chdb_url: str) -> None:
    store = ClickHouseStore(chdb_url)
    writer = make_writer(store)
    assert writer.submit([span_row() for _ in range(5)]).result(10) == 5
    assert count(store) == 5  # readable the moment the future resolves
    assert store.rows("SELECT countIf(received_at > '2020-01-01') FROM spans") == [(5,)]
    writer.close()


def test_queue_full_is_raised_at_once(chdb_url: str) -> None:
    store = ClickHouseStore(chdb_url)
    writer = make_writer(store, queue_max_spans=10, batch_max_spans=10)
    release = threading.Event()
    blocked = writer.execute(lambda _store: release.wait(10))  # holds the writer thread
    pending = writer.submit([span_row() for _ in range(6)])
    with pytest.raises(QueueFull):
        writer.submit([span_row() for _ in range(5)])
    assert writer.queue_depth == 6
    release.set()
    assert pending.result(10) == 6 and blocked.result(10) is True
    writer.close()
    assert count(store) == 6


def test_close_inserts_everything_queued(chdb_url: str) -> None:
    store = ClickHouseStore(chdb_url)
    writer = make_writer(store, batch_max_spans=100, queue_max_spans=10_000)
    futures = [writer.submit([span_row() for _ in range(50)]) for _ in range(40)]
    writer.close()
    assert sum(f.result(0) for f in futures) == 2000
    assert count(store) == 2000
    with pytest.raises(WriterClosed):
        writer.submit([span_row()])


def test_batches_are_grouped_and_bounded(chdb_url: str) -> None:
    store = ClickHouseStore(chdb_url)
    seen: list[int] = []
    writer = ClickHouseWriter(store, Settings(batch_max_spans=100, batch_interval_ms=5.0), observer=lambda s, n: seen.append(n))
    release = threading.Event()
    writer.execute(lambda _store: release.wait(10))
    futures = [writer.submit([span_row() for _ in range(30)]) for _ in range(10)]
    release.set()
    assert sum(f.result(10) for f in futures) == 300
    writer.close()
    assert max(seen) <= 100 and sum(seen) == 300 and len(seen) < 10
    assert store.rows("SELECT uniqExact(received_at) FROM spans")[0][0] == len(seen)  # one insert per batch


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
