"""The dashboard's SQL: every aggregate a page shows, as text sent to the collector's /api/sql.

The sandbox takes SQL text without bind parameters, so every value that comes from a person
(service, agent, search text) passes through :func:`lit`, which quotes it as a SQL string
literal. Queries filter on ``spans.start_time`` first so DuckDB can skip row groups by their
min/max, which keeps pages fast with millions of spans stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

# Per-span costs are written by the analytics jobs into span_costs (one row per LLM/embedding
# span, with its start_time, service, agent and model copied), cost_usd NULL when unpriced.
COSTS = "span_costs"
UNPRICED = "cost_status = 'unpriced'"


@dataclass(frozen=True)
class Filters:
    """The shared sidebar filters: a half-open UTC time window plus optional service and agent."""

    start: datetime
    end: datetime
    service: str | None = None
    agent: str | None = None

    @property
    def minutes(self) -> float:
        return max((self.end - self.start).total_seconds() / 60.0, 1e-9)


def lit(value: object) -> str:
    """A SQL literal for a string, number, bool, None or naive-UTC datetime."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, datetime):
        return f"TIMESTAMP '{value.isoformat(sep=' ', timespec='microseconds')}'"
    return "'" + str(value).replace("'", "''") + "'"


# (longest window in minutes, bucket as a SQL interval, bucket in ms): about 30-300 points.
BUCKETS = ((90, "1 minute", 60e3), (6 * 60, "5 minutes", 300e3), (36 * 60, "15 minutes", 900e3),
           (10 * 1440, "1 hour", 3600e3), (float("inf"), "1 day", 86400e3))


def bucket_for(f: Filters) -> str:
    """Time-series bucket width (SQL interval) for the window."""
    return next(width for limit, width, _ in BUCKETS if f.minutes <= limit)


def bucket_ms(f: Filters) -> float:
    return next(ms for limit, _, ms in BUCKETS if f.minutes <= limit)


def span_where(f: Filters, *, alias: str = "", agent_on_span: bool = True) -> str:
    """WHERE clause for spans in the window, with service (and agent) filters."""
    p = f"{alias}." if alias else ""
    parts = [f"{p}start_time >= {lit(f.start)}", f"{p}start_time < {lit(f.end)}"]
    if f.service:
        parts.append(f"{p}service_name = {lit(f.service)}")
    if f.agent and agent_on_span:
        parts.append(f"{p}agent_name = {lit(f.agent)}")
    return " AND ".join(parts)


def _trace_scope(f: Filters) -> str:
    """Root spans of traces in the window (an agent filter keeps traces where that agent ran)."""
    where = span_where(f, agent_on_span=False) + " AND parent_span_id IS NULL"
    if f.agent:
        where += (
            f" AND trace_id IN (SELECT trace_id FROM spans WHERE {span_where(f, agent_on_span=True)})"
        )
    return where


def trace_where(f: Filters) -> str:
    """WHERE clause on the ``traces`` view (one row per trace, kept current by the collector)."""
    parts = [f"start_time >= {lit(f.start)}", f"start_time < {lit(f.end)}"]
    if f.service:
        parts.append(f"service_name = {lit(f.service)}")
    if f.agent:
        parts.append(f"list_contains(agents, {lit(f.agent)})")
    return " AND ".join(parts)


def _floor_minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def _ceil_minute(at: datetime) -> datetime:
    floor = _floor_minute(at)
    return floor if floor == at else floor + timedelta(minutes=1)


def rollup_state() -> str:
    """How far the analytics rollups are complete: the jobs' watermark (on received_at), and the
    earliest start of a span received since then or of the trace it belongs to (its minute and
    every later one may still change). Both NULL while the jobs have not run."""
    return """WITH w AS (SELECT max(watermark) AS w FROM analytics_state WHERE job = 'spans'),
pending AS (SELECT trace_id, start_time FROM spans
            WHERE received_at > (SELECT coalesce(w, TIMESTAMP '1970-01-01') FROM w))
SELECT (SELECT w FROM w) AS watermark,
       least((SELECT min(start_time) FROM pending),
             (SELECT min(start_time) FROM traces WHERE trace_id IN (SELECT trace_id FROM pending))) AS pending_from"""


def rollup_cut(watermark: datetime | None, pending_from: datetime | None, end: datetime) -> datetime | None:
    """The minute before which minute_rollup/error_minutes hold every stored span (None: no rollups).

    Minutes from the cut on are read from the spans, so live numbers stay live; with nothing
    pending the rollup covers the whole window.
    """
    if watermark is None or pd.isna(watermark):
        return None
    if pending_from is None or pd.isna(pending_from):
        return _ceil_minute(end)
    return _floor_minute(pd.Timestamp(pending_from).to_pydatetime())


