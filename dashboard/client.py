"""The only code that talks to the collector: its HTTP `/api`, never the DuckDB file.

Every call goes through :func:`_request`, which turns any failure (collector down, timeout,
refused SQL, bad answer) into an :class:`ApiError` with one readable line, so pages can show
that line instead of a traceback. Reads are cached with short TTLs: the overview refreshes
every few seconds and several widgets ask the same question in one run.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pandas as pd
import streamlit as st

DEFAULT_API_URL = "http://127.0.0.1:4318"
TIMEOUT_S = 30.0
DATETIME_COLUMNS = ("start_time", "end_time", "received_at", "first_seen", "last_seen")


class ApiError(Exception):
    """The collector could not answer; the message is one line a person can act on."""


class NotFound(ApiError):
    """The thing asked for does not exist (HTTP 404)."""


class Unauthorized(ApiError):
    """The collector wants a (valid) read key (HTTP 401/403)."""


def check_access() -> None:
    """Raise Unauthorized when the collector refuses this session's key (or its lack of one)."""
    _request("GET", "/api/traces", params={"limit": 1})


@dataclass(frozen=True)
class SqlResult:
    frame: pd.DataFrame
    truncated: bool
    elapsed_ms: float


def api_url() -> str:
    """Base URL of the collector, from TRACEHOUSE_API_URL (read on every call, so tests can set it)."""
    return os.environ.get("TRACEHOUSE_API_URL", "").strip().rstrip("/") or DEFAULT_API_URL


def api_key() -> str:
    """The read key: the one typed at login (this browser session), else TRACEHOUSE_API_KEY."""
    return str(st.session_state.get("api_key") or os.environ.get("TRACEHOUSE_API_KEY", "")).strip()


def auth_headers(key: str | None = None) -> dict[str, str]:
    key = api_key() if key is None else key
    return {"authorization": f"Bearer {key}"} if key else {}


def _base() -> str:
    """The cache key of a call: the collector plus a digest of the key, so that sessions logged in
    with different keys (different projects) never share a cached answer."""
    key = api_key()
    return api_url() + ("#" + hashlib.sha256(key.encode()).hexdigest()[:16] if key else "")


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list):  # FastAPI validation errors
        detail = "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail)
    text = str(detail or response.text or response.reason_phrase).strip()
    return text.splitlines()[0] if text else f"HTTP {response.status_code}"


def _request(method: str, path: str, base: str | None = None, key: str | None = None, **kwargs: Any) -> Any:
    base = (base or api_url()).split("#")[0]
    url = base + path
    try:
        response = httpx.request(method, url, timeout=TIMEOUT_S, headers=auth_headers(key), **kwargs)
    except httpx.ConnectError:
        raise ApiError(
            f"Cannot reach the collector at {base or api_url()}: is it running? "
            "(start it with `tracehouse collector`, or set TRACEHOUSE_API_URL)"
        ) from None
    except httpx.TimeoutException:
        raise ApiError(f"The collector at {base or api_url()} did not answer within {TIMEOUT_S:.0f} s") from None
    except httpx.HTTPError as exc:
        raise ApiError(f"Request to the collector failed: {exc}") from None
    if response.status_code == 404:
        raise NotFound(_detail(response))
    if response.status_code in (401, 403):
        raise Unauthorized(_detail(response))
    if response.status_code >= 400:
        raise ApiError(f"{_detail(response)} (HTTP {response.status_code})")
    try:
        return response.json()
    except ValueError:
        raise ApiError(f"The collector sent an answer that is not JSON ({path})") from None


def _clean(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v not in (None, "", [])}


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for column in DATETIME_COLUMNS:
        if column in frame.columns:
            frame[column] = _to_datetime(frame[column])
    return frame


def _to_datetime(series: pd.Series) -> pd.Series:
    """ISO 8601 strings with Z → tz-naive UTC datetimes (what every chart expects)."""
    return pd.to_datetime(series, utc=True, errors="coerce", format="ISO8601").dt.tz_localize(None)


# The cached functions take the base URL as their first argument so that a cache entry never
# outlives a change of collector (tests point one process at several).


