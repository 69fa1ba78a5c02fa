"""Generated hostile statements against the SQL sandbox: no write, no file read, no escape.

Statements are built from fragments that write, read files, reach the network or change state,
nested in SELECTs, CTEs and sub-queries, spelled in mixed case with comments. Whatever runs or
is refused, afterwards every table holds what it held, no file appeared, and no row returned
carries the content of a file on the disk.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector import rollup, sql_sandbox
from collector.query import QueryTimeout
from collector.store import Store
from tests.collector.query_data import standard_traces, store_through_writer

MARKER = "tracehouse-secret-7f3a9c"

STATEMENTS = [
    "INSERT INTO spans SELECT * FROM spans",
    "DELETE FROM spans",
    "UPDATE spans SET name = 'x'",
    "DROP TABLE spans",
    "DROP VIEW traces",
    "CREATE TABLE t AS SELECT 1",
    "CREATE TEMP TABLE t AS SELECT 1",
    "CREATE MACRO m() AS 1",
    "ALTER TABLE spans ADD COLUMN x INT",
    "TRUNCATE spans",
    "COPY spans TO '{dir}/out.csv'",
    "COPY (SELECT * FROM spans) TO '{dir}/out.parquet' (FORMAT parquet)",
    "EXPORT DATABASE '{dir}/export'",
    "ATTACH '{dir}/other.duckdb' AS o",
    "DETACH o",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "SET memory_limit = '100GB'",
    "PRAGMA enable_profiling",
    "CHECKPOINT",
    "VACUUM",
    "BEGIN",
    "CALL checkpoint()",
    "SELECT * FROM read_text('{secret}')",
    "SELECT * FROM read_blob('{secret}')",
    "SELECT * FROM read_csv('{secret}')",
    "SELECT * FROM read_csv_auto('{secret}')",
    "SELECT * FROM read_json('{secret}')",
    "SELECT * FROM sniff_csv('{secret}')",
    "SELECT * FROM '{secret}'",
    "SELECT * FROM \"{secret}\"",
    "SELECT * FROM glob('{dir}/*')",
    "SELECT * FROM parquet_metadata('{secret}')",
    "SELECT * FROM read_csv('https://example.com/x.csv')",
    "SELECT getenv('HOME')",
    "SELECT current_setting('home_directory')",
    "SELECT * FROM query('DELETE FROM spans')",
    "SELECT * FROM query_table('spans')",
    "SELECT * FROM duckdb_secrets()",
    "SELECT nextval('s')",
    "SELECT setseed(0.5)",
    "WITH x AS (DELETE FROM spans RETURNING *) SELECT * FROM x",
    "SELECT 1; DELETE FROM spans",
    "EXPLAIN ANALYZE DELETE FROM spans",
    "PIVOT spans ON kind USING count(*)",
    "SELECT count(*) FROM spans",
    "SELECT name FROM spans LIMIT 3",
    "SELECT * FROM traces LIMIT 2",
]

# How a fragment is wrapped: as is, inside a sub-query, a CTE, a scalar sub-query, a UNION.
WRAPPERS = [
    "{s}",
    "SELECT * FROM ({s}) AS t",
    "WITH c AS ({s}) SELECT * FROM c",
    "WITH RECURSIVE r AS ({s} UNION ALL SELECT * FROM r) SELECT * FROM r LIMIT 5",
    "SELECT ({s})",
    "SELECT 1 UNION ALL {s}",
    "SELECT * FROM spans WHERE EXISTS ({s})",
    "{s};",
    "/* {s} */ {s}",
    "{s} -- trailing comment",
]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Path, Path]]:
    directory = tmp_path_factory.mktemp("sandbox")
    secret = directory / "secret.csv"
    secret.write_text(f"value\n{MARKER}\n", encoding="utf-8")
    store = Store(directory / "sandbox.duckdb")
    store_through_writer(store, standard_traces())
    yield store, directory, secret
    store.close()


def state(store: Store, directory: Path) -> tuple[object, ...]:
    cur = store.cursor()
    try:
        tables = cur.execute(
            "SELECT table_name FROM duckdb_tables() WHERE NOT temporary ORDER BY 1"
        ).fetchall()
        counts = [cur.execute(f'SELECT count(*) FROM "{t}"').fetchone() for (t,) in tables]
        views = cur.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY 1").fetchall()
        databases = cur.execute("SELECT database_name FROM duckdb_databases() ORDER BY 1").fetchall()
        settings_ = cur.execute(
            "SELECT value FROM duckdb_settings() WHERE name IN ('enable_external_access', 'memory_limit') ORDER BY name"
        ).fetchall()
    finally:
        cur.close()
    files = sorted(p.name for p in directory.iterdir())
    return tables, counts, views, databases, settings_, files


def respell(text: str, draw: st.DrawFn) -> str:
    """Random letter case and comments between words: the same statement to DuckDB's parser."""
    words = text.split(" ")
    out = []
    for word in words:
        if "'" not in word and '"' not in word and draw(st.booleans()):
            word = "".join(c.upper() if draw(st.booleans()) else c.lower() for c in word)
        out.append(word)
    joiner = draw(st.sampled_from([" ", "  ", "\n", " /* x */ ", "\t"]))
    return joiner.join(out)