def split(f: Filters, cut: datetime | None) -> tuple[Filters | None, list[Filters]]:
    """The window as whole minutes the rollup covers, plus the raw edges: the partial first
    minute, and everything from ``cut`` (at the latest the current minute) on. Without a cut,
    all raw."""
    if cut is None:
        return None, [f]
    lo, hi = _ceil_minute(f.start), min(cut, _floor_minute(f.end))
    if hi <= lo:
        return None, [f]
    raw = [Filters(f.start, lo, f.service, f.agent)] if f.start < lo else []
    if hi < f.end:
        raw.append(Filters(hi, f.end, f.service, f.agent))
    return Filters(lo, hi, f.service, f.agent), raw


LIVE_WINDOW = timedelta(minutes=5)


def live_kpis(f: Filters, now: datetime) -> str:
    """Agents seen and traces started in the last few minutes, whatever the selected range."""
    live = Filters(now - LIVE_WINDOW, now + timedelta(seconds=1), f.service, f.agent)
    return f"""SELECT
  (SELECT count(DISTINCT agent_name) FROM spans WHERE {span_where(live)} AND agent_name IS NOT NULL)
    AS active_agents,
  (SELECT count(*) FROM spans WHERE {_trace_scope(live)}) AS recent_requests"""


def tokens_since(f: Filters, since: datetime, until: datetime, cut: datetime | None = None) -> str:
    """Input + output tokens of LLM calls from ``since`` (e.g. UTC midnight) on: the analytics
    per-minute rollup for whole minutes before ``cut``, the spans themselves for the rest."""
    day = Filters(since, until, f.service, f.agent)
    rolled, raw = split(day, cut)
    parts = [f"SELECT sum(total_tokens) AS tokens FROM minute_rollup WHERE {minute_where(rolled)}"] if rolled else []
    parts += [f"""SELECT sum(coalesce(input_tokens, 0) + coalesce(output_tokens, 0)) AS tokens
FROM spans WHERE {span_where(w)} AND kind = 'llm'""" for w in raw]
    return f"SELECT coalesce(sum(tokens), 0) AS tokens FROM ({' UNION ALL '.join(parts)})"


def overview_numbers(f: Filters, now: datetime, since: datetime, cut: datetime | None) -> str:
    """The overview's live counts and tokens since ``since`` as one row: one request and one
    statement instead of two (each pays the sandbox's parse)."""
    return f"SELECT * FROM ({live_kpis(f, now)}) CROSS JOIN ({tokens_since(f, since, now, cut)})"


def _cost_parts(f: Filters, cut: datetime | None, bucket: str | None = None) -> str:
    """Priced cost in the window (per time bucket when given): the per-minute rollup for the
    minutes it covers, the analytics span_costs for the rest."""
    rolled, raw = split(f, cut)
    by = (lambda column: f"time_bucket(INTERVAL '{bucket}', {column}) AS bucket, ") if bucket else (lambda _: "")
    group = " GROUP BY ALL" if bucket else ""
    parts = [f"SELECT {by('minute')}sum(cost_usd) AS cost_usd FROM minute_rollup WHERE {minute_where(rolled)}{group}"
             ] if rolled else []
    parts += [f"SELECT {by('start_time')}sum(cost_usd) AS cost_usd FROM {COSTS} WHERE {span_where(w)}{group}"
              for w in raw]
    return " UNION ALL ".join(parts)


def cost_since(f: Filters, since: datetime, until: datetime, cut: datetime | None = None) -> str:
    """Priced spend and unpriced calls from ``since`` on (analytics tables)."""
    day = Filters(since, until, f.service, f.agent)
    return f"""SELECT (SELECT sum(cost_usd) FROM ({_cost_parts(day, cut)})) AS cost_usd,
       (SELECT count(*) FROM {COSTS} WHERE {span_where(day)} AND {UNPRICED}) AS unpriced_calls"""


def overview_series(f: Filters) -> str:
    """Traces started, failed, mean and exact p95 duration per time bucket, and over the whole
    window in the row where ``total`` is 1: both from one scan of ``traces`` (grouping sets)."""
    bucket = f"time_bucket(INTERVAL '{bucket_for(f)}', start_time)"
    return f"""SELECT {bucket} AS bucket, count(*) AS requests,
       count(*) FILTER (WHERE status = 'error') AS errors, avg(duration_ms) AS avg_ms,
       quantile_cont(duration_ms, 0.95) AS p95_ms, grouping({bucket}) AS total
FROM traces WHERE {trace_where(f)} GROUP BY GROUPING SETS (({bucket}), ()) ORDER BY total DESC, bucket"""


