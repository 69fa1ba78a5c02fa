"""Query API under /api: traces, one trace, sessions, read-only SQL, and a span export stream.

Handlers are thin: parse and validate parameters (one-line 400s), then run the named query of
the store's backend (collector.backend: collector.query / collector.sql_sandbox on DuckDB,
collector/clickhouse/ on ClickHouse) in the thread pool, never on the event loop.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any, Literal

import pyarrow as pa
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from collector import query, sql_sandbox
from collector.backend import Backend
from collector.deps import get_backend, get_settings, get_store
from collector.jsonvalues import parse_iso_utc
from collector.settings import Settings
from collector.store import Store


@asynccontextmanager
async def _summarize(app: FastAPI) -> AsyncIterator[None]:
    """Keep the trace summary current while the app runs (merged into the app's lifespan)."""
    backend = getattr(app.state, "backend", None)
    summarizer = backend.summarizer() if backend is not None else None
    if summarizer is not None:
        summarizer.start()
    try:
        yield
    finally:
        if summarizer is not None:
            await run_in_threadpool(summarizer.stop)


router = APIRouter(prefix="/api", tags=["query"], lifespan=_summarize)

_TRACE_ID = re.compile(r"^[0-9a-fA-F]{32}$")
StoreDep = Annotated[Store, Depends(get_store)]
# DuckDB's OFFSET is a signed 64-bit number; far past any real table, and a 400 rather than a 500.
_MAX_OFFSET = 2**62
SettingsDep = Annotated[Settings, Depends(get_settings)]
BackendDep = Annotated[Backend, Depends(get_backend)]


class SQLBody(BaseModel):
    sql: str
    # The dialect the SQL is written in; None: the store's own (DuckDB or ClickHouse). The
    # dashboard's queries are DuckDB SQL, translated on a ClickHouse store.
    dialect: Literal["duckdb", "clickhouse"] | None = None


def _time(name: str, value: str | None) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        return parse_iso_utc(value)
    except ValueError as exc:
        raise HTTPException(400, f"{name}: {exc}") from None


def _run_error(exc: Exception) -> HTTPException:
    if isinstance(exc, query.QueryTimeout):
        return HTTPException(408, str(exc))
    if isinstance(exc, query.QueryOutOfMemory):
        return HTTPException(503, str(exc))
    return HTTPException(400, str(exc))


async def _run(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return await run_in_threadpool(fn, *args, **kwargs)
    except (query.QueryTimeout, query.QueryOutOfMemory, sql_sandbox.SQLRefused, sql_sandbox.SQLFailed) as exc:
        raise _run_error(exc) from None


@router.get("/traces")
async def list_traces(
    store: StoreDep,
    backend: BackendDep,
    settings: SettingsDep,
    start: str | None = None,
    end: str | None = None,
    service: str | None = None,
    agent: str | None = None,
    model: str | None = None,
    status: Literal["ok", "error"] | None = None,
    session: str | None = None,
    workflow: str | None = None,
    min_duration_ms: Annotated[float | None, Query(ge=0)] = None,
    q: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=_MAX_OFFSET)] = 0,
    sort: Literal[tuple(query.TRACE_SORTS)] = "start_time",  # type: ignore[valid-type]
    order: Literal["asc", "desc"] = "desc",
) -> dict[str, Any]:
    """Traces matching every given filter, newest first unless ``sort``/``order`` say otherwise."""
    filters = query.TraceFilter(
        start=_time("start", start),
        end=_time("end", end),
        service=service,
        agent=agent,
        model=model,
        status=status,
        session=session,
        workflow=workflow,
        min_duration_ms=min_duration_ms,
        q=q or None,
    )
    traces, total = await _run(
        backend.queries.list_traces,
        store,
        settings.sql_timeout_s,
        filters,
        limit=limit,
        offset=offset,
        sort=sort,
        order=order,
    )
    return {"traces": traces, "total": total, "limit": limit, "offset": offset}


@router.get("/traces/{trace_id}")
async def get_trace(trace_id: str, store: StoreDep, backend: BackendDep, settings: SettingsDep) -> dict[str, Any]:
    """Every span of one trace, parents before children, each with its ``depth`` in the tree."""
    if not _TRACE_ID.match(trace_id):
        raise HTTPException(400, f"trace id must be 32 hex digits, got {trace_id[:64]!r}")
    spans = await _run(backend.queries.get_trace, store, settings.sql_timeout_s, trace_id.lower())
    if spans is None:
        raise HTTPException(404, f"trace {trace_id.lower()} not found")
    return {"trace_id": trace_id.lower(), "spans": spans}


@router.get("/sessions")
async def list_sessions(
    store: StoreDep,
    backend: BackendDep,
    settings: SettingsDep,
    start: str | None = None,
    end: str | None = None,
    user: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=_MAX_OFFSET)] = 0,
    sort: Literal[tuple(query.SESSION_SORTS)] = "last_seen",  # type: ignore[valid-type]
    order: Literal["asc", "desc"] = "desc",
) -> dict[str, Any]:
    """Sessions with a trace starting in the time range, most recently active first."""
    sessions, total = await _run(
        backend.queries.list_sessions,
        store,
        settings.sql_timeout_s,
        start=_time("start", start),
        end=_time("end", end),
        user=user,
        limit=limit,
        offset=offset,
        sort=sort,
        order=order,
    )
    return {"sessions": sessions, "total": total, "limit": limit, "offset": offset}


@router.get("/sessions/{session_id}")
async def get_session(session_id: str, store: StoreDep, backend: BackendDep, settings: SettingsDep) -> dict[str, Any]:
    """One session with its traces in time order."""
    session = await _run(backend.queries.get_session, store, settings.sql_timeout_s, session_id)
    if session is None:
        raise HTTPException(404, f"session {session_id[:200]!r} not found")
    return session


@router.post("/sql")
async def run_sql(body: SQLBody, store: StoreDep, backend: BackendDep, settings: SettingsDep) -> dict[str, Any]:
    """One read-only SELECT under the time limit and row cap (see the README's Querying section)."""
    result = await _run(
        backend.run_sql,
        store,
        body.sql,
        dialect=body.dialect,
        timeout_s=settings.sql_timeout_s,
        max_rows=settings.sql_max_rows,
        max_bytes=settings.sql_max_bytes,
    )
    return result.as_json()


@router.get("/export")
async def export_spans(
    store: StoreDep, backend: BackendDep, since: str | None = None, until: str | None = None
) -> StreamingResponse:
    """Spans starting in [since, until) as an Arrow IPC stream; the row count is in X-Total-Rows."""
    since_t, until_t = _time("since", since), _time("until", until)
    total, received_until = await run_in_threadpool(backend.queries.count_spans, store, since_t, until_t)
    batches = backend.queries.iter_span_batches(store, since_t, until_t, received_until)
    return StreamingResponse(
        _ipc_stream(batches),
        media_type="application/vnd.apache.arrow.stream",
        headers={"X-Total-Rows": str(total)},
    )


class _Chunks:
    """A write-only file object collecting what the Arrow IPC writer produces."""

    closed = False

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: Any) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        return data


def _ipc_stream(batches: Iterator[Any]) -> Iterator[bytes]:
    """Arrow IPC stream bytes, one chunk per record batch (Starlette runs sync generators in the pool)."""
    sink = _Chunks()
    schema = next(batches)
    with pa.ipc.new_stream(sink, schema) as writer:
        yield sink.take()
        for batch in batches:
            writer.write_batch(batch)
            yield sink.take()
    yield sink.take()