@st.cache_data(ttl=5, show_spinner=False)
def _traces(base: str, params: dict[str, Any]) -> tuple[pd.DataFrame, int]:
    body = _request("GET", "/api/traces", base=base, params=_clean(params))
    return _frame(body.get("traces", [])), int(body.get("total", 0))


def traces(**params: Any) -> tuple[pd.DataFrame, int]:
    """One page of the trace list (filters as in GET /api/traces) and the total count."""
    return _traces(_base(), params)


@st.cache_data(ttl=30, show_spinner=False)
def _trace(base: str, trace_id: str) -> pd.DataFrame:
    body = _request("GET", f"/api/traces/{trace_id}", base=base)
    frame = _frame(body.get("spans", []))
    return frame.sort_values("start_time", kind="stable").reset_index(drop=True) if not frame.empty else frame


def trace(trace_id: str) -> pd.DataFrame:
    """Every span of one trace; raises NotFound for an unknown id."""
    return _trace(_base(), trace_id)


@st.cache_data(ttl=10, show_spinner=False)
def _session(base: str, session_id: str) -> dict[str, Any]:
    body = _request("GET", f"/api/sessions/{session_id}", base=base)
    return {**body, "traces": _frame(body.get("traces", []))}


def session(session_id: str) -> dict[str, Any]:
    """One session's summary with its traces (turns) as a DataFrame under "traces"."""
    return _session(_base(), session_id)


# The dialect of the pages' own queries (dashboard/queries.py): a ClickHouse store translates
# them; SQL typed on the SQL page is sent without one, in the store's own dialect.
PAGES_DIALECT = "duckdb"


def run_sql(sql: str, base: str | None = None, key: str | None = None, dialect: str | None = None) -> SqlResult:
    """Run read-only SQL through the collector's sandbox (uncached: the SQL page's own queries)."""
    payload = {"sql": sql} if dialect is None else {"sql": sql, "dialect": dialect}
    body = _request("POST", "/api/sql", base=base, key=key, json=payload)
    frame = pd.DataFrame(body.get("rows", []), columns=body.get("columns", []))
    for column in frame.columns:
        series = frame[column]
        if (series.dtype == object or pd.api.types.is_string_dtype(series)) and _looks_like_datetime(series):
            frame[column] = _to_datetime(frame[column])
    return SqlResult(frame, bool(body.get("truncated")), float(body.get("elapsed_ms") or 0.0))


@st.cache_data(ttl=5, show_spinner=False)
def _query(base: str, sql: str) -> pd.DataFrame:
    return run_sql(sql, base, dialect=PAGES_DIALECT).frame


def query(sql: str) -> pd.DataFrame:
    """Cached SQL for the pages' own aggregate queries (see dashboard/queries.py)."""
    return _query(_base(), sql)


@st.cache_data(ttl=5, show_spinner=False)
def _query_many(base: str, sqls: tuple[str, ...], _key: str) -> list[pd.DataFrame | ApiError]:
    # Worker threads cannot read this session's state: the key travels as an argument (the
    # underscore keeps it out of the cache key; the digest in ``base`` is there instead).
    with ThreadPoolExecutor(max_workers=min(len(sqls), 8)) as pool:
        futures = [pool.submit(run_sql, sql, base, _key, PAGES_DIALECT) for sql in sqls]
    results: list[pd.DataFrame | ApiError] = []
    for future in futures:
        try:
            results.append(future.result().frame)
        except ApiError as exc:  # kept per query: a missing analytics table fails only its own part
            results.append(exc)
    return results


def query_many(*sqls: str) -> list[pd.DataFrame | ApiError]:
    """Several queries at once, in parallel (a page's worth); each result is a frame or its error.

    The collector runs them on its thread pool, so a page waits for the slowest query rather
    than for the sum of all of them.
    """
    return _query_many(_base(), tuple(sqls), api_key())


def _looks_like_datetime(series: pd.Series) -> bool:
    sample = series.dropna().head(5)
    return (
        not sample.empty
        and all(isinstance(v, str) and len(v) >= 19 and v[4] == "-" and v[10] == "T" for v in sample)
    )
