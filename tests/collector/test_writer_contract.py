"""BatchWriter's contract, on both stores: a future resolves after the spans are stored and
readable, a full queue is refused at once (503 / UNAVAILABLE to exporters), batches are bounded
and grouped (one commit or insert per batch), close() stores everything queued.

Each test runs on a DuckDB file in tmp_path (collector.writer.BatchWriter) and on ClickHouse
through clickhouse-connect on embedded chdb (collector.clickhouse.writer.ClickHouseWriter).
What only one store promises stays with that store: tests/collector/test_writer.py (writer-side
dedup, transactions, received_at across restarts) and tests/clickhouse/test_writer.py.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from collector.settings import Settings
from collector.writer import BatchWriter, QueueFull, WriterClosed
from tests.collector.rows import span_row

Observer = Callable[[float, int], None]


@dataclass
class StoreUnderTest:
    """One store and how to build its writer and count its spans (the only per-store parts)."""

    store: Any
    writer_class: type[BatchWriter]
    count_sql: Callable[[str], int]

    def writer(self, *, observer: Observer | None = None, **overrides: object) -> BatchWriter:
        settings = Settings(**{"batch_interval_ms": 5.0, **overrides})  # type: ignore[arg-type]
        return self.writer_class(self.store, settings, observer=observer)

    def count(self, where: str = "true") -> int:
        """Spans visible to a reader other than the writer, through the ``spans`` view."""
        return self.count_sql(f"SELECT count(*) FROM spans WHERE {where}")


def _duckdb(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[StoreUnderTest]:
    from collector.store import Store

    store = Store(tmp_path / "writer.duckdb")

    def count_sql(sql: str) -> int:
        cur = store.cursor()
        try:
            return int(cur.execute(sql).fetchone()[0])
        finally:
            cur.close()

    yield StoreUnderTest(store, BatchWriter, count_sql)
    store.close()


def _clickhouse(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[StoreUnderTest]:
    pytest.importorskip("chdb", reason="the ClickHouse store runs on chdb here (extra 'chdb')")
    from collector.clickhouse.store import ClickHouseStore
    from collector.clickhouse.writer import ClickHouseWriter

    store = ClickHouseStore(request.getfixturevalue("chdb_url"))  # the session's one chdb dir
    yield StoreUnderTest(store, ClickHouseWriter, lambda sql: int(store.rows(sql)[0][0]))
    store.close()


@pytest.fixture(params=["duckdb", "clickhouse"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreUnderTest]:
    opener = _duckdb if request.param == "duckdb" else _clickhouse
    yield from opener(tmp_path, request)


def test_future_resolves_after_the_spans_are_stored(backend: StoreUnderTest) -> None:
    writer = backend.writer()
    assert writer.submit([span_row() for _ in range(5)]).result(10) == 5
    # Readable by another connection the moment the future resolves, stamped on the way in.
    assert backend.count() == 5
    assert backend.count("received_at > '2020-01-01'") == 5
    writer.close()


def test_queue_full_is_raised_at_once(backend: StoreUnderTest) -> None:
    writer = backend.writer(queue_max_spans=10, batch_max_spans=10)
    release = threading.Event()
    blocked = writer.execute(lambda _con: release.wait(10))  # holds the writer thread
    pending = writer.submit([span_row() for _ in range(6)])
    with pytest.raises(QueueFull):
        writer.submit([span_row() for _ in range(5)])
    assert writer.queue_depth == 6
    release.set()
    assert pending.result(10) == 6 and blocked.result(10) is True
    writer.close()
    assert backend.count() == 6  # the refused request stored nothing


def test_close_stores_everything_queued(backend: StoreUnderTest) -> None:
    writer = backend.writer(batch_max_spans=100, queue_max_spans=10_000)
    futures = [writer.submit([span_row() for _ in range(50)]) for _ in range(40)]
    writer.close()
    assert sum(f.result(0) for f in futures) == 2000
    assert backend.count() == 2000
    with pytest.raises(WriterClosed):
        writer.submit([span_row()])


def test_batches_are_grouped_and_bounded(backend: StoreUnderTest) -> None:
    seen: list[int] = []
    writer = backend.writer(batch_max_spans=100, observer=lambda s, n: seen.append(n))
    release = threading.Event()
    writer.execute(lambda _con: release.wait(10))
    futures = [writer.submit([span_row() for _ in range(30)]) for _ in range(10)]
    release.set()
    assert sum(f.result(10) for f in futures) == 300
    writer.close()
    assert max(seen) <= 100 and sum(seen) == 300 and len(seen) < 10  # grouped, but bounded
    # One commit (DuckDB) or insert (ClickHouse) per batch, each with its own received_at.
    assert backend.count_sql("SELECT count(DISTINCT received_at) FROM spans") == len(seen)
