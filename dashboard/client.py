"""The only code that talks to the collector: its HTTP `/api`, never the DuckDB file.

Every call goes through :func:`_request`, which turns any failure (collector down, timeout,
refused SQL, bad answer) into an :class:`ApiError` with one readable line, so pages can show
that line instead of a traceback. Reads are cached with short TTLs: the overview refreshes
every few seconds and several widgets ask the same question in one run.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class SqlResult:
    frame: pd.DataFrame
    truncated: bool
    elapsed_ms: float


def api_url() -> str:
    """Base URL of the collector, from TRACEHOUSE_API_URL (read on every call, so tests can set it)."""
    return os.environ.get("TRACEHOUSE_API_URL", "").strip().rstrip("/") or DEFAULT_API_URL


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


def _request(method: str, path: str, base: str | None = None, **kwargs: Any) -> Any:
    url = (base or api_url()) + path
    try:
        response = httpx.request(method, url, timeout=TIMEOUT_S, **kwargs)
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
    return _traces(api_url(), params)


@st.cache_data(ttl=30, show_spinner=False)
def _trace(base: str, trace_id: str) -> pd.DataFrame:
    body = _request("GET", f"/api/traces/{trace_id}", base=base)
    frame = _frame(body.get("spans", []))
    return frame.sort_values("start_time", kind="stable").reset_index(drop=True) if not frame.empty else frame


def trace(trace_id: str) -> pd.DataFrame:
    """Every span of one trace; raises NotFound for an unknown id."""
    return _trace(api_url(), trace_id)


@st.cache_data(ttl=10, show_spinner=False)
def _session(base: str, session_id: str) -> dict[str, Any]:
    body = _request("GET", f"/api/sessions/{session_id}", base=base)
    return {**body, "traces": _frame(body.get("traces", []))}


def session(session_id: str) -> dict[str, Any]:
    """One session's summary with its traces (turns) as a DataFrame under "traces"."""
    return _session(api_url(), session_id)


def run_sql(sql: str, base: str | None = None) -> SqlResult:
    """Run read-only SQL through the collector's sandbox (uncached: the SQL page's own queries)."""
    body = _request("POST", "/api/sql", base=base, json={"sql": sql})
    frame = pd.DataFrame(body.get("rows", []), columns=body.get("columns", []))
    for column in frame.columns:
        series = frame[column]
        if (series.dtype == object or pd.api.types.is_string_dtype(series)) and _looks_like_datetime(series):
            frame[column] = _to_datetime(frame[column])
    return SqlResult(frame, bool(body.get("truncated")), float(body.get("elapsed_ms") or 0.0))


@st.cache_data(ttl=5, show_spinner=False)
def _query(base: str, sql: str) -> pd.DataFrame:
    return run_sql(sql, base).frame


def query(sql: str) -> pd.DataFrame:
    """Cached SQL for the pages' own aggregate queries (see dashboard/queries.py)."""
    return _query(api_url(), sql)


@st.cache_data(ttl=5, show_spinner=False)
def _query_many(base: str, sqls: tuple[str, ...]) -> list[pd.DataFrame | ApiError]:
    with ThreadPoolExecutor(max_workers=min(len(sqls), 8)) as pool:
        futures = [pool.submit(run_sql, sql, base) for sql in sqls]
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
    return _query_many(api_url(), tuple(sqls))


def _looks_like_datetime(series: pd.Series) -> bool:
    sample = series.dropna().head(5)
    return (
        not sample.empty
        and all(isinstance(v, str) and len(v) >= 19 and v[4] == "-" and v[10] == "T" for v in sample)
    )