def cost_series(f: Filters, cut: datetime | None = None) -> str:
    return f"""SELECT bucket, sum(cost_usd) AS cost_usd FROM ({_cost_parts(f, cut, bucket_for(f))})
GROUP BY ALL ORDER BY bucket"""


ERROR_KEY = "coalesce(error_type, left({0}, 160), 'error without message')"


def top_errors(f: Filters, limit: int = 10) -> str:
    return f"""SELECT {ERROR_KEY.format("status_message")} AS error,
       kind, count(*) AS count, count(DISTINCT trace_id) AS traces,
       arg_max(status_message, start_time) AS last_message,
       max(start_time) AS last_seen, arg_max(trace_id, start_time) AS example_trace
FROM spans WHERE {span_where(f)} AND status = 'error'
GROUP BY ALL ORDER BY count DESC, last_seen DESC LIMIT {int(limit)}"""


def minute_where(f: Filters) -> str:
    """span_where for the analytics per-minute tables (keyed by ``minute``, not start_time)."""
    minute = Filters(_floor_minute(f.start), f.end, f.service, f.agent)
    return span_where(minute).replace("start_time", "minute")


def top_errors_split(f: Filters, cut: datetime | None, limit: int = 10) -> str:
    """top_errors from the analytics per-minute error counts for the minutes they cover (a few
    thousand rows, not every span) plus the failed spans of the rest of the window."""
    rolled, raw = split(f, cut)
    if rolled is None:
        return top_errors(f, limit)
    parts = [f"""SELECT {ERROR_KEY.format("sample_message")} AS error, kind, sum(errors) AS count,
       arg_max(sample_message, minute) AS last_message, max(minute) AS last_seen,
       arg_max(sample_trace_id, minute) AS example_trace
FROM error_minutes WHERE {minute_where(rolled)} GROUP BY ALL"""]
    parts += [f"""SELECT {ERROR_KEY.format("status_message")} AS error, kind, count(*) AS count,
       arg_max(status_message, start_time) AS last_message, max(start_time) AS last_seen,
       arg_max(trace_id, start_time) AS example_trace
FROM spans WHERE {span_where(w)} AND status = 'error' GROUP BY ALL""" for w in raw]
    return f"""SELECT error, kind, sum(count) AS count, arg_max(last_message, last_seen) AS last_message,
       max(last_seen) AS last_seen, arg_max(example_trace, last_seen) AS example_trace
FROM ({" UNION ALL ".join(parts)}) GROUP BY ALL ORDER BY count DESC, last_seen DESC LIMIT {int(limit)}"""


# Filter values come from the one-row-per-trace summary (a tenth of the spans' rows).
_TRACE_VALUES = {"service_name": "service_name", "agent_name": "unnest(agents)", "model": "unnest(models)",
                 "workflow": "coalesce(workflow_name, root_name)"}


def distinct_values(column: str, since: datetime) -> str:
    if column not in _TRACE_VALUES:
        raise ValueError(f"no filter on {column}")
    return f"""SELECT DISTINCT value FROM (SELECT {_TRACE_VALUES[column]} AS value FROM traces
WHERE start_time >= {lit(since)}) WHERE value IS NOT NULL ORDER BY value LIMIT 500"""


RECENT_SESSIONS = 200  # sessions the sessions page lists


def recent_sessions(f: Filters, limit: int = RECENT_SESSIONS) -> str:
    """The most recently active sessions in the window, with their totals.

    Grouping every session of a busy day is slow (hundreds of thousands of groups), so the
    newest traces pick the sessions first and only those are aggregated.
    """
    return f"""WITH ids AS (
  SELECT DISTINCT session_id FROM (
    SELECT session_id FROM traces WHERE {trace_where(f)} AND session_id IS NOT NULL
    ORDER BY end_time DESC LIMIT {int(limit) * 10}))
SELECT session_id, any_value(user_id) AS user_id, min(start_time) AS first_seen, max(end_time) AS last_seen,
       count(*) AS trace_count, count(*) FILTER (WHERE status = 'error') AS error_traces,
       sum(llm_calls) AS llm_calls, sum(tool_calls) AS tool_calls, sum(input_tokens) AS input_tokens,
       sum(output_tokens) AS output_tokens, sum(cost_usd) AS cost_usd
FROM traces WHERE session_id IN (SELECT session_id FROM ids) AND {trace_where(f)}
GROUP BY session_id ORDER BY last_seen DESC LIMIT {int(limit)}"""


