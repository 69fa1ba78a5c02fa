"""Readers scoped to one project: every table and view they can name shows only its rows.

A scoped cursor gets TEMP views that shadow the stored relations (DuckDB looks in ``temp``
before ``main``): each table with a ``project`` column becomes ``SELECT * FROM main.t WHERE
project = '<p>'``; each stored view is re-created from its own definition so that it reads
those filtered views. Relations without a project column are not exposed at all. User SQL is
additionally held to unqualified names of exposed relations (collector.sql_sandbox), so a
schema-qualified ``main.spans`` cannot reach around the shadow.

One bookkeeping table is shown in a project's own terms: ``analytics_state`` (the dashboard reads
how far the rollups are complete) gives, for the per-span job, the newest of the project's spans
the analytics have processed, not the global watermark, which would tell when other projects'
spans arrived.
"""

from __future__ import annotations

import re
from typing import Any

import duckdb

from collector.store import Store

# Bookkeeping tables nobody reads through the API, even when they have a project column.
_INTERNAL = frozenset({"api_keys", "schema_version", "analytics_state", "trace_summary_state"})
_VIEW_HEAD = re.compile(r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?VIEW\s+\S+\s+AS\s+", re.IGNORECASE)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def scope_cursor(cur: duckdb.DuckDBPyConnection, project: str) -> frozenset[str]:
    """Shadow every stored relation of ``cur`` by its project-filtered TEMP view; return exposed names."""
    tables = cur.execute(
        "SELECT t.table_name, bool_or(c.column_name = 'project') FROM duckdb_tables() t "
        "JOIN duckdb_columns() c USING (database_name, schema_name, table_name) "
        "WHERE t.database_name = current_database() AND t.schema_name = 'main' AND NOT t.temporary GROUP BY ALL"
    ).fetchall()
    views = cur.execute(
        "SELECT view_name, sql FROM duckdb_views() WHERE database_name = current_database() "
        "AND schema_name = 'main' AND NOT internal AND NOT temporary"
    ).fetchall()
    catalog = '"' + cur.execute("SELECT current_database()").fetchone()[0].replace('"', '""') + '"'  # type: ignore[index]
    exposed: set[str] = set()
    for name, has_project in tables:
        if name == "analytics_state":
            cur.execute(
                f'CREATE OR REPLACE TEMP VIEW analytics_state AS SELECT s.job, (SELECT max(p.received_at) '
                f'FROM {catalog}.main.spans p WHERE p.project = {_literal(project)} AND p.received_at <= s.watermark) '
                f"AS watermark FROM {catalog}.main.analytics_state s WHERE s.job = 'spans'"
            )
            exposed.add(name)
        elif has_project and name not in _INTERNAL:
            cur.execute(f'CREATE OR REPLACE TEMP VIEW "{name}" AS SELECT * FROM {catalog}.main."{name}" WHERE project = {_literal(project)}')
            exposed.add(name)
        else:  # an empty shadow: the name exists and shows nothing
            cur.execute(f'CREATE OR REPLACE TEMP VIEW "{name}" AS SELECT * FROM {catalog}.main."{name}" WHERE false')
    pending = dict(views)
    # Views may read other views: create them in dependency order by retrying until none is left.
    for _ in range(len(pending) + 1):
        for name, sql in list(pending.items()):
            try:
                cur.execute(f'CREATE OR REPLACE TEMP VIEW "{name}" AS {_VIEW_HEAD.sub("", sql).rstrip().rstrip(";")}')
            except duckdb.CatalogException:
                continue
            exposed.add(name)
            del pending[name]
        if not pending:
            break
    for name in pending:  # could not be re-created on the filtered tables: hide it
        cur.execute(f'CREATE OR REPLACE TEMP VIEW "{name}" AS SELECT NULL AS hidden WHERE false')
    return frozenset(exposed)


class ScopedStore:
    """A Store whose reader cursors see one project only; everything else is the real store's."""

    def __init__(self, store: Store, project: str) -> None:
        self.base = store
        self.project = project
        self.exposed: frozenset[str] = frozenset()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        cur = self.base.cursor()
        try:
            self.exposed = scope_cursor(cur, self.project)
        except BaseException:
            cur.close()
            raise
        return cur

    def __getattr__(self, name: str) -> Any:
        return getattr(self.base, name)


def unscoped(store: Any) -> Store:
    """The real store behind a ScopedStore (writers and caches key on it)."""
    return getattr(store, "base", store)
