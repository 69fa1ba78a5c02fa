"""The named reads behind /api on ClickHouse: collector.query's functions, in ClickHouse SQL.

Same signatures and answers as collector.query (tests/clickhouse/test_parity.py runs one scenario
on both). Every user value is a bound parameter ({name:Type}); sort columns and directions come
from collector.query's whitelists. A project-scoped store (ClickHouseStore.scoped) adds
``project = {project}`` to every read. Each query runs with ``max_execution_time``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from collector.clickhouse.store import ClickHouseStore
from collector.normalize.lift import restore_attributes
from collector.query import JSON_COLUMNS, ORDERS, TRACE_SORTS, QueryTimeout, TraceFilter, tree_order
from collector.jsonvalues import jsonable

SESSION_SORTS = {
    "last_seen": "last_seen",
    "first_seen": "first_seen",
    "trace_count": "trace_count",
    "span_count": "span_count",
    "error_count": "error_count",
    "cost_usd": "cost_usd",
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
}
_TIMEOUT = 159  # ClickHouse TIMEOUT_EXCEEDED


def _naive(value: Any) -> Any:
    """ClickHouse DateTime64('UTC') as the API's naive UTC datetime (jsonable adds the Z)."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


class _Where:
    """WHERE clauses with their bound parameters; the store's project scope comes first."""

    def __init__(self, store: ClickHouseStore) -> None:
        self.clauses: list[str] = []
        self.params: dict[str, Any] = {}
        if store.project is not None:
            self.add("project = {project:String}", project=store.project)

    def add(self, clause: str, **params: Any) -> None:
        self.clauses.append(clause)
        self.params.update(params)

    def sql(self) -> str:
        return (" WHERE " + " AND ".join(self.clauses)) if self.clauses else ""


def timeout_of(exc: BaseException, timeout_s: float) -> QueryTimeout | None:
    """The QueryTimeout a driver error stands for (ClickHouse's TIMEOUT_EXCEEDED), else None."""
    if getattr(exc, "code", None) == _TIMEOUT or "TIMEOUT_EXCEEDED" in str(exc):
        return QueryTimeout(f"query stopped after the {timeout_s:g} s time limit (TRACEHOUSE_SQL_TIMEOUT_S); "
                            "narrow it with a time range or filters")  # fmt: skip
    return None


