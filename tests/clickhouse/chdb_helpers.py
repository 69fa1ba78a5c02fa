"""Test helpers for the ClickHouse analytics and dashboard tests: a store on a test's chdb
database, spans copied from a DuckDB store, rows made comparable across the two engines."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pyarrow as pa
from clickhouse_connect.driver.client import Client

from analytics.clickhouse_sql import naive
from collector.clickhouse.store import ClickHouseStore

if TYPE_CHECKING:
    import duckdb


def open_store(url: str) -> ClickHouseStore:
    """The ClickHouse store at ``chdb://<dir>?database=<name>``: database created, schema applied."""
    return ClickHouseStore(url)


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
