"""Read-only SQL typed by users, on a ClickHouse store: the walls of collector.sql_sandbox, in
ClickHouse's terms.

1. sqlglot (dialect "clickhouse") parses the text: exactly one SELECT (UNION, WITH, subqueries
   allowed) or it is refused; no SETTINGS, FORMAT or INTO OUTFILE clause; table functions only
   from a short allowlist of pure generators (so no file, url, s3, remote, cluster, merge,
   view, mysql, executable, dictionary ...); no dictionary or join-engine lookups; tables only
   of this database (no system.*, no other database). What runs is the tree sqlglot printed
   back, so what was checked is what runs.
2. A project's key: every table the query names is replaced by a subquery of that table
   filtered to the project, and the same filter is set server-side in
   ``additional_table_filters`` for every table the query can reach (views included), so even
   a construct the rewrite did not see reads one project only.
3. The query runs with readonly=2 (nothing can be written or created), max_execution_time,
   max_result_rows (+ result_overflow_mode=break) and max_memory_usage.
"""

from __future__ import annotations

import time
from typing import Any

import sqlglot
from sqlglot import exp

from collector.clickhouse.query import _naive, timeout_of
from collector.clickhouse.store import ClickHouseStore
from collector.jsonvalues import jsonable
from collector.sql_sandbox import SQLFailed, SQLRefused, SQLResult, _cap_bytes

ALLOWED_TABLE_FUNCTIONS = frozenset({"numbers", "zeros", "generate_series", "generateseries"})
# Scalar functions that read other tables, files, settings of the server or stall a worker.
_REFUSED_PREFIXES = ("dict", "joinget", "file", "url", "s3", "hdfs", "azure", "sleep", "getsetting",
                     "getmacro", "getserverport", "filesystem", "gcs", "executable", "remote")
# Bookkeeping tables nobody reads through SQL.
INTERNAL_TABLES = frozenset({"api_keys", "schema_version"})
MAX_MEMORY_BYTES = 2 * 1024**3  # one user query; ClickHouse refuses it beyond (no spill here)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line.split(" (version ")[0][:500]


def _relations(store: ClickHouseStore) -> dict[str, bool]:
    """Tables and views of the store's database → whether they have a project column."""
    rows = store.rows(
        "SELECT t.name, countIf(c.name = 'project') > 0 FROM system.tables t "
        "LEFT JOIN system.columns c ON c.database = t.database AND c.table = t.name "
        "WHERE t.database = currentDatabase() GROUP BY t.name"
    )
    return {name: bool(has_project) for name, has_project in rows if name not in INTERNAL_TABLES}


