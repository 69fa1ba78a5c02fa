"""Test helpers for the ClickHouse backend on chdb: a client on a test's database, the schema.

Until the ClickHouse store (collector/clickhouse/) lands with its own connection and schema code,
tests open ``clickhouse_connect`` clients on the ``chdb_url`` fixture's database themselves.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import clickhouse_connect
import pyarrow as pa
from clickhouse_connect.driver.client import Client

from analytics.clickhouse_sql import naive

if TYPE_CHECKING:
    import duckdb

SCHEMA = Path(__file__).resolve().parents[2] / "collector" / "clickhouse" / "schema.sql"


def statements(sql: str) -> list[str]:
    """The statements of a schema file: ``;`` at the end of a line ends one; comments dropped."""
    lines = [ln for ln in sql.splitlines() if not ln.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";\n") if s.strip().rstrip(";").strip()]


def client_factory(url: str) -> Callable[[], Client]:
    """``chdb://<dir>?database=<name>`` → a factory of clients on that (created) database."""
    parts = urlsplit(url)
    directory = parts.netloc + parts.path
    database = parse_qs(parts.query)["database"][0]
    clickhouse_connect.get_client(dsn=f"chdb://{directory}").command(
        f"CREATE DATABASE IF NOT EXISTS {database}"
    )
    return lambda: clickhouse_connect.get_client(dsn=f"chdb://{directory}", database=database)


def apply_schema(client: Client) -> None:
    for statement in statements(SCHEMA.read_text(encoding="utf-8")):
        client.command(statement.rstrip(";"))


def copy_spans(cur: "duckdb.DuckDBPyConnection", client: Client, where: str = "true") -> int:
    """Copy spans of a DuckDB store into ``span_store``, as the ClickHouse writer stores them."""
    rows = cur.sql(
        "SELECT * REPLACE (attributes::VARCHAR AS attributes, resource::VARCHAR AS resource, "
        f"events::VARCHAR AS events, links::VARCHAR AS links) FROM spans WHERE {where}"
    ).to_arrow_table()
    if rows.num_rows:
        client.insert_arrow("span_store", rows)
    return rows.num_rows


ARRAYS = {"latency_hist"}


def rows(table: pa.Table, columns: Sequence[str]) -> list[tuple[object, ...]]:
    """Comparable rows: the given columns, floats to 10 digits (summation order), sorted."""

    def norm(value: object) -> object:
        if isinstance(value, float):
            return None if math.isnan(value) else float(f"{value:.10g}")
        if isinstance(value, list):
            return [norm(v) for v in value]
        if isinstance(value, dict):
            return {k: norm(v) for k, v in value.items()}
        return value

    def cell(column: str, value: object) -> object:
        # ClickHouse arrays are never NULL: no histogram is [] there, NULL on DuckDB.
        return [] if value is None and column in ARRAYS else norm(value)

    out = [tuple(cell(c, r[c]) for c in columns) for r in table.select(list(columns)).to_pylist()]
    return sorted(out, key=repr)


def duckdb_rows(cur: "duckdb.DuckDBPyConnection", sql: str) -> pa.Table:
    return cur.sql(sql).to_arrow_table()


def clickhouse_rows(client: Client, sql: str) -> pa.Table:
    return naive(client.query_arrow(sql, use_strings=True))
