"""Shared page furniture: the sidebar filters, the error guard, KPI tiles and trace links."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from dashboard import client, fmt, queries
from dashboard.queries import Filters

if TYPE_CHECKING:
    from pandas.io.formats.style import Styler  # pandas' Styler needs jinja2

log = logging.getLogger("tracehouse.dashboard")

TIME_RANGES: dict[str, timedelta | None] = {
    "Last 15 minutes": timedelta(minutes=15),
    "Last hour": timedelta(hours=1),
    "Last 6 hours": timedelta(hours=6),
    "Last 24 hours": timedelta(hours=24),
    "Last 7 days": timedelta(days=7),
    "Last 30 days": timedelta(days=30),
    "All time": None,
}
DEFAULT_RANGE = "Last hour"
ALL = "All"
TRACE_PAGE = "views/trace.py"
TRACES_PAGE = "views/traces.py"
SESSIONS_PAGE = "views/sessions.py"
EPOCH = datetime(2000, 1, 1)
# Small layout touches: less empty space above pages; the span facts grid of the trace page.
CSS = """<style>
.block-container {padding-top: 2.2rem; padding-bottom: 2rem;}
[data-testid="stMetricValue"] {font-size: 1.65rem;}
.th-facts {display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; font-size: 0.9rem;
  margin: 0.25rem 0 0.75rem 0;}
