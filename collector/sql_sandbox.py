"""Read-only SQL typed by users: one SELECT, no files, no network, no state changes.

Three walls. DuckDB's own parser decides what the text is: exactly one statement of type
SELECT (or EXPLAIN of one) passes. The parsed tree of that SELECT (``json_serialize_sql``) is
walked and every table function must be on a short allowlist and no scalar function may be one
that changes state; a table name that looks like a file (a replacement scan) is refused. Last,
the store opens DuckDB with ``enable_external_access=false``, so whatever slips past cannot
reach a file anyway. Each query also has a time limit (interrupt) and a row cap.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from dataclasses import dataclass
from typing import Any

import duckdb
import orjson

from collector import rollup
from collector.jsonvalues import jsonable
from collector.query import timed_cursor
from collector.store import Store

# Table functions that only compute or read the catalog; everything else (read_csv*, read_parquet,
# read_json*, read_text, read_blob, glob, parquet_*, query, query_table, sniff_csv, checkpoint,
# duckdb_secrets, enable_logging, ...) is refused.
ALLOWED_TABLE_FUNCTIONS = frozenset(
    {
        "range",
        "generate_series",
        "unnest",
        "json_each",
        "json_tree",
        "duckdb_tables",
        "duckdb_views",
        "duckdb_columns",
        "duckdb_functions",
        "duckdb_types",
        "duckdb_keywords",
        "duckdb_schemas",
        "duckdb_constraints",
        "pragma_table_info",
        "pragma_show",
        "summary",
    }
)

# Scalar functions that change state, read the environment or stall a worker.
REFUSED_FUNCTIONS = frozenset(
    {
        "getenv",
        "nextval",
        "setval",
        "setseed",
        "write_log",
        "sleep_ms",
        "pg_sleep",
        "query",
        "query_table",
        "json_execute_serialized_sql",
        "current_setting",
    }
)

# Relations that read trace_summary: a query naming one first brings the summary up to date.
SUMMARY_TABLES = frozenset({"traces", "sessions", "trace_summary"})
# Never readable through SQL, whoever asks (key hashes are managed through /api/keys).
PRIVATE_TABLES = frozenset({"api_keys"})

# A table name DuckDB would turn into a file scan ('data.csv', '/etc/passwd', 's3://...').
_FILE_LIKE = re.compile(r"[./\\:*?~]")


class SQLRefused(ValueError):
    """The statement is not a plain read; the message says why, in one line."""


class SQLFailed(ValueError):
    """DuckDB could not run the statement (syntax, unknown column, ...); one line."""


@dataclass(frozen=True, slots=True)
class SQLResult:
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool
    elapsed_ms: float

    def as_json(self) -> dict[str, Any]:
        return {
            "columns": self.columns,
            "rows": self.rows,
            "truncated": self.truncated,
            "elapsed_ms": self.elapsed_ms,
        }


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# EXPLAIN [ANALYZE] in front of a query, with any comments around the keywords.
_COMMENTS = r"(?:\s|/\*.*?\*/|--[^\n]*(?:\n|$))*"
_EXPLAIN = re.compile(rf"^{_COMMENTS}EXPLAIN\b{_COMMENTS}(?:ANALYZE\b{_COMMENTS})?", re.IGNORECASE | re.DOTALL)


def explained(query: str) -> str:
    """The query an EXPLAIN [ANALYZE] statement explains (the text itself if it is no EXPLAIN)."""
    return _EXPLAIN.sub("", query, count=1)


def check(sql: str, con: duckdb.DuckDBPyConnection) -> tuple[str, set[str]]:
    """Return the one statement and the lower-cased table names it reads, if it only reads;
    raise SQLRefused otherwise."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise SQLFailed(_first_line(exc)) from None
    if not statements:
        raise SQLRefused("no SQL statement given")
    if len(statements) > 1:
        raise SQLRefused(f"only one statement per query is allowed, got {len(statements)}")
    statement = statements[0]
    kind = statement.type.name
    query = statement.query.strip().rstrip(";")
    inner = query
    if kind == "EXPLAIN":
        inner = explained(query)
        try:
            inner_statements = duckdb.extract_statements(inner)
        except duckdb.Error:
            inner_statements = []
        if len(inner_statements) != 1 or inner_statements[0].type.name != "SELECT":
            raise SQLRefused("EXPLAIN is allowed only for a SELECT")
    elif kind == "MULTI":
        raise SQLRefused(
            "MULTI statements (PIVOT creates types first) are not allowed; use GROUP BY or FILTER"
        )
    elif kind != "SELECT":
        raise SQLRefused(f"{kind} statements are not allowed: SQL here is read-only (one SELECT)")
    return query, _check_tree(inner, con)