def _function_name(node: exp.Expression) -> str:
    return (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower().replace("_", "")


def check(sql: str, store: ClickHouseStore, relations: dict[str, bool]) -> tuple[str, set[str]]:
    """The statement to run (printed back by sqlglot, scoped to the store's project if it has one)
    and the relations it reads; SQLRefused / SQLFailed otherwise."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="clickhouse") if s is not None]
    except sqlglot.errors.ParseError as exc:
        raise SQLFailed(f"could not read the query: {_first_line(exc)}") from None
    if not statements:
        raise SQLRefused("no SQL statement given")
    if len(statements) > 1:
        raise SQLRefused(f"only one statement per query is allowed, got {len(statements)}")
    tree = statements[0]
    if not isinstance(tree, (exp.Select, exp.SetOperation, exp.Subquery)):
        raise SQLRefused(f"{tree.key.upper()} statements are not allowed: SQL here is read-only (one SELECT)")
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    clash = ctes & set(relations)
    if clash:
        raise SQLRefused(f"a WITH query may not reuse the name of a table: {', '.join(sorted(clash))}")
    read: set[str] = set()
    for node in list(tree.walk()):
        if isinstance(node, (exp.DML, exp.DDL, exp.Command, exp.Into)):
            raise SQLRefused(f"{node.key.upper()} inside a query is not allowed: SQL here is read-only")
        if node.args.get("settings"):
            raise SQLRefused("SETTINGS clauses are not allowed: the limits of this SQL are fixed")
        if node.args.get("format"):
            raise SQLRefused("FORMAT clauses are not allowed: results come back as JSON")
        if isinstance(node, exp.Table):
            read.add(_check_table(node, store, relations, ctes))
        elif isinstance(node, exp.Func):
            name = _function_name(node)
            if name.startswith(_REFUSED_PREFIXES):
                raise SQLRefused(f"function {name}() is not allowed in read-only SQL")
        elif isinstance(node, exp.In) and not node.args.get("query"):
            for value in node.expressions:
                if isinstance(value, exp.Column) and not value.table and value.name in relations:
                    raise SQLRefused(f"IN {value.name} reads a table: write IN (SELECT ... FROM {value.name})")
    read.discard("")
    return tree.sql(dialect="clickhouse", comments=False), read


def _check_table(node: exp.Table, store: ClickHouseStore, relations: dict[str, bool], ctes: set[str]) -> str:
    """Refuse what is not a table of this database; scope it to the project; return its name."""
    if not isinstance(node.this, exp.Identifier):  # a table function
        name = _function_name(node.this) if isinstance(node.this, exp.Func) else node.this.sql()
        if name not in ALLOWED_TABLE_FUNCTIONS:
            raise SQLRefused(f"table function {name}() is not allowed: SQL cannot read files, the network or other servers")
        return ""
    name, db = node.name, node.db
    if node.catalog or (db and db != store.database):
        raise SQLRefused(f"only tables of this database can be read, not {node.sql(dialect='clickhouse')}")
    if not db and name in ctes:
        return ""
    if name not in relations:
        readable = sorted(n for n, p in relations.items() if p or store.project is None)
        raise SQLRefused(f"no table or view named {name!r} here; you can read: {', '.join(readable)}")
    if store.project is not None:
        if not relations[name]:
            raise SQLRefused(f"{name} is not split by project: a project's key cannot read it")
        alias = node.alias or name
        table = exp.table_(name, db=store.database)
        # FINAL wraps the table in sqlglot's tree; it moves inside, onto the table itself.
        target, source = (node.parent, exp.Final(this=table)) if isinstance(node.parent, exp.Final) else (node, table)
        scoped = exp.select("*").from_(source).where(exp.column("project").eq(exp.Literal.string(store.project)))
        target.replace(exp.Subquery(this=scoped, alias=exp.TableAlias(this=exp.to_identifier(alias))))
    return name


def _settings(store: ClickHouseStore, timeout_s: float, max_rows: int, relations: dict[str, bool]) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "readonly": 2,
        "max_execution_time": timeout_s,
        "max_result_rows": max_rows + 1,
        "result_overflow_mode": "break",
        "max_memory_usage": MAX_MEMORY_BYTES,
    }
    if store.project is not None:
        # Project names are letters, digits, '.', '_' and '-' (collector.keys.check_project).
        where = f"project = \\'{store.project}\\'"
        filters = ", ".join(
            f"'{store.database}.{name}': '{where}'" for name, has_project in sorted(relations.items()) if has_project
        )
        settings["additional_table_filters"] = "{" + filters + "}"
    return settings


def run(
    store: ClickHouseStore, sql: str, *, timeout_s: float, max_rows: int, max_bytes: int | None = None,
    dialect: str | None = None,
) -> SQLResult:
    """Check and run one read-only statement (``dialect="duckdb"``: translated first); at most
    ``max_rows`` rows (and about ``max_bytes`` bytes of JSON) come back.

    Raises SQLRefused, SQLFailed or QueryTimeout, each with a one-line message.
    """
    started = time.perf_counter()
    if dialect == "duckdb":
        from collector.clickhouse.dialect import from_duckdb

        try:
            sql = from_duckdb(sql)
        except sqlglot.errors.SqlglotError as exc:
            raise SQLFailed(f"could not translate the DuckDB query: {_first_line(exc)}") from None
    relations = _relations(store)
    query, _ = check(sql, store, relations)
    try:
        result = store.client().query(query, settings=_settings(store, timeout_s, max_rows, relations))
    except Exception as exc:  # noqa: BLE001 - the driver's errors carry ClickHouse's code
        timeout = timeout_of(exc, timeout_s)
        if timeout is not None:
            raise timeout from None
        raise SQLFailed(_first_line(exc)) from None
    rows = result.result_rows
    truncated = len(rows) > max_rows
    out = [[jsonable(_naive(v)) for v in row] for row in rows[:max_rows]]
    if max_bytes is not None:
        out, cut = _cap_bytes(out, max_bytes)
        truncated = truncated or cut
    return SQLResult(
        columns=list(result.column_names),
        rows=out,
        truncated=truncated,
        elapsed_ms=round((time.perf_counter() - started) * 1000, 3),
    )