.th-k {color: #64748B;}
.stTextArea textarea {font-family: "JetBrains Mono", SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.85rem;}
.th-v {font-variant-numeric: tabular-nums; overflow-wrap: anywhere;}
</style>"""


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _rounded_now(step_s: int = 5) -> datetime:
    """Now, rounded up to a few seconds: queries stay identical (and cached) within a refresh."""
    now = utcnow()
    return datetime.fromtimestamp((int(now.timestamp()) // step_s + 1) * step_s, UTC).replace(tzinfo=None)


@contextmanager
def guard() -> Iterator[None]:
    """Show any failure as one readable line; never a traceback on screen."""
    try:
        yield
    except client.NotFound as exc:
        st.warning(str(exc), icon=":material/search_off:")
    except client.ApiError as exc:
        st.error(str(exc), icon=":material/cloud_off:")
    except Exception as exc:  # noqa: BLE001 - the last line of defence for a page
        if type(exc).__module__.startswith("streamlit"):  # reruns, page switches, stops
            raise
        log.exception("dashboard page failed")
        st.error(f"Something went wrong on this page: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                 icon=":material/error:")


def options(*columns: str) -> dict[str, list[str]]:
    """Values seen in the last 30 days for each filter column (none when the collector is down)."""
    try:
        return _options(client.api_url(), columns)
    except client.ApiError:  # not cached: the lists fill in as soon as the collector answers
        return {column: [] for column in columns}


@st.cache_data(ttl=60, show_spinner=False)
def _options(base: str, columns: tuple[str, ...]) -> dict[str, list[str]]:  # base: part of the cache key
    since = (utcnow() - timedelta(days=30)).replace(minute=0, second=0, microsecond=0)
    results = client.query_many(*(queries.distinct_values(column, since) for column in columns))
    for result in results:
        if isinstance(result, client.ApiError):
            raise result
    return {column: [str(v) for v in result["value"]] for column, result in zip(columns, results)}


def sidebar() -> None:
    """The time range and service/agent filters, shared by every page through session_state."""
    with st.sidebar:
        st.selectbox("Time range", list(TIME_RANGES), index=list(TIME_RANGES).index(DEFAULT_RANGE), key="range")
        seen = options("service_name", "agent_name")
        services, agents = [ALL, *seen["service_name"]], [ALL, *seen["agent_name"]]
        for key, label, values in (("service", "Service", services), ("agent", "Agent", agents)):
            if st.session_state.get(key) not in values:
                st.session_state[key] = ALL
            st.selectbox(label, values, key=key)
        st.caption(f"Collector: `{client.api_url()}` · times in UTC")


def filters() -> Filters:
    """The current filters as a window ending now (rounded up so caches hit within a refresh)."""
    end = _rounded_now()
    span = TIME_RANGES.get(st.session_state.get("range", DEFAULT_RANGE), TIME_RANGES[DEFAULT_RANGE])
    start = EPOCH if span is None else end - span
    service = st.session_state.get("service")
    agent = st.session_state.get("agent")
    return Filters(start, end, None if service in (None, ALL) else service, None if agent in (None, ALL) else agent)


def fetch(required: dict[str, str], optional: dict[str, str] | None = None) -> dict[str, pd.DataFrame | None]:
    """A page's queries, run in parallel. An ``optional`` one (on an analytics table) gives None
    while the analytics jobs have not created its table; any other failure raises ApiError."""
    optional = optional or {}
    names = [*required, *optional]
    results = client.query_many(*required.values(), *optional.values())
    out: dict[str, pd.DataFrame | None] = {}
    for name, result in zip(names, results):
        if isinstance(result, client.ApiError):
            if name in optional and "does not exist" in str(result):
                out[name] = None
                continue
            raise result
        out[name] = result
    return out


def optional(sql: str) -> pd.DataFrame | None:
    """One analytics query, or None while its table does not exist yet."""
    return fetch({}, {"result": sql})["result"]


def _rollup_state() -> pd.Series | None:
    """queries.rollup_state's one row; None while the analytics tables do not exist."""
    state = optional(queries.rollup_state())
    return None if state is None or state.empty else state.iloc[0]


def rollup_cut(f: Filters) -> datetime | None:
    """Where the analytics rollups stop being complete for the window ending ``f.end`` (see
    queries.rollup_cut); None while the analytics jobs have not run: pages then read spans."""
    row = _rollup_state()
    return None if row is None else queries.rollup_cut(row["watermark"], row["pending_from"], f.end)


def costs_pending_from() -> datetime | None:
    """The earliest start of a trace with spans the analytics jobs have not been through yet: its
    LLM calls have no cost so far (they are priced at the next run). None when every stored span
    has been through them."""
    row = _rollup_state()
    return None if row is None or pd.isna(row["pending_from"]) else pd.Timestamp(row["pending_from"]).to_pydatetime()


def cost_pending(frame: pd.DataFrame, pending_from: datetime | None, last: str = "end_time") -> pd.Series:
    """Rows (traces or sessions) with LLM calls, no cost yet, and activity the jobs have not reached."""
    if pending_from is None or frame.empty or not {"cost_usd", "llm_calls", last} <= set(frame.columns):
        return pd.Series(False, index=frame.index)
    since = pd.Timestamp(pending_from)
    since = since.tz_localize("UTC") if since.tzinfo is None else since  # stored times are naive UTC
    recent = pd.to_datetime(frame[last], utc=True) >= since
    return frame["cost_usd"].isna() & (frame["llm_calls"].fillna(0) > 0) & recent


def pending_costs_note(frame: pd.DataFrame, what: str, last: str = "end_time") -> None:
    """One line under a table whose newest rows show no cost only because it is not computed yet."""
    pending_from = costs_pending_from()
    pending = cost_pending(frame, pending_from, last)
    if pending.any():
        st.caption(f"{fmt.count(int(pending.sum()))} of these {what} ran LLM calls since {fmt.when(pending_from)} "
                   f"that are not priced yet: their cost shows {fmt.MISSING} until the analytics jobs' "
                   "next run (every minute by default).")


NO_ANALYTICS = "Costs appear once the collector's analytics jobs have run."


def api_window(f: Filters) -> dict[str, str]:
    """The window as ISO 8601 UTC strings for the REST endpoints."""
    return {"start": f.start.isoformat(timespec="seconds") + "Z", "end": f.end.isoformat(timespec="seconds") + "Z"}


def header(title: str, caption: str | None = None) -> None:
    st.markdown(f"## {title}")
    if caption:
        st.caption(caption)


KPIS_PER_ROW = 5  # more tiles than this in one row of the main column cut their labels short ("Active ag…")


def kpis(items: list[tuple[str, str, str | None]]) -> None:
    """Metric tiles: (label, value, help). Up to KPIS_PER_ROW in one row, else two rows of equal
    tiles (7 → 4 + 3, the last row's tiles as wide as the first's)."""
    per_row = len(items) if len(items) <= KPIS_PER_ROW else -(-len(items) // 2)
    for start in range(0, len(items), per_row):
        for column, (label, value, help_) in zip(st.columns(per_row), items[start:start + per_row]):
            column.metric(label, value, help=help_, border=True)


def open_trace(trace_id: str) -> None:
    st.session_state["trace_id"] = trace_id
    st.switch_page(TRACE_PAGE, query_params={"trace_id": trace_id})


def open_session(session_id: str) -> None:
    st.session_state["session_id"] = session_id
    st.switch_page(SESSIONS_PAGE, query_params={"session": session_id})


def trace_link(trace_id: object) -> str:
    """A URL of the trace detail page (for LinkColumn cells)."""
    return f"./trace?trace_id={trace_id}" if trace_id else ""


def _unit(name: str, series: pd.Series) -> str:
    """How a column is shown, from its name (and dtype): the same on every page."""
    if name == "open":
        return "link"
    if name.endswith("_ms"):
        return "ms"
    if name.startswith("cost"):
        return "money"
    if name.endswith("_rate"):
        return "rate"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    if pd.api.types.is_integer_dtype(series) or name.endswith(("_count", "_calls", "tokens")):
        return "count"
    return "text"


NUMERIC_UNITS = ("ms", "money", "rate", "count")


def column_config(frame: pd.DataFrame, labels: dict[str, str] | None = None) -> dict[str, object]:
    """Units by column name, the same on every page: *_ms in ms, cost_usd in $, *_rate as a
    percentage bar, datetimes in UTC, counts as whole numbers, `open` as a trace link."""
    labels = labels or {}
    config: dict[str, object] = {}
    for name in frame.columns:
        label = labels.get(name) or LABELS.get(name) or name.replace("_", " ").capitalize()
        unit = _unit(name, frame[name])
        if unit == "link":
            config[name] = st.column_config.LinkColumn(label, display_text="open ›")
        elif unit == "ms":
            config[name] = st.column_config.NumberColumn(label, format="%.0f ms")
        elif unit == "money":
            config[name] = st.column_config.NumberColumn(label, format="$%.4f")
        elif unit == "rate":
            config[name] = st.column_config.ProgressColumn(label, format="percent", min_value=0.0, max_value=1.0)
        elif unit == "datetime":
            config[name] = st.column_config.DatetimeColumn(label, format="YYYY-MM-DD HH:mm:ss")
        elif unit == "count":
            config[name] = st.column_config.NumberColumn(label, format="%d")
        else:
            config[name] = label
    return config


def numeric(frame: pd.DataFrame) -> pd.DataFrame:
    """Number columns as float64. A column whose every value is NULL (no trace priced yet) comes
    from JSON as object dtype holding None; as float it stays a number column that sorts."""
    fixed: dict[str, pd.Series] = {}
    for name in frame.columns:
        series = frame[name]
        if _unit(name, series) not in NUMERIC_UNITS or pd.api.types.is_numeric_dtype(series):
            continue
        try:
            fixed[name] = pd.to_numeric(series).astype("float64")
        except (TypeError, ValueError):  # text after all (say a cost_status): shown as it is
            continue
    return frame.assign(**fixed) if fixed else frame


LABELS = {
    "llm_calls": "LLM calls", "avg_ms": "Avg", "p95_ms": "p95", "duration_ms": "Duration", "cost_usd": "Cost",
    "start_time": "Start (UTC)", "end_time": "End (UTC)", "last_seen": "Last seen (UTC)", "open": "Trace",
    "service_name": "Service", "agent_name": "Agent", "root_name": "Trace", "session_id": "Session",
    "user_id": "User", "trace_count": "Turns", "error_count": "Errors",
}


# Columns of severity/status words, coloured by their cells on every page (fmt.LEVEL_CSS).
LEVEL_COLUMNS = ("severity", "status")


def _bare_number(value: object) -> str:
    """A number as Streamlit shows one without a format: at most 4 decimals, no trailing zeros."""
    return f"{float(value):.4f}".rstrip("0").rstrip(".")  # type: ignore[arg-type]


def styled(frame: pd.DataFrame) -> pd.DataFrame | Styler:
    """The frame, with its severity/status cells coloured when it has such a column. The cells keep
    their plain words: the colour comes from the cell's style, never from a glyph."""
    levels = [c for c in LEVEL_COLUMNS if c in frame]
    if not levels or frame.empty:
        return frame
    # Streamlit draws a Styler's own text in a text cell and in a number cell without a format
    # (pandas would print 4.000000 and None): it must read as the table does without a Styler.
    bare = [c for c in frame.columns if _unit(c, frame[c]) == "text" and pd.api.types.is_numeric_dtype(frame[c])
            and not pd.api.types.is_bool_dtype(frame[c])]
    return (frame.reset_index(drop=True).style.map(fmt.level_css, subset=levels).format(na_rep=fmt.MISSING)
            .format(_bare_number, subset=bare, na_rep=fmt.MISSING))


def table(frame: pd.DataFrame, labels: dict[str, str] | None = None, *, link_traces: bool = True,
          **kwargs: object) -> object:
    """st.dataframe with the shared units; a `trace_id` column becomes an `open ›` link; NULL shows as
    fmt.MISSING (Streamlit's default would print "None", also for NaN in a number column)."""
    empty = [c for c in frame.columns if frame[c].isna().all() and not c.startswith("cost") and len(frame)]
    frame = frame.drop(columns=empty)  # a column with nothing in it (no user ids sent) is noise
    if link_traces and "trace_id" in frame and "open" not in frame:
        frame = frame.assign(open=[trace_link(t) for t in frame["trace_id"]])
    frame = numeric(frame)
    return st.dataframe(styled(frame), hide_index=True, column_config=column_config(frame, labels),
                        placeholder=fmt.MISSING, **kwargs)


def section(title: str, frame: pd.DataFrame | None, *, empty: str, missing: str | None = None,
            good_when_empty: bool = False, **table_kwargs: object) -> bool:
    """A titled table, or one line saying why there is none; True when rows were shown."""
    st.markdown(f"#### {title}")
    if frame is None:
        st.info(missing or empty, icon=":material/hourglass_empty:")
        return False
    if frame.empty:
        if good_when_empty:
            st.success(empty, icon=":material/check_circle:")
        else:
            st.caption(empty)
        return False
    table(frame, **table_kwargs)
    return True
