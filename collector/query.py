"""Named read queries behind the /api routes: trace list, one trace as a tree, sessions (the span
export, collector.spans_export, is re-exported here for the backend's ``queries``).

Every user value is bound as a parameter; the only SQL text chosen from user input comes from
fixed whitelists (sort columns, directions). Each query runs on its own cursor under the time
limit (:func:`timed_cursor`); callers on the event loop run these functions in a thread pool.
"""

from __future__ import annotations

import json
import string
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from collector import rollup
from collector.errors import one_line
from collector.jsonvalues import jsonable
from collector.normalize.lift import restore_attributes
from collector.spans_export import count_spans, iter_span_batches  # noqa: F401 - the backend's Queries
from collector.store import Store

TRACE_SORTS = {
    "start_time": "start_time",
    "end_time": "end_time",
    "duration_ms": "duration_ms",
    "span_count": "span_count",
    "error_count": "error_count",
    "llm_calls": "llm_calls",
    "tool_calls": "tool_calls",
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "cost_usd": "cost_usd",
}
# Sort key of each session column, as one aggregate over its trace summaries: the page's ids are
# picked with this aggregate alone, and whole rows are built for those ids only.
SESSION_SORTS = {
    "last_seen": "max(end_time)",
    "first_seen": "min(start_time)",
    "trace_count": "count(*)",
    "span_count": "sum(span_count)",
    "error_count": "sum(error_count)",
    "cost_usd": "sum(cost_usd)",
    "input_tokens": "sum(input_tokens)",
    "output_tokens": "sum(output_tokens)",
}
ORDERS = {"asc": "ASC", "desc": "DESC"}
JSON_COLUMNS = ("attributes", "resource", "events", "links")


class QueryTimeout(Exception):
    """A query ran past the time limit and was interrupted."""


class QueryOutOfMemory(Exception):
    """A query needed more than DuckDB's memory limit (TRACEHOUSE_DUCKDB_MEMORY_LIMIT)."""


@contextmanager
def timed_cursor(store: Store, timeout_s: float) -> Iterator[duckdb.DuckDBPyConnection]:
    """A fresh cursor that is interrupted after ``timeout_s`` seconds (QueryTimeout is raised)."""
    cursor = store.cursor()
    timer = threading.Timer(timeout_s, cursor.interrupt)
    timer.daemon = True
    timer.start()
    try:
        yield cursor
    except duckdb.InterruptException:
        raise QueryTimeout(
            f"query stopped after the {timeout_s:g} s time limit (TRACEHOUSE_SQL_TIMEOUT_S); "
            "narrow it with a time range or filters"
        ) from None
    except duckdb.OutOfMemoryException as exc:
        raise QueryOutOfMemory(
            f"{one_line(exc)} (TRACEHOUSE_DUCKDB_MEMORY_LIMIT); read fewer spans or columns at once"
        ) from None
    finally:
        timer.cancel()
        cursor.close()


@dataclass(frozen=True, slots=True)
class TraceFilter:
    """Filters of the trace list; None means "any". Times are naive UTC."""

    start: datetime | None = None
    end: datetime | None = None
    service: str | None = None
    agent: str | None = None
    model: str | None = None
    status: str | None = None  # "ok" or "error"
    session: str | None = None
    workflow: str | None = None  # the trace's workflow name (else its root span's name)
    min_duration_ms: float | None = None
    q: str | None = None  # text in a span's name, input, output or status message


def _regex_literal(text: str) -> str:
    """``text`` as an RE2 pattern matching itself: ASCII punctuation escaped, the rest as is."""
    return "".join("\\" + c if c in string.punctuation else c for c in text)


