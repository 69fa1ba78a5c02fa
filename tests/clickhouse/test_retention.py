"""Retention on ClickHouse: day partitions every project is done with are dropped, a project with
a shorter limit loses its older rows by a delete, a project kept forever keeps everything, and
the span table carries a TTL with the same policy."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from collector.clickhouse.retention import ClickHouseRetention, apply_ttl
from collector.clickhouse.store import ClickHouseStore
from collector.clickhouse.writer import ClickHouseWriter
from collector.retention import RetentionPolicy
from collector.settings import Settings
from tests.collector.query_data import agent_trace

NOW = datetime(2026, 11, 20, 12, 0, 0)
AGES = (40, 10, 1)  # days before NOW


def fill(store: ClickHouseStore, projects: tuple[str, ...]) -> None:
    writer = ClickHouseWriter(store, Settings.from_env({}))
    n = 0
    for project in projects:
        for age in AGES:
            n += 1
            rows = agent_trace(n, start=NOW - timedelta(days=age), agents=("a",))
            writer.submit([replace(r, project=project) for r in rows]).result(timeout=30)
    writer.close()


def kept(store: ClickHouseStore) -> dict[str, list[int]]:
    """project → ages (days) of the traces still stored."""
    out: dict[str, list[int]] = {}
    for project, start in store.rows("SELECT project, start_time FROM traces ORDER BY project, start_time"):
        out.setdefault(project, []).append(round((NOW - start.replace(tzinfo=None)).total_seconds() / 86400))
    return out


def partitions(store: ClickHouseStore) -> set[str]:
    return {row[0] for row in store.rows(
        "SELECT DISTINCT partition FROM system.parts WHERE database = currentDatabase() AND table = 'span_store' AND active"
    )}


def test_each_project_keeps_its_days(chdb_url: str) -> None:
    store = ClickHouseStore(chdb_url)
    fill(store, ("alpha", "beta"))
    assert kept(store) == {"alpha": [40, 10, 1], "beta": [40, 10, 1]}
    job = ClickHouseRetention(store, Settings.from_env({}, retention_days=30, retention_by_project="alpha=7"))
    removed = job.run_once(NOW)
    assert kept(store) == {"alpha": [1], "beta": [10, 1]}
    assert removed == {"spans": 4 * 3, "analytics_rows": 0}  # three old traces of 4 spans; no analytics run
    assert str((NOW - timedelta(days=40)).date()) not in partitions(store)  # dropped whole
    assert job.run_once(NOW) == {"spans": 0, "analytics_rows": 0}  # idempotent


def test_a_project_kept_forever_keeps_old_days(chdb_url: str) -> None:
    store = ClickHouseStore(chdb_url)
    fill(store, ("alpha", "archive"))
    job = ClickHouseRetention(store, Settings.from_env({}, retention_days=5, retention_by_project="archive=0"))
    job.run_once(NOW)
    assert kept(store) == {"alpha": [1], "archive": [40, 10, 1]}


def test_ttl_follows_the_policy(chdb_url: str) -> None:
    store = ClickHouseStore(chdb_url)
    policy = RetentionPolicy(30, {"alpha": 7, "archive": 0})
    assert apply_ttl(store, policy) is True
    engine = store.rows("SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = 'span_store'")
    assert "TTL" in engine[0][0] and "alpha" in engine[0][0]
    assert apply_ttl(store, policy) is False  # unchanged: no new ALTER
    assert apply_ttl(store, RetentionPolicy(0)) is True  # retention off: TTL removed
    engine = store.rows("SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = 'span_store'")
    assert " TTL " not in engine[0][0]


def test_ttl_deletes_expired_rows_in_merges(chdb_url: str) -> None:
    """The TTL alone (collectors stopped) removes a project's expired rows once parts merge."""
    store = ClickHouseStore(chdb_url)
    now = datetime.utcnow()
    writer = ClickHouseWriter(store, Settings.from_env({}))
    for n, (project, age) in enumerate([("alpha", 20), ("alpha", 0), ("beta", 20)]):
        rows = agent_trace(n, start=now - timedelta(days=age, hours=1), agents=("a",))
        writer.submit([replace(r, project=project) for r in rows]).result(timeout=30)
    writer.close()
    apply_ttl(store, RetentionPolicy(30, {"alpha": 7}))
    store.command("OPTIMIZE TABLE span_store FINAL")
    assert store.rows("SELECT project, count() FROM spans GROUP BY project ORDER BY project") == [("alpha", 4), ("beta", 4)]


def test_analytics_rows_go_with_their_projects_spans(chdb_url: str) -> None:
    """Costs, features, rollups and anomalies age by their project's days, like on DuckDB."""
    from analytics.clickhouse_runner import ClickHouseAnalyticsRunner

    store = ClickHouseStore(chdb_url)
    fill(store, ("alpha", "beta"))
    ClickHouseAnalyticsRunner(store.client, Settings.from_env({}), settle_s=0).run_now()  # received just now

    def ages(table: str, column: str) -> dict[str, set[int]]:
        out: dict[str, set[int]] = {}
        for project, at in store.rows(f"SELECT project, {column} FROM {table}"):
            out.setdefault(project, set()).add(round((NOW - at.replace(tzinfo=None)).total_seconds() / 86400))
        return out

    tables = (("span_costs", "start_time"), ("trace_features", "start_time"), ("minute_rollup", "minute"),
              ("call_minutes", "minute"))  # fmt: skip
    for table, column in tables:
        assert ages(table, column) == {"alpha": {40, 10, 1}, "beta": {40, 10, 1}}, table
    job = ClickHouseRetention(store, Settings.from_env({}, retention_days=30, retention_by_project="alpha=7"))
    removed = job.run_once(NOW)
    assert removed["analytics_rows"] > 0
    for table, column in tables:
        assert ages(table, column) == {"alpha": {1}, "beta": {10, 1}}, table
    assert job.run_once(NOW)["analytics_rows"] == 0  # idempotent
