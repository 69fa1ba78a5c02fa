"""DuckDB → ClickHouse translation of the dashboard's SQL: the meanings sqlglot alone gets wrong,
checked on chdb against DuckDB; and the dashboard's pages tag their SQL with its dialect."""

from __future__ import annotations

from collections.abc import Callable

import duckdb
import pandas as pd
import pytest
from sqlglot.errors import UnsupportedError

from collector.clickhouse import sandbox
from collector.clickhouse.dialect import from_duckdb
from collector.jsonvalues import jsonable
from dashboard import client
from tests.clickhouse.chdb_helpers import open_store
from tests.conftest import RunningCollector

CASES = {
    # microseconds and UTC survive a timestamp literal
    "timestamp": "SELECT TIMESTAMP '2026-01-05 09:00:30.123456' AS t",
    "bucket": "SELECT time_bucket(INTERVAL '15 minutes', TIMESTAMP '2026-01-05 09:44:59.5') AS b, "
    "time_bucket(INTERVAL '1 day', TIMESTAMP '2026-01-05 09:44:59') AS d",
    # aggregates over no rows are NULL, counts 0
    "empty": "SELECT max(x) AS m, sum(x) AS s, arg_max(x, x) AS a, count(*) AS n, "
    "count(*) FILTER (WHERE x > 1) AS f FROM (SELECT 1 AS x) WHERE x > 5",
    # a column named like an alias means the column in WHERE and inside other items
    "alias": "SELECT sum(x) AS x, sum(x) / count(*) AS mean FROM (SELECT 2 AS x UNION ALL SELECT 4) WHERE x > 1",
    # a struct literal is a named tuple: its fields read back by name
    "struct": "SELECT e.b AS b, e.n AS n FROM (SELECT unnest([{'b': 3, 'n': 1}, {'b': 5, 'n': 2}]) AS e)",
    # rolled-up grouping columns are NULL
    "grouping": "SELECT x % 2 AS k, count(*) AS n, grouping(x % 2) AS total FROM "
    "(SELECT unnest([1, 2, 3]) AS x) GROUP BY GROUPING SETS ((x % 2), ()) ORDER BY total, k",
    "quantile": "SELECT round(quantile_cont(x, 0.95), 9) AS p FROM (SELECT unnest([1, 2, 10, 40])::DOUBLE AS x)",
}


@pytest.mark.parametrize("case", list(CASES))
def test_translated_query_means_the_same(chdb_url: str, case: str) -> None:
    sql = CASES[case]
    expected = [[jsonable(v) for v in row] for row in duckdb.connect().sql(sql).fetchall()]
    # As the pages send it: translated, checked and run by the ClickHouse SQL sandbox.
    got = sandbox.run(open_store(chdb_url), sql, timeout_s=30, max_rows=100, dialect="duckdb").rows
    assert got == expected


def test_union_by_name_is_refused_with_a_reason() -> None:
    with pytest.raises(UnsupportedError, match="BY NAME"):
        from_duckdb("SELECT 1 AS a UNION ALL BY NAME SELECT 2 AS a")


def test_pages_send_their_dialect_and_a_duckdb_store_ignores_it(collector: RunningCollector) -> None:
    tagged = client.run_sql("SELECT 41 + 1 AS answer", base=collector.http_url, dialect=client.PAGES_DIALECT)
    assert tagged.frame["answer"].tolist() == [42]
    untagged = client.run_sql("SELECT 41 + 1 AS answer", base=collector.http_url)
    assert untagged.frame["answer"].tolist() == [42]


def test_a_clickhouse_collector_translates_what_the_pages_send(
    make_collector: Callable[..., RunningCollector], chdb_url: str
) -> None:
    collector = make_collector(store=chdb_url)
    sql = "SELECT time_bucket(INTERVAL '5 minutes', TIMESTAMP '2026-01-05 09:07:00') AS b"
    tagged = client.run_sql(sql, base=collector.http_url, dialect=client.PAGES_DIALECT)
    assert tagged.frame["b"].tolist() == [pd.Timestamp("2026-01-05 09:05:00")]
    with pytest.raises(client.ApiError, match="time_bucket|UNKNOWN_FUNCTION|Unknown function"):
        client.run_sql(sql, base=collector.http_url)  # untagged: ClickHouse SQL, no time_bucket there
