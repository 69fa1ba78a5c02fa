"""/api/sql on a ClickHouse store: one read-only SELECT in ClickHouse SQL; everything that
writes, reads files, the network, other servers, other databases or the system tables is
refused in one line; time limit, row cap and read-only hold server-side; DuckDB SQL from the
dashboard is translated."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from collector.api import create_app
from collector.clickhouse import sandbox
from collector.clickhouse.backend import ClickHouseBackend
from collector.clickhouse.store import ClickHouseStore
from collector.query import QueryTimeout
from collector.settings import Settings
from tests.collector.query_data import standard_traces


@pytest.fixture(scope="module")
def store(chdb_dir: Path) -> Iterator[ClickHouseStore]:
    store = ClickHouseStore(f"chdb://{chdb_dir}?database=t_sandbox")
    writer = ClickHouseBackend(store).open_writer(Settings.from_env({}))
    for rows in standard_traces():
        writer.submit(rows).result(timeout=30)
    writer.close()
    yield store


@pytest.fixture(scope="module")
def client(store: ClickHouseStore) -> Iterator[TestClient]:
    with TestClient(create_app(Settings.from_env({}), store, backend=ClickHouseBackend(store))) as client:
        yield client


def sql(client: TestClient, text: str, dialect: str | None = None):  # type: ignore[no-untyped-def]
    return client.post("/api/sql", json={"sql": text, **({"dialect": dialect} if dialect else {})})


def test_select_returns_columns_rows_and_timing(client: TestClient) -> None:
    body = sql(client, "SELECT service_name, count() AS n FROM spans GROUP BY 1 ORDER BY 1").json()
    assert body["columns"] == ["service_name", "n"]
    assert body["rows"] == [["sales-bot", 12], ["support-bot", 32]]
    assert body["truncated"] is False and body["elapsed_ms"] >= 0


@pytest.mark.parametrize(
    "text, expected",
    [
        ("SELECT count() FROM traces", [[6]]),
        ("SELECT count() FROM sessions", [[3]]),
        ("WITH t AS (SELECT * FROM traces) SELECT count() FROM t", [[6]]),
        ("SELECT sum(number) FROM numbers(4)", [[6]]),
        ("SELECT count() FROM (SELECT arrayJoin(agents) FROM traces)", [[11]]),
        ("SELECT count() FROM spans WHERE trace_id IN (SELECT trace_id FROM traces WHERE status = 'error')", [[8]]),
        ("(SELECT 1 AS x) UNION ALL (SELECT 2 AS x) ORDER BY x", [[1], [2]]),
        ("SELECT JSONExtractString(attributes, 'gen_ai.operation.name') AS op FROM spans WHERE kind = 'llm' LIMIT 1",
         [["chat"]]),
        ("SELECT count() FROM span_store", [[44]]),
        ("SELECT count() FROM t_sandbox.spans /* a comment; DROP TABLE spans */", [[44]]),
        ("SELECT 'system.tables; file(1)' AS s", [["system.tables; file(1)"]]),
    ],
)
def test_reads_are_allowed(client: TestClient, text: str, expected: list[list[object]]) -> None:
    response = sql(client, text)
    assert response.status_code == 200, response.text
    assert response.json()["rows"] == expected


REFUSED = [
    "INSERT INTO span_store SELECT * FROM span_store",
    "ALTER TABLE span_store DELETE WHERE 1",
    "DROP TABLE spans",
    "CREATE TABLE x (a Int8) ENGINE = Memory",
    "TRUNCATE TABLE span_store",
    "OPTIMIZE TABLE span_store FINAL",
    "SET readonly = 0",
    "SYSTEM FLUSH LOGS",
    "KILL QUERY WHERE 1",
    "SHOW TABLES",
    "DESCRIBE spans",
    "EXPLAIN SELECT 1",
    "SELECT 1; SELECT 2",
    "SELECT * FROM file('/etc/passwd', 'CSV', 'line String')",
    "SELECT * FROM url('http://127.0.0.1:1/', 'CSV', 'a String')",
    "SELECT * FROM s3('http://127.0.0.1:1/b/k', 'CSV', 'a String')",
    "SELECT * FROM remote('127.0.0.1', system.one)",
    "SELECT * FROM remoteSecure('127.0.0.1', system.one)",
    "SELECT * FROM cluster('default', system.one)",
    "SELECT * FROM clusterAllReplicas('default', system.one)",
    "SELECT * FROM merge(currentDatabase(), '^span')",
    "SELECT * FROM view(SELECT * FROM span_store)",
    "SELECT * FROM mysql('127.0.0.1:1', 'd', 't', 'u', 'p')",
    "SELECT * FROM postgresql('127.0.0.1:1', 'd', 't', 'u', 'p')",
    "SELECT * FROM jdbc('x', 'y')",
    "SELECT * FROM odbc('x', 'y', 'z')",
    "SELECT * FROM hdfs('hdfs://127.0.0.1:1/x', 'CSV', 'a String')",
    "SELECT * FROM input('a String')",
    "SELECT * FROM executable('x.sh', 'CSV', 'a String')",
    "SELECT * FROM dictionary('d')",
    "SELECT * FROM numbers_mt(10)",
    "SELECT * FROM system.tables",
    "SELECT * FROM system.one",
    "SELECT * FROM information_schema.tables",
    "SELECT * FROM INFORMATION_SCHEMA.TABLES",
    "SELECT * FROM default.span_store",
    "SELECT dictGet('d', 'a', toUInt64(1))",
    "SELECT joinGet('j', 'v', 1)",
    "SELECT sleep(1)",
    "SELECT getSetting('readonly')",
    "SELECT count() FROM spans SETTINGS readonly = 0",
    "SELECT count() FROM spans SETTINGS max_execution_time = 1000",
    "SELECT * FROM spans FORMAT JSONEachRow",
    "SELECT * FROM spans INTO OUTFILE 'out.csv'",
    "SELECT count() FROM spans WHERE trace_id IN span_store",
    "WITH spans AS (SELECT 1 AS x) SELECT * FROM spans",
    "SELECT * FROM api_keys",
]


@pytest.mark.parametrize("text", REFUSED)
def test_forbidden_sql_is_refused_with_one_line(client: TestClient, text: str) -> None:
    response = sql(client, text)
    assert response.status_code == 400, (text, response.text)
    detail = response.json()["detail"]
    assert detail.strip() and "\n" not in detail.strip()


@pytest.mark.parametrize("text", ["SELEC 1", "SELECT no_such_column FROM spans", "SELECT * FROM no_such_table"])
def test_failing_sql_is_one_line_400(client: TestClient, text: str) -> None:
    response = sql(client, text)
    assert response.status_code == 400
    assert "\n" not in response.json()["detail"].strip()


def test_the_server_refuses_writes_as_a_second_wall(store: ClickHouseStore) -> None:
    """Whatever slipped past the parser would run with readonly=2."""
    settings = sandbox._settings(store, 5.0, 10, sandbox._relations(store))
    with pytest.raises(Exception, match="READONLY|readonly"):
        store.client().command("INSERT INTO span_store (trace_id, span_id) VALUES ('a', 'b')", settings=settings)
    assert store.rows("SELECT count() FROM span_store") == [(44,)]


def test_runaway_query_hits_the_time_limit(store: ClickHouseStore) -> None:
    with pytest.raises(QueryTimeout, match="time limit"):
        sandbox.run(store, "SELECT sum(cityHash64(number)) FROM numbers(1000000000000)", timeout_s=0.3, max_rows=10)


def test_row_cap_truncates_and_says_so(store: ClickHouseStore) -> None:
    result = sandbox.run(store, "SELECT number FROM numbers(100000)", timeout_s=10, max_rows=100)
    assert len(result.rows) == 100 and result.truncated
    small = sandbox.run(store, "SELECT number FROM numbers(5)", timeout_s=10, max_rows=100, max_bytes=8)
    assert small.truncated and len(small.rows) < 5


def test_dashboard_duckdb_sql_is_translated(client: TestClient) -> None:
    response = sql(client, "SELECT count(*)::INTEGER AS n, list_contains(['a'], 'a') AS ok FROM traces", "duckdb")
    assert response.status_code == 200, response.text
    assert response.json()["rows"] == [[6, True]]
    refused = sql(client, "SELECT * FROM read_csv('x.csv')", "duckdb")
    assert refused.status_code == 400


def test_values_are_json_safe(client: TestClient) -> None:
    body = sql(client, "SELECT start_time, agents, cost_usd FROM traces ORDER BY start_time LIMIT 1").json()
    start, agents, cost = body["rows"][0]
    assert start == "2026-11-18T09:00:00.000000Z" and agents == ["billing", "sales"] and cost is None
