"""The cluster variant of the schema (TRACEHOUSE_CLICKHOUSE_CLUSTER) is valid ClickHouse DDL.

No cluster runs here (chdb is one embedded server), so ClickHouse's own parser checks every
statement (EXPLAIN AST parses without executing); the shape is checked against the one-server
schema: the same columns and engine on span_store_local, a Distributed span_store over it.
"""

from __future__ import annotations

import pytest

from collector.clickhouse.store import ClickHouseStore, cluster_statements, schema_sql, statements


@pytest.fixture
def store(chdb_url: str) -> ClickHouseStore:
    return ClickHouseStore(chdb_url)


def test_every_cluster_statement_parses_in_clickhouse(store: ClickHouseStore) -> None:
    ddl = cluster_statements(schema_sql(), "tracehouse", store.database)
    assert len(ddl) == len(statements(schema_sql())) + 1  # + the Distributed table
    for statement in ddl:
        ast = store.rows(f"EXPLAIN AST {statement}")
        assert ast, statement


def test_cluster_schema_keeps_the_one_server_table_under_another_name(store: ClickHouseStore) -> None:
    single = next(s for s in statements(schema_sql()) if s.startswith("CREATE TABLE IF NOT EXISTS span_store "))
    local = next(s for s in cluster_statements(schema_sql(), "c1", "db") if "span_store_local ON CLUSTER c1 (" in s)
    assert local.replace("span_store_local ON CLUSTER c1", "span_store") == single
    views = [s for s in cluster_statements(schema_sql(), "c1", "db") if s.startswith("CREATE VIEW")]
    assert views and all(" ON CLUSTER c1 AS" in v for v in views)


def test_cluster_store_names_its_local_table_and_waits_for_shards() -> None:
    store = ClickHouseStore("clickhouse://u:p@127.0.0.1:1/db", cluster="c1", apply_schema=False)
    assert store.storage_table == "span_store_local" and store.on_cluster == " ON CLUSTER c1"
    assert store.insert_settings == {"distributed_foreground_insert": 1}
    single = ClickHouseStore("clickhouse://u:p@127.0.0.1:1/db", apply_schema=False)
    assert single.storage_table == "span_store" and single.on_cluster == "" and single.insert_settings == {}