def session_count(f: Filters) -> str:
    return f"""SELECT approx_count_distinct(session_id) AS sessions FROM traces WHERE {trace_where(f)}"""


def cost_by(f: Filters, dimension: str) -> str:
    columns = {"model": "model", "agent": "agent_name", "service": "service_name", "provider": "provider"}
    column = columns[dimension]
    return f"""SELECT coalesce({column}, '(none)') AS {dimension}, sum(cost_usd) AS cost_usd,
       count(*) AS llm_calls,
       coalesce(sum(input_tokens), 0) AS input_tokens, coalesce(sum(output_tokens), 0) AS output_tokens,
       coalesce(sum(cached_tokens), 0) AS cached_tokens,
       count(*) FILTER (WHERE {UNPRICED}) AS unpriced_calls
FROM {COSTS} WHERE {span_where(f)}
GROUP BY ALL ORDER BY cost_usd DESC NULLS LAST, llm_calls DESC"""


def cost_by_day(f: Filters) -> str:
    return f"""SELECT date_trunc('day', start_time) AS day, coalesce(model, '(none)') AS model,
       sum(cost_usd) AS cost_usd
FROM {COSTS} WHERE {span_where(f)} AND cost_usd IS NOT NULL
GROUP BY ALL ORDER BY day, model"""


def unpriced_models(f: Filters) -> str:
    return f"""SELECT coalesce(model, '<none>') AS model, coalesce(provider, '') AS provider, count(*) AS llm_calls,
       coalesce(sum(input_tokens), 0) + coalesce(sum(output_tokens), 0) AS tokens,
       max(start_time) AS last_seen
FROM {COSTS} WHERE {span_where(f)} AND {UNPRICED}
GROUP BY ALL ORDER BY llm_calls DESC"""


def expensive_traces(f: Filters, limit: int = 15) -> str:
    """The costliest traces in the window (trace cost = sum of its priced calls)."""
    return f"""SELECT start_time, root_name, service_name, duration_ms, llm_calls, cost_usd, trace_id
FROM traces WHERE {trace_where(f)} AND cost_usd IS NOT NULL ORDER BY cost_usd DESC LIMIT {int(limit)}"""


def span_costs(trace_id: str) -> str:
    """Cost of each priced span of one trace (for the trace detail page)."""
    return f"""SELECT span_id, cost_usd, cost_status, price_model FROM {COSTS} WHERE trace_id = {lit(trace_id)}"""


def recent_rows(table: str, time_column: str, f: Filters, limit: int = 500) -> str:
    """Rows of an analytics table (anomalies, alerts) in the window, newest first."""
    return f"""SELECT * FROM {table}
WHERE {time_column} >= {lit(f.start)} AND {time_column} < {lit(f.end)}
ORDER BY {time_column} DESC LIMIT {int(limit)}"""


# The SQL page's examples (DuckDB SQL; sent as such, a ClickHouse store translates them).
SQL_EXAMPLES: dict[str, str] = {
    "Slowest traces today": """SELECT trace_id, root_name, service_name, duration_ms, span_count, cost_usd
FROM traces
WHERE start_time >= current_date
ORDER BY duration_ms DESC
LIMIT 20""",
    "Cost per agent per day": """SELECT date_trunc('day', start_time) AS day, agent_name, sum(cost_usd) AS cost_usd
FROM spans
WHERE agent_name IS NOT NULL
GROUP BY ALL
ORDER BY day, cost_usd DESC""",
    "Which tool fails most": """SELECT tool_name, count(*) AS calls,
       count(*) FILTER (WHERE status = 'error') AS failures,
       round(100.0 * failures / calls, 1) AS failure_pct
FROM spans
WHERE kind = 'tool'
GROUP BY ALL
ORDER BY failures DESC""",
    "p95 latency by model": """SELECT model, count(*) AS calls,
       round(quantile_cont(duration_ms, 0.95)) AS p95_ms,
       round(avg(duration_ms)) AS avg_ms
FROM spans
WHERE kind = 'llm' AND model IS NOT NULL
GROUP BY ALL
ORDER BY p95_ms DESC""",
    "Requests per minute (last hour)": """SELECT time_bucket(INTERVAL '1 minute', start_time) AS minute, count(*) AS requests
FROM spans
WHERE parent_span_id IS NULL AND start_time >= now()::TIMESTAMP - INTERVAL '1 hour'
GROUP BY ALL
ORDER BY minute""",
    "Errors by message": """SELECT kind, coalesce(error_type, status_message) AS error, count(*) AS spans
FROM spans
WHERE status = 'error'
GROUP BY ALL
ORDER BY spans DESC
LIMIT 20""",
}