def _trace_where(f: TraceFilter) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []

    def add(clause: str, *values: Any) -> None:
        clauses.append(clause)
        params.extend(values)

    if f.start is not None:
        add("start_time >= ?", f.start)
    if f.end is not None:
        add("start_time < ?", f.end)
    if f.service is not None:
        add("service_name = ?", f.service)
    if f.agent is not None:
        add("list_contains(agents, ?)", f.agent)
    if f.model is not None:
        add("list_contains(models, ?)", f.model)
    if f.status == "error":
        add("error_count > 0")
    elif f.status == "ok":
        add("error_count = 0")
    if f.session is not None:
        add("session_id = ?", f.session)
    if f.workflow is not None:
        add("coalesce(workflow_name, root_name) = ?", f.workflow)
    if f.min_duration_ms is not None:
        add("duration_ms >= ?", f.min_duration_ms)
    if f.q:
        add("trace_id IN (SELECT trace_id FROM _matching)")  # filled by _match_text first
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _records(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description or []]
    return [{n: jsonable(v) for n, v in zip(names, row)} for row in cursor.fetchall()]


def list_traces(
    store: Store,
    timeout_s: float,
    filters: TraceFilter,
    *,
    limit: int = 50,
    offset: int = 0,
    sort: str = "start_time",
    order: str = "desc",
) -> tuple[list[dict[str, Any]], int]:
    """One page of traces matching ``filters`` and the total number that match."""
    rollup.catch_up(store)
    where, params = _trace_where(filters)
    order_by = f"{TRACE_SORTS[sort]} {ORDERS[order]} NULLS LAST, trace_id"
    with timed_cursor(store, timeout_s) as cur:
        if filters.q:
            _match_text(cur, filters)
        total = cur.execute(f"SELECT count(*) FROM traces{where}", params).fetchone()[0]
        cur.execute(
            f"SELECT * FROM traces{where} ORDER BY {order_by} LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return _records(cur), int(total)


def _match_text(cur: duckdb.DuckDBPyConnection, f: TraceFilter) -> None:
    """TEMP _matching: ids of traces with a span whose name, input, output or status message
    contains ``f.q``, ignoring case. Scanned once for both the count and the page.

    A case-insensitive RE2 match of the escaped text is 3x faster in DuckDB than ILIKE with an
    ESCAPE clause (measured in bench/RESULTS.md); spans of a trace start inside the trace's
    window, so the time range prunes this scan by zone maps.
    """
    columns = ("name", "input", "output", "status_message")
    where = ["(" + " OR ".join(f"regexp_matches({c}, ?, 'i')" for c in columns) + ")"]
    params: list[Any] = [_regex_literal(f.q or "")] * len(columns)
    if f.start is not None:
        where.append("start_time >= ?")
        params.append(f.start)
    if f.end is not None:
        # Spans of traces starting before `end` start before the last of those traces ends.
        last_end = cur.execute(
            "SELECT max(end_time) FROM trace_summary WHERE start_time < ?", [f.end]
        ).fetchone()[0]
        where.append("start_time <= ?")
        params.append(last_end)
    cur.execute(
        f"CREATE OR REPLACE TEMP TABLE _matching AS SELECT DISTINCT trace_id FROM spans WHERE {' AND '.join(where)}",
        params,
    )


def get_trace(store: Store, timeout_s: float, trace_id: str) -> list[dict[str, Any]] | None:
    """All spans of a trace in tree order (parents before children, siblings by start), or None."""
    rollup.catch_up(store)
    with timed_cursor(store, timeout_s) as cur:
        window = cur.execute(
            "SELECT start_time, end_time FROM trace_summary WHERE trace_key = ? AND trace_id = ?",
            [_trace_key(trace_id), trace_id],
        ).fetchone()
        if window is None:
            return None
        # Every span starts inside the trace's window: zone maps skip the other row groups.
        cur.execute(
            "SELECT * FROM spans WHERE trace_id = ? AND start_time >= ? AND start_time <= ?",
            [trace_id, window[0], window[1]],
        )
        spans = _records(cur)
    for span in spans:
        for column in JSON_COLUMNS:
            if isinstance(span.get(column), str):
                span[column] = json.loads(span[column])
        # The API shows attributes as received: payloads lifted into input/output go back in.
        if isinstance(span.get("attributes"), dict):
            span["attributes"] = restore_attributes(span["attributes"], span.get("input"), span.get("output"))
    return tree_order(spans)


def _trace_key(trace_id: str) -> int:
    """trace_summary.trace_key of a trace id, computed here so the scan filter is a plain constant."""
    try:
        return int(trace_id[-16:], 16)
    except ValueError:
        return 0


def tree_order(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Depth-first order with a ``depth`` on each span; a span whose parent is absent is a root."""
    ids = {s["span_id"] for s in spans}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for span in spans:
        parent = span.get("parent_span_id")
        children.setdefault(parent if parent in ids else None, []).append(span)
    for group in children.values():
        group.sort(key=lambda s: (s["start_time"], s["span_id"]))
    ordered: list[dict[str, Any]] = []
    stack = [(span, 0) for span in reversed(children.get(None, []))]
    seen: set[str] = set()
    while stack:
        span, depth = stack.pop()
        if span["span_id"] in seen:  # a parent cycle in bad data must not loop forever
            continue
        seen.add(span["span_id"])
        ordered.append({**span, "depth": depth})
        stack.extend((child, depth + 1) for child in reversed(children.get(span["span_id"], [])))
    # Spans caught in a cycle have no root; keep them rather than drop them.
    ordered.extend({**s, "depth": 0} for s in spans if s["span_id"] not in seen)
    return ordered


def list_sessions(
    store: Store,
    timeout_s: float,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    user: str | None = None,
    limit: int = 50,
    offset: int = 0,
    sort: str = "last_seen",
    order: str = "desc",
) -> tuple[list[dict[str, Any]], int]:
    """Sessions with a trace starting in [start, end), one page, and how many there are.

    The ``sessions`` view groups every trace summary with list aggregates (~15 µs a session:
    over 3 s at 200,000 sessions). Here the sessions in range are counted and ranked from
    trace_summary with the sort column's aggregate alone, then whole rows are built from the
    view for the page's ids only; the view's filter on its group key reaches the table scan.
    """
    rollup.catch_up(store)
    scope: list[str] = ["session_id IS NOT NULL"]
    params: list[Any] = []
    if start is not None:
        scope.append("start_time >= ?")
        params.append(start)
    if end is not None:
        scope.append("start_time < ?")
        params.append(end)
    if user is not None:
        scope.append("user_id = ?")
        params.append(user)
    in_scope = f"SELECT DISTINCT session_id FROM trace_summary WHERE {' AND '.join(scope)}"
    key = SESSION_SORTS[sort]
    with timed_cursor(store, timeout_s) as cur:
        total = cur.execute(f"SELECT count(*) FROM ({in_scope})", params).fetchone()[0]
        # Windowed, the whole session is ranked (its traces outside the window count too).
        ranked = f"session_id IN ({in_scope})" if len(scope) > 1 else "session_id IS NOT NULL"
        ids = [
            r[0]
            for r in cur.execute(
                f"SELECT session_id FROM trace_summary WHERE {ranked} GROUP BY session_id "
                f"ORDER BY {key} {ORDERS[order]} NULLS LAST, session_id LIMIT ? OFFSET ?",
                [*(params if len(scope) > 1 else []), limit, offset],
            ).fetchall()
        ]
        if not ids:
            return [], int(total)
        # list_contains on the group key is pushed below the view's GROUP BY; IN (subquery) is not.
        cur.execute("SELECT * FROM sessions WHERE list_contains(?, session_id)", [ids])
        rows = {r["session_id"]: r for r in _records(cur)}
    return [rows[i] for i in ids if i in rows], int(total)


def get_session(
    store: Store, timeout_s: float, session_id: str, *, limit: int = 1000
) -> dict[str, Any] | None:
    """One session's summary and its traces in time order (the conversation), or None."""
    rollup.catch_up(store)
    with timed_cursor(store, timeout_s) as cur:
        cur.execute("SELECT * FROM sessions WHERE session_id = ?", [session_id])
        rows = _records(cur)
        if not rows:
            return None
        cur.execute(
            "SELECT * FROM traces WHERE session_id = ? ORDER BY start_time, trace_id LIMIT ?",
            [session_id, limit],
        )
        return {**rows[0], "traces": _records(cur)}