def _read(store: ClickHouseStore, timeout_s: float, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    try:
        records = store.records(sql, params, settings={"max_execution_time": timeout_s})
    except Exception as exc:  # noqa: BLE001 - the driver's errors carry ClickHouse's code
        timeout = timeout_of(exc, timeout_s)
        if timeout is not None:
            raise timeout from None
        raise
    return [{k: jsonable(_naive(v)) for k, v in r.items()} for r in records]


def _span_window(where: _Where, f: TraceFilter) -> None:
    """Traces starting in [start, end) have their first span there: the spans scanned to find
    their ids are pruned by day partition and primary key."""
    if f.start is None and f.end is None:
        return
    inner = ["1"]
    if f.start is not None:
        inner.append("start_time >= {start:DateTime64(6, 'UTC')}")
    if f.end is not None:
        inner.append("start_time < {end:DateTime64(6, 'UTC')}")
    if "project" in where.params:
        inner.append("project = {project:String}")
    where.add(f"trace_id IN (SELECT trace_id FROM spans WHERE {' AND '.join(inner)})")


def _trace_where(store: ClickHouseStore, f: TraceFilter) -> _Where:
    where = _Where(store)
    _span_window(where, f)
    if f.start is not None:
        where.add("start_time >= {start:DateTime64(6, 'UTC')}", start=f.start)
    if f.end is not None:
        where.add("start_time < {end:DateTime64(6, 'UTC')}", end=f.end)
    if f.service is not None:
        where.add("service_name = {service:String}", service=f.service)
    if f.agent is not None:
        where.add("has(agents, {agent:String})", agent=f.agent)
    if f.model is not None:
        where.add("has(models, {model:String})", model=f.model)
    if f.status == "error":
        where.add("error_count > 0")
    elif f.status == "ok":
        where.add("error_count = 0")
    if f.session is not None:
        where.add("session_id = {session:String}", session=f.session)
    if f.workflow is not None:
        where.add("coalesce(workflow_name, root_name) = {workflow:String}", workflow=f.workflow)
    if f.min_duration_ms is not None:
        where.add("duration_ms >= {min_duration:Float64}", min_duration=f.min_duration_ms)
    if f.q:
        # Case-insensitive substring of a span's name, input, output or status message.
        columns = ("name", "input", "output", "status_message")
        match = " OR ".join(f"positionCaseInsensitiveUTF8(coalesce({c}, ''), {{q:String}}) > 0" for c in columns)
        scope = " AND start_time >= {start:DateTime64(6, 'UTC')}" if f.start is not None else ""
        where.add(f"trace_id IN (SELECT trace_id FROM spans WHERE ({match}){scope})", q=f.q)
    return where


def list_traces(
    store: ClickHouseStore,
    timeout_s: float,
    filters: TraceFilter,
    *,
    limit: int = 50,
    offset: int = 0,
    sort: str = "start_time",
    order: str = "desc",
) -> tuple[list[dict[str, Any]], int]:
    """One page of traces matching ``filters`` and the total number that match."""
    where = _trace_where(store, filters)
    total = _read(store, timeout_s, f"SELECT count() AS n FROM traces{where.sql()}", where.params)[0]["n"]
    rows = _read(
        store,
        timeout_s,
        f"SELECT * FROM traces{where.sql()} ORDER BY {TRACE_SORTS[sort]} {ORDERS[order]} NULLS LAST, trace_id "
        "LIMIT {limit:UInt64} OFFSET {offset:UInt64}",
        {**where.params, "limit": limit, "offset": offset},
    )
    return rows, int(total)


def get_trace(store: ClickHouseStore, timeout_s: float, trace_id: str) -> list[dict[str, Any]] | None:
    """All spans of a trace in tree order (parents before children, siblings by start), or None."""
    where = _Where(store)
    where.add("trace_id = {trace_id:String}", trace_id=trace_id)
    spans = _read(store, timeout_s, f"SELECT * FROM spans{where.sql()}", where.params)
    if not spans:
        return None
    for span in spans:
        for column in JSON_COLUMNS:
            if isinstance(span.get(column), str):
                span[column] = json.loads(span[column])
        if isinstance(span.get("attributes"), dict):
            span["attributes"] = restore_attributes(span["attributes"], span.get("input"), span.get("output"))
    return tree_order(spans)


def list_sessions(
    store: ClickHouseStore,
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
    """Sessions with a trace starting in [start, end), one page, and how many there are; a
    session is ranked over all its traces (as on DuckDB)."""
    scope = _trace_where(store, TraceFilter(start=start, end=end))
    scope.add("session_id IS NOT NULL")
    if user is not None:
        scope.add("user_id = {user:String}", user=user)
    in_scope = f"SELECT DISTINCT session_id FROM traces{scope.sql()}"
    total = _read(store, timeout_s, f"SELECT count() AS n FROM ({in_scope})", scope.params)[0]["n"]
    where = _Where(store)
    where.add(f"session_id IN ({in_scope})")
    rows = _read(
        store,
        timeout_s,
        f"SELECT * FROM sessions{where.sql()} ORDER BY {SESSION_SORTS[sort]} {ORDERS[order]} NULLS LAST, session_id "
        "LIMIT {limit:UInt64} OFFSET {offset:UInt64}",
        {**scope.params, **where.params, "limit": limit, "offset": offset},
    )
    return rows, int(total)


def get_session(
    store: ClickHouseStore, timeout_s: float, session_id: str, *, limit: int = 1000
) -> dict[str, Any] | None:
    """One session's summary and its traces in time order (the conversation), or None."""
    where = _Where(store)
    # The session's traces are those with a span of the session (bloom filter index on session_id).
    inner = "session_id = {session:String}" + (" AND project = {project:String}" if store.project else "")
    where.add(f"trace_id IN (SELECT trace_id FROM spans WHERE {inner})", session=session_id)
    where.add("session_id = {session:String}")
    traces = _read(
        store,
        timeout_s,
        f"SELECT * FROM traces{where.sql()} ORDER BY start_time, trace_id LIMIT {{limit:UInt64}}",
        {**where.params, "limit": limit},
    )
    if not traces:
        return None
    summary = _Where(store)
    summary.add("session_id = {session:String}", session=session_id)
    sessions = _read(store, timeout_s, f"SELECT * FROM sessions{summary.sql()}", summary.params)
    if not sessions:
        return None
    return {**sessions[0], "traces": traces}


def _export_where(store: ClickHouseStore, since: datetime | None, until: datetime | None) -> _Where:
    where = _Where(store)
    if since is not None:
        where.add("start_time >= {since:DateTime64(6, 'UTC')}", since=since)
    if until is not None:
        where.add("start_time < {until:DateTime64(6, 'UTC')}", until=until)
    return where


def count_spans(
    store: ClickHouseStore, since: datetime | None, until: datetime | None
) -> tuple[int, datetime | None]:
    """How many spans start in [since, until), and the received_at bound that count saw."""
    where = _export_where(store, since, until)
    total, high = store.rows(f"SELECT count(), max(received_at) FROM spans{where.sql()}", where.params)[0]
    return int(total), (_naive(high) if total else None)


def iter_span_batches(
    store: ClickHouseStore,
    since: datetime | None,
    until: datetime | None,
    received_until: datetime | None,
    rows_per_batch: int = 20_000,
) -> Iterator[Any]:
    """Arrow record batches of the spans counted by count_spans, in start_time order: the schema
    first, then the batches (no time limit: an export may be long)."""
    import pyarrow as pa

    where = _export_where(store, since, until)
    where.add("received_at <= {received_until:DateTime64(6, 'UTC')}" if received_until else "0",
              **({"received_until": received_until} if received_until else {}))
    sql = f"SELECT * FROM spans{where.sql()} ORDER BY start_time, trace_id, span_id"
    table = store.client().query_arrow(sql, parameters=where.params)
    table = table.cast(pa.schema([_plain(f) for f in table.schema]))
    yield table.schema
    yield from table.to_batches(max_chunksize=rows_per_batch)


def _plain(field: Any) -> Any:
    """Dictionary-encoded (LowCardinality) columns as plain strings, as DuckDB exports them."""
    import pyarrow as pa

    if pa.types.is_dictionary(field.type):
        return pa.field(field.name, field.type.value_type, field.nullable)
    return field