@st.composite
def statements(draw: st.DrawFn, directory: str, secret: str) -> str:
    fragment = draw(st.sampled_from(STATEMENTS)).format(dir=directory, secret=secret)
    wrapped = draw(st.sampled_from(WRAPPERS)).format(s=fragment)
    return respell(wrapped, draw)


def test_generated_statements_never_write_read_files_or_escape(sandbox: tuple[Store, Path, Path]) -> None:
    store, directory, secret = sandbox
    rollup.catch_up(store)  # the sandbox's own summary upkeep is the one write a read may cause
    before = state(store, directory)

    @settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")), deadline=None,
              suppress_health_check=list(HealthCheck), database=None)
    @given(st.data())
    def one(data: st.DataObject) -> None:
        statement = data.draw(statements(str(directory), str(secret)))
        try:
            result = sql_sandbox.run(store, statement, timeout_s=5.0, max_rows=50)
        except (sql_sandbox.SQLRefused, sql_sandbox.SQLFailed, QueryTimeout) as exc:
            assert str(exc) and "\n" not in str(exc).strip(), statement
        else:
            assert MARKER not in repr(result.rows), statement
        assert state(store, directory) == before, statement

    one()


def test_result_bytes_are_capped(sandbox: tuple[Store, Path, Path]) -> None:
    store, _, _ = sandbox
    result = sql_sandbox.run(store, "SELECT repeat('x', 1000) AS s FROM range(100)", timeout_s=5.0, max_rows=1000,
                             max_bytes=10_000)
    assert result.truncated and 0 < len(result.rows) <= 10
    whole = sql_sandbox.run(store, "SELECT repeat('x', 10) AS s FROM range(100)", timeout_s=5.0, max_rows=1000,
                            max_bytes=10_000)
    assert not whole.truncated and len(whole.rows) == 100


@pytest.mark.parametrize("statement", [
    "WITH d AS (DELETE FROM spans RETURNING *) SELECT * FROM d",
    "WITH d AS (DELETE FROM spans) SELECT * FROM d",
    "WITH u AS (UPDATE spans SET name = 'x' RETURNING *) SELECT count(*) FROM u",
    "WITH i AS (INSERT INTO spans SELECT * FROM spans RETURNING *) SELECT count(*) FROM i",
    "EXPLAIN /* x */ ANALYZE /* x */ DELETE /* x */ FROM /* x */ spans",  # was a 500: comments after EXPLAIN
    "EXPLAIN -- c\n ANALYZE WITH d AS (DELETE FROM spans RETURNING *) SELECT * FROM d",
])
def test_data_modifying_ctes_are_refused(sandbox: tuple[Store, Path, Path], statement: str) -> None:
    """Found by the generator above: DuckDB parses these as SELECT statements."""
    store, _, _ = sandbox
    cur = store.cursor()
    before = cur.execute("SELECT count(*), count(DISTINCT name) FROM spans").fetchone()
    with pytest.raises(sql_sandbox.SQLRefused, match="read-only|only for a SELECT"):
        sql_sandbox.run(store, statement, timeout_s=5.0, max_rows=50)
    assert cur.execute("SELECT count(*), count(DISTINCT name) FROM spans").fetchone() == before
    cur.close()
