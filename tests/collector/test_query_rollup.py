"""trace_summary merged batch by batch equals the summary computed from all spans at once,
whatever order and grouping the spans arrive in; a read-only store catches up in an overlay."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import pytest

from collector import rollup
from collector.store import Store
from tests.collector.query_data import BASE, agent_trace, insert_spans, standard_traces

COMPARED = "SELECT * EXCLUDE (has_root) FROM trace_summary ORDER BY trace_id"


def all_spans():
    rows = [r for trace in standard_traces() for r in trace]
    rows += agent_trace(
        20,
        start=BASE + timedelta(hours=6),
        session="sess-7",
        agents=("a", "b", "c"),
        model="o3",
        tool_fails=True,
    )
    return rows


def summary(store: Store) -> list[tuple]:
    return store.cursor().execute(COMPARED).fetchall()


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_merging_batches_in_any_order_equals_one_pass(tmp_path: Path, seed: int) -> None:
    rows = all_spans()
    once = Store(tmp_path / "once.duckdb")
    insert_spans(once, rows, received_at=BASE)
    assert rollup.catch_up(once) == len(rows)
    expected = summary(once)
    assert len(expected) == 7

    rng = random.Random(seed)
    shuffled = rows[:]
    rng.shuffle(shuffled)
    cuts = sorted(rng.sample(range(1, len(rows)), 6))
    batches = [shuffled[a:b] for a, b in zip([0, *cuts], [*cuts, len(rows)])]
    store = Store(tmp_path / "batches.duckdb")
    merged = 0
    for i, batch in enumerate(batches):
        insert_spans(store, batch, received_at=BASE + timedelta(seconds=i))
        if rng.random() < 0.6:  # sometimes several batches wait for one catch-up
            merged += rollup.catch_up(store)
    merged += rollup.catch_up(store)
    assert merged == len(rows)
    assert summary(store) == expected
    assert rollup.catch_up(store) == 0  # nothing twice


def test_summary_values_for_a_trace_without_its_root(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.duckdb")
    rows = agent_trace(30, start=BASE, agents=("solo",))
    insert_spans(store, rows[1:], received_at=BASE)  # the root never arrives
    rollup.catch_up(store)
    (row,) = (
        store.cursor()
        .execute("SELECT root_name, status, span_count, agents FROM traces")
        .fetchall()
    )
    assert row == ("invoke_agent solo", "ok", 3, ["solo"])


def test_read_only_store_catches_up_in_a_temporary_overlay(tmp_path: Path) -> None:
    path = tmp_path / "ro.duckdb"
    store = Store(path)
    insert_spans(store, all_spans()[:8], received_at=BASE)
    rollup.catch_up(store)
    insert_spans(store, all_spans()[8:], received_at=BASE + timedelta(seconds=1))
    store.close()  # stopped before the summary caught up with the second batch

    reader = Store(path, read_only=True)
    cur = reader.cursor()
    assert rollup.catch_up(reader) == 0  # no cursor given: nothing can be written
    assert rollup.catch_up(reader, cur) == len(all_spans()) - 8
    assert cur.execute("SELECT count(*) FROM traces").fetchone()[0] == 7
    other = reader.cursor()  # the overlay belongs to that cursor only; the file is untouched
    assert other.execute("SELECT count(*) FROM traces").fetchone()[0] == 1
    reader.close()


def test_summarizer_thread_keeps_the_summary_current(tmp_path: Path) -> None:
    store = Store(tmp_path / "bg.duckdb")
    summarizer = rollup.Summarizer(store, interval_s=0.05)
    summarizer.start()
    try:
        insert_spans(store, all_spans(), received_at=BASE)
        cur = store.cursor()
        for _ in range(200):
            if cur.execute("SELECT count(*) FROM trace_summary").fetchone()[0] == 7:
                break
            summarizer._stop.wait(0.05)
        assert cur.execute("SELECT count(*) FROM trace_summary").fetchone()[0] == 7
    finally:
        summarizer.stop()
    insert_spans(store, agent_trace(40, start=BASE), received_at=BASE + timedelta(seconds=1))
    assert (
        store.cursor().execute("SELECT count(*) FROM trace_summary").fetchone()[0] == 7
    )  # stopped


def test_refresh_after_pricing_equals_one_pass(tmp_path: Path) -> None:
    rows = all_spans()
    price = "UPDATE spans SET cost_usd = input_tokens * 1e-6 WHERE kind = 'llm' AND model <> 'o3'"
    once = Store(tmp_path / "once.duckdb")
    insert_spans(once, rows, received_at=BASE)
    once.write_connection.execute(price)
    rollup.catch_up(once)

    store = Store(tmp_path / "priced.duckdb")
    insert_spans(store, rows[:30], received_at=BASE)
    rollup.catch_up(store)
    insert_spans(store, rows[30:], received_at=BASE + timedelta(seconds=1))  # not summarized yet
    store.write_connection.execute(price)
    trace_ids = [
        r[0] for r in store.cursor().execute("SELECT DISTINCT trace_id FROM spans").fetchall()
    ]
    rollup.refresh_traces(store, trace_ids)
    rollup.catch_up(store)
    assert summary(store) == summary(once)
    costs = dict(
        store.cursor()
        .execute("SELECT models[1], cost_usd FROM traces WHERE len(models) = 1")
        .fetchall()
    )
    assert costs["o3"] is None and costs["gpt-4o"] > 0  # unpriced stays NULL, never 0


def test_user_sql_catches_up_only_when_it_reads_the_summary(tmp_path: Path) -> None:
    from collector import sql_sandbox

    store = Store(tmp_path / "lazy.duckdb")
    insert_spans(store, all_spans(), received_at=BASE)

    def run(sql: str) -> list:
        return sql_sandbox.run(store, sql, timeout_s=10, max_rows=10).rows

    assert run("SELECT count(*) FROM spans") == [[len(all_spans())]]
    assert run("SELECT count(*) FROM trace_summary_state") == [[0]]  # spans alone: no merge needed
    assert run("SELECT count(*) FROM traces") == [[7]]
    assert run("SELECT count(*) FROM sessions") == [[4]]


def test_a_file_from_before_cost_and_trace_key_is_upgraded(tmp_path: Path) -> None:
    import duckdb

    from collector.store import schema_sql

    old = schema_sql().split("-- Files written before these columns existed", 1)[0]
    old = "\n".join(
        line
        for line in old.splitlines()
        if not line.strip().startswith(("cost_usd DOUBLE,", "trace_key"))
    )
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute(old)
    assert "cost_usd" not in {r[0] for r in con.execute("DESCRIBE spans").fetchall()}
    con.close()

    store = Store(path)
    insert_spans(store, all_spans(), received_at=BASE)
    assert rollup.catch_up(store) == len(all_spans())
    cur = store.cursor()
    assert cur.execute("SELECT count(*), count(cost_usd) FROM traces").fetchone() == (7, 0)
    assert cur.execute("SELECT count(*) FROM trace_summary WHERE trace_key IS NULL").fetchone() == (
        0,
    )
