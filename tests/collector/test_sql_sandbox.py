"""POST /api/sql: one read-only SELECT; every other kind of statement and every file, network or
state-changing function is refused with one readable line; time limit and row cap hold."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pytest
from fastapi.testclient import TestClient

from collector.api import create_app
from collector.settings import Settings
from collector.store import Store
from tests.collector.query_data import standard_traces, store_through_writer


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    # One database for the module: nothing here may change it (tests check that it did not).
    store = Store(tmp_path_factory.mktemp("sql") / "sql.duckdb")
    store_through_writer(store, standard_traces())
    yield store
    store.close()


def make_client(store: Store, **overrides) -> TestClient:
    return TestClient(create_app(Settings.from_env({}, **overrides), store))


@pytest.fixture(scope="module")
def client(store: Store) -> Iterator[TestClient]:
    with make_client(store) as client:
        yield client


def sql(client: TestClient, text: str):
    return client.post("/api/sql", json={"sql": text})


def test_select_returns_columns_rows_and_timing(client: TestClient) -> None:
    body = sql(client, "SELECT service_name, count(*) AS n FROM spans GROUP BY 1 ORDER BY 1").json()
    assert body["columns"] == ["service_name", "n"]
    assert body["rows"] == [["sales-bot", 12], ["support-bot", 32]]
    assert body["truncated"] is False and body["elapsed_ms"] >= 0


@pytest.mark.parametrize(
    "text",
    [
        "SELECT count(*) FROM traces",
        "FROM sessions SELECT session_id",
        "WITH t AS (SELECT * FROM traces) SELECT count(*) FROM t",
        "SELECT * FROM range(3)",
        "SELECT unnest(agents) FROM traces",
        "SELECT key FROM json_each('{\"a\": 1}')",
        "SHOW TABLES",
        "DESCRIBE spans",
        "SUMMARIZE SELECT duration_ms FROM spans",
        "EXPLAIN SELECT count(*) FROM spans",
        "SELECT table_name FROM information_schema.tables",
        "SELECT column_name FROM duckdb_columns() WHERE table_name = 'traces'",
        "SELECT 1;",
        "-- a comment\nSELECT 1",
    ],
)
def test_reads_are_allowed(client: TestClient, text: str) -> None:
    response = sql(client, text)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "text, reason",
    [
        ("SELECT * FROM read_csv('/etc/passwd')", "read_csv"),
        ("SELECT * FROM read_csv_auto('/etc/passwd')", "read_csv_auto"),
        ("SELECT * FROM read_text('/etc/passwd')", "read_text"),
        ("SELECT * FROM read_blob('/etc/passwd')", "read_blob"),
        ("SELECT * FROM read_json('x.json')", "read_json"),
        ("SELECT * FROM read_parquet('https://example.com/x.parquet')", "read_parquet"),
        ("SELECT * FROM parquet_metadata('x.parquet')", "parquet_metadata"),
        ("SELECT * FROM glob('/etc/*')", "glob"),
        ("SELECT * FROM sniff_csv('/etc/passwd')", "sniff_csv"),
        ("SELECT * FROM query('SELECT 1')", "query"),
        ("SELECT * FROM query_table('spans')", "query_table"),
        ("SELECT * FROM duckdb_secrets()", "duckdb_secrets"),
        ("SELECT * FROM checkpoint()", "checkpoint"),
        ("SELECT * FROM '/etc/passwd'", "reading files"),
        ("SELECT * FROM 'spans.parquet'", "reading files"),
        (
            "SELECT count(*) FROM spans WHERE trace_id IN (SELECT * FROM read_csv('/etc/passwd'))",
            "read_csv",
        ),
        ("WITH x AS (SELECT * FROM read_text('/etc/hosts')) SELECT * FROM x", "read_text"),
        ("SELECT getenv('HOME')", "getenv"),
        ("SELECT nextval('seq')", "nextval"),
        ("SELECT setseed(0.5)", "setseed"),
        ("COPY spans TO 'out.csv'", "COPY"),
        ("COPY spans FROM '/etc/passwd'", "COPY"),
        ("EXPORT DATABASE 'dump'", "EXPORT"),
        ("ATTACH '/tmp/other.duckdb' AS other", "ATTACH"),
        ("DETACH other", "DETACH"),
        ("INSTALL httpfs", "LOAD"),
        ("LOAD httpfs", "LOAD"),
        ("SET enable_external_access = true", "SET"),
        ("RESET threads", "SET"),
        ("PRAGMA database_size", "PRAGMA"),
        ("CALL pragma_version()", "CALL"),
        ("CHECKPOINT", "CALL"),
        ("INSERT INTO spans SELECT * FROM spans", "INSERT"),
        ("UPDATE spans SET name = 'x'", "UPDATE"),
        ("DELETE FROM spans", "DELETE"),
        ("CREATE TABLE t AS SELECT 1", "CREATE"),
        ("CREATE MACRO m() AS 1", "CREATE"),
        ("DROP TABLE spans", "DROP"),
        ("ALTER TABLE spans ADD COLUMN x INT", "ALTER"),
        ("BEGIN", "TRANSACTION"),
        ("VACUUM", "VACUUM"),
        ("PIVOT spans ON kind USING count(*)", "MULTI"),
        ("SELECT 1; DROP TABLE spans", "one statement"),
        ("SELECT 1; SELECT 2", "one statement"),
        ("EXPLAIN DELETE FROM spans", "EXPLAIN"),
        ("", "no SQL"),
    ],
)
def test_forbidden_sql_is_refused_with_one_line(
    client: TestClient, store: Store, text: str, reason: str
) -> None:
    response = sql(client, text)
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert reason.lower() in detail.lower() and "\n" not in detail
    assert store.cursor().execute("SELECT count(*) FROM spans").fetchone()[0] == 44


def test_failing_sql_is_one_line_400(client: TestClient) -> None:
    for text in [
        "SELEC 1",
        "SELECT nope FROM spans",
        "SELECT * FROM no_such_table",
        "SELECT 1/0::INT + 'a'",
    ]:
        response = sql(client, text)
        assert response.status_code == 400, text
        assert "\n" not in response.json()["detail"] and response.json()["detail"]


def test_the_store_itself_refuses_files_as_a_second_wall(store: Store) -> None:
    with pytest.raises(duckdb.Error, match="(?i)external access|permission"):
        store.cursor().execute("SELECT * FROM read_csv('/etc/passwd')")


def test_runaway_query_hits_the_time_limit(store: Store) -> None:
    with make_client(store, sql_timeout_s=0.5) as client:
        response = sql(
            client, "SELECT sum(a.range * b.range) FROM range(200000) a, range(200000) b"
        )
        assert response.status_code == 408
        assert "time limit" in response.json()["detail"]
        assert sql(client, "SELECT 1").json()["rows"] == [[1]]  # and the server keeps serving


def test_row_cap_truncates_and_says_so(store: Store) -> None:
    with make_client(store, sql_max_rows=5) as client:
        capped = sql(client, "SELECT * FROM range(10)").json()
        assert capped["rows"] == [[0], [1], [2], [3], [4]] and capped["truncated"] is True
        exact = sql(client, "SELECT * FROM range(5)").json()
        assert len(exact["rows"]) == 5 and exact["truncated"] is False


def test_values_are_json_safe(client: TestClient) -> None:
    body = sql(
        client,
        "SELECT TIMESTAMP '2026-11-20 09:00:00.5' AS ts, TIMESTAMPTZ '2026-11-20 10:00:00+01:00' AS tz, "
        "DATE '2026-11-20' AS d, 1.25::DECIMAL(10, 2) AS dec, [1, 2] AS l, {'a': 1, 'b': [TRUE]} AS s, "
        "'\\x00\\xff'::BLOB AS b, INTERVAL 90 SECOND AS i, 'nan'::DOUBLE AS nan, "
        "'9f1f5c0e-1f5d-4b8e-9e1a-0c3b2a1d4e5f'::UUID AS u, NULL AS n, 12345678901234567890::HUGEINT AS h",
    ).json()
    row = dict(zip(body["columns"], body["rows"][0]))
    assert row["ts"] == "2026-11-20T09:00:00.500000Z"
    assert row["tz"] == "2026-11-20T09:00:00.000000Z"
    assert row["d"] == "2026-11-20" and row["dec"] == 1.25 and row["l"] == [1, 2]
    assert row["s"] == {"a": 1, "b": [True]} and row["b"] == "AP8="
    assert row["i"] == "PT90S" and row["nan"] is None and row["n"] is None
    assert row["u"] == "9f1f5c0e-1f5d-4b8e-9e1a-0c3b2a1d4e5f" and row["h"] == 12345678901234567890


def test_traces_and_sessions_views_are_queryable(client: TestClient) -> None:
    body = sql(
        client, "SELECT count(*), sum(span_count), count(*) FILTER (status = 'error') FROM traces"
    ).json()
    assert body["rows"] == [[6, 44, 1]]
    body = sql(client, "SELECT session_id, trace_count FROM sessions ORDER BY session_id").json()
    assert body["rows"] == [["sess-1", 2], ["sess-2", 2], ["sess-3", 1]]