def _check_tree(query: str, con: duckdb.DuckDBPyConnection) -> set[str]:
    raw = con.execute("SELECT json_serialize_sql(?)", [query]).fetchone()[0]
    tree = json.loads(raw)
    if tree.get("error"):
        raise SQLRefused(
            f"query could not be checked: {tree.get('error_message', 'unknown reason')}"
        )
    tables: set[str] = set()
    for node in _walk(tree):
        node_type = node.get("type")
        if isinstance(node_type, str) and node_type.endswith("_QUERY_NODE"):
            # A data-modifying CTE (WITH d AS (DELETE ... RETURNING *) SELECT ...) is a SELECT statement.
            verb = node_type.removesuffix("_QUERY_NODE")
            raise SQLRefused(f"{verb} inside a query is not allowed: SQL here is read-only")
        if node_type == "TABLE_FUNCTION":
            name = str((node.get("function") or {}).get("function_name", "")).lower()
            if name not in ALLOWED_TABLE_FUNCTIONS:
                raise SQLRefused(
                    f"table function {name}() is not allowed: SQL cannot read files, the network or state"
                )
        elif node.get("class") == "FUNCTION":
            name = str(node.get("function_name", "")).lower()
            if name in REFUSED_FUNCTIONS:
                raise SQLRefused(f"function {name}() is not allowed in read-only SQL")
        elif node_type == "BASE_TABLE":
            table = str(node.get("table_name", ""))
            if _FILE_LIKE.search(table):
                raise SQLRefused(f"reading files is not allowed: {table!r} is not a table")
            tables.add(table.lower())
    return tables


# For a reader scoped to one project: table functions that only compute (no catalog, no stats).
SCOPED_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest", "json_each", "json_tree"})


def check_scoped(query: str, con: duckdb.DuckDBPyConnection, exposed: frozenset[str]) -> None:
    """Hold a project-scoped reader to unqualified names of its project-filtered relations.

    The names resolve to TEMP views filtered by project (collector.project_scope); a catalog or
    schema in front of a name could reach the stored table behind them, so none is accepted.
    """
    tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [explained(query)]).fetchone()[0])
    if tree.get("error"):  # fail closed: what cannot be checked does not run
        raise SQLRefused(f"query could not be checked: {tree.get('error_message', 'unknown reason')}")
    nodes = list(_walk(tree))
    ctes = {str(entry.get("key", "")).lower() for node in nodes for entry in (node.get("cte_map") or {}).get("map", [])}
    for node in nodes:
        node_type = node.get("type")
        if node_type == "BASE_TABLE":
            table = str(node.get("table_name", ""))
            if node.get("catalog_name") or node.get("schema_name"):
                raise SQLRefused(f"qualified names are not allowed here: use {table} without a schema or database")
            if table.lower() not in exposed and table.lower() not in ctes:
                raise SQLRefused(f"no table or view named {table!r} here; you can read: {', '.join(sorted(exposed))}")
        elif node_type == "SHOW_REF" and node.get("show_type") == "SHOW_SPECIAL":
            raise SQLRefused("SHOW TABLES lists every project's tables: use DESCRIBE on a table you can read")
        elif node_type == "TABLE_FUNCTION":
            name = str((node.get("function") or {}).get("function_name", "")).lower()
            if name not in SCOPED_TABLE_FUNCTIONS:
                raise SQLRefused(f"table function {name}() is not allowed for a project's key")
        elif node.get("class") == "FUNCTION" and (node.get("catalog") or node.get("schema")):
            raise SQLRefused(f"qualified function names are not allowed here: {node.get('function_name')}")


