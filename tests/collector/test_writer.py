"""BatchWriter on a real DuckDB file: what only the DuckDB writer promises (dedup in the writer,
one transaction per batch or task, failure isolation, cancellation, received_at across restarts).

The contract both stores keep runs in tests/collector/test_writer_contract.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from collector.agent_resolver import AgentResolver
from collector.prepare import prepare_request
from collector.settings import Settings
from collector.store import Store
from collector.writer import BatchWriter
from tests.collector.otlp_payloads import make_request, make_span, new_span_id, new_trace_id
from tests.collector.rows import span_row


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "writer.duckdb")
    yield s
    s.close()


def make_writer(store: Store, **overrides: object) -> BatchWriter:
    settings = Settings(**{"batch_interval_ms": 5.0, **overrides})  # type: ignore[arg-type]
    return BatchWriter(store, settings)


def count(store: Store, where: str = "true", params: list[object] | None = None) -> int:
    cur = store.cursor()
    try:
        return cur.execute(f"SELECT count(*) FROM spans WHERE {where}", params or []).fetchone()[0]
    finally:
        cur.close()


def test_duplicates_are_stored_once_within_and_across_batches(store: Store) -> None:
    writer = make_writer(store)
    a, b = span_row(), span_row()
    assert writer.submit([a, b, a]).result(10) == 2  # repeated within one request
    assert writer.submit([a, b]).result(10) == 0  # re-sent later
    # Two requests that land in the same group commit, both carrying c.
    c = span_row()
    first, second = writer.submit([c]), writer.submit([c, span_row()])
    assert first.result(10) + second.result(10) == 2
    assert count(store) == 4
    assert writer.stats.duplicates == 4
    writer.close()


def test_a_failing_request_does_not_fail_others_in_its_batch(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    writer = make_writer(store, batch_interval_ms=200.0)
    release = threading.Event()
    writer.execute(lambda con: release.wait(10))  # lets both requests queue into one batch
    good = writer.submit([span_row(name="good")])
    bad = writer.submit([span_row(name=None)])  # violates NOT NULL: the commit fails
    release.set()
    assert good.result(10) == 1
    with pytest.raises(RuntimeError, match="not stored"):
        bad.result(10)
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "\n" not in errors[0]  # one line, for the bad request only
    assert writer.stats.failed == 1 and writer.queue_depth == 0
    # The writer keeps going.
    assert writer.submit([span_row()]).result(10) == 1
    assert count(store) == 2
    writer.close()


def test_execute_runs_in_its_own_transaction(store: Store) -> None:
    writer = make_writer(store)

    def insert_then_fail(con: duckdb.DuckDBPyConnection) -> None:
        con.execute("INSERT INTO schema_version (version) VALUES (99)")
        raise ValueError("job failed")

    with pytest.raises(ValueError):
        writer.execute(insert_then_fail).result(10)
    cur = store.cursor()
    assert cur.execute("SELECT count(*) FROM schema_version WHERE version = 99").fetchone() == (0,)
    result = writer.execute(
        lambda con: con.execute("INSERT INTO schema_version (version) VALUES (98)").fetchall()
    )
    result.result(10)
    assert cur.execute("SELECT count(*) FROM schema_version WHERE version = 98").fetchone() == (1,)
    cur.close()
    writer.close()


def test_a_cancelled_submission_is_dropped_and_the_writer_goes_on(store: Store) -> None:
    writer = make_writer(store)
    release = threading.Event()
    writer.execute(lambda con: release.wait(10))
    gone = writer.submit([span_row()])
    assert gone.cancel()  # e.g. the gRPC client's deadline passed
    kept = writer.submit([span_row()])
    release.set()
    assert kept.result(10) == 1
    assert writer.queue_depth == 0 and count(store) == 1
    writer.close()


def test_received_at_increases_in_commit_order_even_if_the_clock_went_back(store: Store) -> None:
    future = datetime(2100, 1, 1)  # stored by a run whose clock was ahead of ours
    writer = make_writer(store)
    writer.submit([span_row()]).result(10)
    writer.execute(lambda con: con.execute("UPDATE spans SET received_at = ?", [future])).result(10)
    writer.close()
    writer = make_writer(store)  # a restart: the new writer starts after the newest stamp
    for _ in range(3):
        writer.submit([span_row()]).result(10)
    writer.close()
    cur = store.cursor()
    stamps = [r[0] for r in cur.execute("SELECT received_at FROM spans ORDER BY rowid").fetchall()]
    cur.close()
    assert stamps[0] == future and stamps == sorted(stamps) and len(set(stamps)) == 4


def test_a_batch_of_several_requests_dedups_insert_and_attributes_in_one_transaction(store: Store) -> None:
    """Stored spans are found in whichever request of a group commit they sit, over the batch's
    whole range of start times, and the agent update of a row stored earlier commits with it."""
    writer = BatchWriter(store, Settings(batch_interval_ms=200.0), resolver=AgentResolver())
    trace = "a" * 32
    early = span_row(trace, offset_ms=-3_600_000)  # an hour before the others
    late = span_row(trace, offset_ms=3_600_000)
    child = span_row(trace, parent="agent0000000000", kind="llm")
    writer.submit([early, late, child]).result(10)
    release = threading.Event()
    writer.execute(lambda con: release.wait(10))  # the next three requests share one batch
    fresh = [span_row(trace, offset_ms=i) for i in range(3)]
    agent = span_row(trace, "agent0000000000", kind="agent", agent="planner")
    futures = [writer.submit([fresh[0], early]), writer.submit([fresh[1]]), writer.submit([late, fresh[2], agent])]
    release.set()
    assert [f.result(10) for f in futures] == [1, 1, 2]
    assert writer.stats.batches == 2 and writer.stats.duplicates == 2 and writer.stats.updates == 1
    cur = store.cursor()
    rows = cur.execute("SELECT span_id, agent_name FROM spans WHERE span_id = ?", [child.span_id]).fetchall()
    cur.close()
    assert rows == [(child.span_id, "planner")]  # the child stored first got its agent's name
    assert count(store) == 7
    writer.close()


def test_requests_of_long_prompts_fit_the_default_memory_limit(tmp_path: Path) -> None:
    """Four 15 MB requests (150 spans with 100 KB of prompt each) at the 64MB default: as one
    INSERT a request ran out of DuckDB's memory, and four in one transaction failed at COMMIT;
    the writer bounds a batch's bytes and inserts large ones in slices, so all are stored, and
    read back whole at the same limit."""
    settings = Settings()
    assert settings.duckdb_memory_limit == "64MB"
    store = Store(tmp_path / "big.duckdb", memory_limit=settings.duckdb_memory_limit)
    tables = []
    for _ in range(4):
        trace = new_trace_id()
        spans = [make_span(trace, new_span_id(), "llm", attributes={"input.value": "p" * 100_000}) for _ in range(150)]
        table, rejected = prepare_request(make_request(spans).SerializeToString(), "protobuf",
                                          settings.max_payload_bytes, None, None)  # fmt: skip
        assert not rejected and table.nbytes > 14_000_000
        tables.append(table)
    writer = make_writer(store)
    try:
        assert [f.result(60) for f in [writer.submit(t) for t in tables]] == [150] * 4
    finally:
        writer.close()
    store.close()
    # Read back at the limit too: a scan decompresses a row group's vector of texts whole, and
    # these spans went in row groups of their own of at most 8 MB (HEAVY_SPAN_BYTES); in one of
    # 450 rows, as DuckDB's own checkpoints cut them, the scan asked for 64 MiB.
    reopened = Store(tmp_path / "big.duckdb", memory_limit=settings.duckdb_memory_limit)
    assert count(reopened) == 600
    assert count(reopened, "length(attributes::VARCHAR) > 100000") == 600  # the prompts whole
    cur = reopened.cursor()
    assert len(cur.execute("SELECT * FROM spans").fetchall()) == 600
    cur.close()
    reopened.close()
