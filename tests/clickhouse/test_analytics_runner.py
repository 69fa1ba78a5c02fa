"""The analytics jobs on ClickHouse (chdb) give the rows they give on DuckDB, for the same spans."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from analytics import forest
from analytics.clickhouse_runner import ClickHouseAnalyticsRunner
from analytics.clickhouse_sql import duckdb_sql_rows
from analytics.offline import DirectWriter
from analytics.pricing import load_prices
from analytics import runner as runner_module
from analytics.rollups import overview
from analytics.runner import AnalyticsRunner
from bench.synth import Synth, generate
from collector.settings import Settings
from collector.store import Store
from tests.clickhouse.chdb_helpers import (
    clickhouse_rows, copy_spans, duckdb_rows, open_store, rows,
)  # fmt: skip

FIRST = Synth(traces=300, start=datetime(2026, 1, 5, 9), minutes=60, salt=1, p_latency=0.02,
              p_cost=0.02, p_loop=0.02)  # fmt: skip
# Late and new traffic: the same hour (its minutes must be recomputed) plus the next one.
SECOND = Synth(traces=300, start=datetime(2026, 1, 5, 9, 30), minutes=60, salt=2, p_latency=0.02,
               received_at=datetime(2026, 1, 5, 11))  # fmt: skip
NOW = datetime(2026, 1, 5, 11, 5)
TABLES = {  # compared row for row (every column DuckDB has)
    "span_costs": "true",
    "trace_features": "true",
    "minute_rollup": "true",
    "error_minutes": "true",
    "call_minutes": "true",
    "anomalies": "true",
    "alerts": "true",
}


class Pair:
    """The same spans in a DuckDB store and a ClickHouse database, a runner on each (forests fitted
    in this process, as an offline run does: the child of a collector is tests/analytics/test_forest.py)."""

    def __init__(self, store: Store, factory: Callable[[], Client], settings: Settings) -> None:
        self.store, self.factory, self.ch = store, factory, factory()
        self.duck = AnalyticsRunner(store, DirectWriter(store), settings, scorer=forest.in_process)
        self.click = ClickHouseAnalyticsRunner(factory, settings, scorer=forest.in_process)

    def add(self, config: Synth) -> None:
        before = self.store.cursor().execute(
            "SELECT coalesce(max(received_at), TIMESTAMP '1970-01-01') FROM spans").fetchall()[0][0]  # fmt: skip
        generate(self.store.write_connection, config)
        # Two projects: analytics are computed per project on both stores.
        self.store.write_connection.execute(
            f"UPDATE spans SET project = 'acme' WHERE service_name = 'coder' AND received_at > TIMESTAMP '{before}'")  # fmt: skip
        copy_spans(self.store.cursor(), self.ch, f"received_at > TIMESTAMP '{before}'")

    def table(self, name: str) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
        duck = duckdb_rows(self.store.cursor(), f"SELECT * FROM {name}")
        click = clickhouse_rows(self.ch, f"SELECT * FROM {name}")
        return rows(duck, duck.column_names), rows(click, duck.column_names)

    def assert_same(self) -> None:
        for name in TABLES:
            duck, click = self.table(name)
            assert click == duck, name

    def stop(self) -> None:
        self.duck.stop()
        self.click.stop()


@pytest.fixture
def pair(tmp_path: Path, chdb_url: str) -> Iterator[Pair]:
    store = Store(tmp_path / "duck.duckdb")
    p = Pair(store, open_store(chdb_url).client, Settings.from_env({}))
    yield p
    p.stop()
    store.close()


def test_same_rows_as_duckdb_incremental_and_rerun_changes_nothing(pair: Pair) -> None:
    pair.add(FIRST)
    duck, click = pair.duck.run_now(now=NOW), pair.click.run_now(now=NOW)
    assert click.backfill and (click.spans, click.llm_spans, click.traces, click.minutes) == (
        duck.spans, duck.llm_spans, duck.traces, duck.minutes)  # fmt: skip
    assert click.new_anomalies == duck.new_anomalies and duck.anomalies > 0
    assert click.projects == duck.projects and set(duck.projects) == {"acme", "default"}
    pair.assert_same()

    pair.add(SECOND)
    duck, click = pair.duck.run_now(now=NOW), pair.click.run_now(now=NOW)
    assert not click.backfill and (click.spans, click.traces) == (duck.spans, duck.traces) != (0, 0)
    assert click.new_anomalies == duck.new_anomalies
    assert (click.alerts_fired, click.alerts_resolved) == (duck.alerts_fired, duck.alerts_resolved)
    pair.assert_same()

    visible = {name: pair.table(name)[1] for name in TABLES}
    again = pair.click.run_now(now=NOW)
    assert (again.spans, again.anomalies, again.alerts_fired) == (0, 0, 0)
    assert {name: pair.table(name)[1] for name in TABLES} == visible
    # The spans carry their cost too (what the traces view and SQL users sum).
    costs_sql = "SELECT trace_id, span_id, cost_usd FROM spans WHERE cost_usd IS NOT NULL"
    duck_costs = duckdb_rows(pair.store.cursor(), costs_sql)
    assert rows(clickhouse_rows(pair.ch, costs_sql), duck_costs.column_names) == rows(
        duck_costs, duck_costs.column_names) and duck_costs.num_rows > 0  # fmt: skip


def test_minutes_that_lose_a_group_lose_its_row(pair: Pair) -> None:
    """A recomputed minute replaces all its rows: a (service, agent) gone from it is gone."""
    pair.add(FIRST)
    pair.click.run_now(now=NOW)
    before = pair.ch.query("SELECT count() FROM minute_rollup").result_rows[0][0]
    # Move one agent's spans to another agent, as a late root's attribution would, and re-send.
    moved = pair.ch.query_arrow(
        "SELECT * REPLACE ('triage' AS agent_name, toDateTime64('2026-01-05 10:30:00', 6, 'UTC') AS received_at) "
        "FROM (SELECT * FROM spans WHERE agent_name = 'billing')"  # a WHERE would see the alias
    )
    pair.ch.insert_arrow("span_store", moved)
    report = pair.click.run_now(now=NOW)
    assert report.spans > 0
    agents = {r[0] for r in pair.ch.query("SELECT DISTINCT agent_name FROM minute_rollup").result_rows}
    assert "billing" not in agents and "triage" in agents
    assert pair.ch.query("SELECT count() FROM minute_rollup").result_rows[0][0] < before


def test_price_change_recomputes_past_costs(pair: Pair, tmp_path: Path) -> None:
    pair.add(FIRST)
    pair.duck.run_now(now=NOW)
    pair.click.run_now(now=NOW)
    prices = tmp_path / "prices.csv"
    prices.write_text(
        "provider,model,pattern,input,cached_input,cache_write,output,reasoning,effective_from,accounting\n"
        "meta,llama-3.3-70b,llama-3\\.3-70b,0.60,,,0.60,,2024-12-06,\n"
    )
    settings = Settings.from_env({}, prices_file=str(prices))
    pair.duck = AnalyticsRunner(pair.store, DirectWriter(pair.store), settings, scorer=forest.in_process)
    pair.click = ClickHouseAnalyticsRunner(pair.factory, settings, scorer=forest.in_process)
    assert load_prices(str(prices)).fingerprint != load_prices(None).fingerprint
    duck, click = pair.duck.run_now(now=NOW), pair.click.run_now(now=NOW)
    assert click.backfill and duck.backfill
    pair.assert_same()
    priced = pair.ch.query(
        "SELECT count(), countIf(cost_usd IS NOT NULL) FROM span_costs WHERE model = 'llama-3.3-70b'"
    ).result_rows[0]
    assert priced[0] > 0 and priced[0] == priced[1]
    on_spans = pair.ch.query(
        "SELECT countIf(cost_usd IS NULL) FROM spans WHERE model = 'llama-3.3-70b' AND kind = 'llm'"
    ).result_rows[0][0]
    assert on_spans == 0


def test_overview_numbers_same_as_duckdb(pair: Pair) -> None:
    """/api/analytics/overview's numbers, read from ClickHouse's rollups through the dialect."""
    pair.add(FIRST)
    pair.add(SECOND)
    pair.duck.run_now(now=NOW)
    pair.click.run_now(now=NOW)
    at = datetime(2026, 1, 5, 10, 15)
    duck = overview(pair.store.cursor(), at, window_minutes=45)
    click = overview(duckdb_sql_rows(pair.ch), at, window_minutes=45)
    assert duck["traces"] > 0 and duck["top_errors"] and duck["cost_today_usd"]
    assert click.keys() == duck.keys()
    for key, value in duck.items():
        if isinstance(value, float):
            assert click[key] == pytest.approx(value, rel=1e-9), key
        else:
            assert click[key] == value, key


def test_chunked_backfill_gives_the_same_rows(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    """A backfill in many chunks (bounds from ClickHouse's quantiles of received_at) adds up."""
    monkeypatch.setattr(runner_module, "CHUNK_SPANS", 700)
    pair.add(FIRST)
    pair.add(SECOND)
    duck, click = pair.duck.run_now(now=NOW), pair.click.run_now(now=NOW)
    assert click.spans == duck.spans > 5 * 700  # (traces are counted per chunk: not compared)
    pair.assert_same()


def test_on_a_cluster_costs_stay_in_span_costs(pair: Pair) -> None:
    """span_store is Distributed on a cluster: no mutation through a one-node join table."""
    settings = Settings.from_env({}, store="clickhouse://u:p@127.0.0.1:1/db", clickhouse_cluster="c1")
    pair.add(FIRST)
    report = ClickHouseAnalyticsRunner(pair.factory, settings, scorer=forest.in_process).run_now(now=NOW)
    assert report.llm_spans > 0
    assert pair.ch.query("SELECT count() FROM span_costs WHERE cost_usd IS NOT NULL").result_rows[0][0] > 0
    assert pair.ch.query("SELECT count() FROM spans WHERE cost_usd IS NOT NULL").result_rows == [(0,)]