def _json_bytes(row: list[Any]) -> int:
    """What one row adds to a result's JSON (the row and its separator): the unit of SQL_MAX_BYTES."""
    return len(orjson.dumps(row, default=str)) + 1


def _cap_bytes(rows: list[list[Any]], max_bytes: int) -> tuple[list[list[Any]], bool]:
    """The leading rows whose JSON fits in ``max_bytes``; True when some were cut."""
    size = 0
    for index, row in enumerate(rows):
        size += _json_bytes(row)
        if size > max_bytes:
            return rows[:index], True
    return rows, False


def _fetch_capped(
    cur: duckdb.DuckDBPyConnection, max_rows: int, max_bytes: int | None
) -> tuple[list[list[Any]], bool]:
    """The result's leading rows as JSON-ready lists within ``max_rows`` and ``max_bytes``; True when
    some were cut. Fetched a few at a time, sized on the rows seen so far: a result of long texts
    (10,000 rows of 256 KiB prompts would be 2.5 GB) stops at the cap instead of being all fetched."""
    out: list[list[Any]] = []
    size, want = 0, 16
    while len(out) < max_rows:
        chunk = cur.fetchmany(min(want, max_rows - len(out)))
        if not chunk:
            return out, False
        for row in chunk:
            values = [jsonable(v) for v in row]
            if max_bytes is not None:
                size += _json_bytes(values)
                if size > max_bytes:
                    return out, True
            out.append(values)
        if max_bytes is not None:  # about as many rows as the bytes left hold, at the size seen
            want = max(1, min(1024, (max_bytes - size) * len(out) // max(size, 1) + 1))
        else:
            want = 1024
    return out, bool(cur.fetchmany(1))


def _walk(node: Any) -> Any:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def run(store: Store, sql: str, *, timeout_s: float, max_rows: int, max_bytes: int | None = None) -> SQLResult:
    """Check and run one read-only statement; at most ``max_rows`` rows (and about ``max_bytes``
    bytes of JSON) come back, ``truncated`` says when the cap cut the result.

    Raises SQLRefused, SQLFailed or collector.query.QueryTimeout, each with a one-line message.
    """
    started = time.perf_counter()
    with timed_cursor(store, timeout_s) as cur:
        query, tables = check(sql, cur)
        if tables & PRIVATE_TABLES:
            raise SQLRefused("api_keys is not readable through SQL: list keys with GET /api/keys")
        exposed = getattr(store, "exposed", None)  # a ScopedStore: one project's rows only
        if exposed is not None:
            check_scoped(query, cur, exposed)
        if tables & SUMMARY_TABLES:  # a query of spans alone need not wait for the summary
            rollup.catch_up(store, cur)  # on a read-only store, into this cursor's TEMP overlay
        try:
            # The last wall: whatever the checks missed runs in a transaction that cannot write.
            cur.execute("BEGIN TRANSACTION READ ONLY")
            cur.execute(query)
            columns = [d[0] for d in cur.description or []]
            out, truncated = _fetch_capped(cur, max_rows, max_bytes)
        except duckdb.InterruptException:
            raise
        except duckdb.Error as exc:
            raise SQLFailed(_first_line(exc)) from None
        finally:
            with contextlib.suppress(duckdb.Error):
                cur.execute("ROLLBACK")
    return SQLResult(
        columns=columns,
        rows=out,
        truncated=truncated,
        elapsed_ms=round((time.perf_counter() - started) * 1000, 3),
    )
