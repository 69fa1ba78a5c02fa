"""DuckDB SQL (what the dashboard writes) → ClickHouse SQL, for a ClickHouse store's /api/sql.

Minimal translation through sqlglot; extended with the dashboard's own constructs by the
analytics side (issue 7).
"""

from __future__ import annotations

import sqlglot


def from_duckdb(sql: str) -> str:
    """The ClickHouse form of one DuckDB statement; sqlglot.errors.ParseError when it cannot be read."""
    return sqlglot.transpile(sql, read="duckdb", write="clickhouse")[0]
