"""The dashboard's SQL: every aggregate a page shows, as text sent to the collector's /api/sql.

The sandbox takes SQL text without bind parameters, so every value that comes from a person
(service, agent, search text) passes through :func:`lit`, which quotes it as a SQL string
literal. Queries filter on ``spans.start_time`` first so DuckDB can skip row groups by their
min/max, which keeps pages fast with millions of spans stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

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


def bucket_for(f: Filters) -> str:
    """Time-series bucket width that gives roughly 30-300 points for the window."""
    minutes = f.minutes
    for limit, width in ((90, "1 minute"), (6 * 60, "5 minutes"), (36 * 60, "15 minutes"), (10 * 1440, "1 hour")):
        if minutes <= limit:
            return width
    return "1 day"


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


def overview_kpis(f: Filters) -> str:
    return f"""
WITH roots AS (SELECT trace_id, duration_ms FROM spans WHERE {_trace_scope(f)}),
failed AS (SELECT DISTINCT trace_id FROM spans WHERE {span_where(f, agent_on_span=False)} AND status = 'error')
SELECT count(*) AS requests,
       avg(duration_ms) AS avg_ms,
       quantile_cont(duration_ms, 0.95) AS p95_ms,
       count(*) FILTER (WHERE trace_id IN (SELECT trace_id FROM failed)) AS failed
FROM roots"""


LIVE_WINDOW = timedelta(minutes=5)


def live_kpis(f: Filters, now: datetime) -> str:
    """Agents seen and traces started in the last few minutes, whatever the selected range."""
    live = Filters(now - LIVE_WINDOW, now + timedelta(seconds=1), f.service, f.agent)
    return f"""SELECT
  (SELECT count(DISTINCT agent_name) FROM spans WHERE {span_where(live)} AND agent_name IS NOT NULL)
    AS active_agents,
  (SELECT count(*) FROM spans WHERE {_trace_scope(live)}) AS recent_requests"""


def tokens_since(f: Filters, since: datetime, until: datetime) -> str:
    """Input + output tokens of LLM calls from ``since`` (e.g. UTC midnight) on."""
    day = Filters(since, until, f.service, f.agent)
    return f"""SELECT coalesce(sum(input_tokens), 0) + coalesce(sum(output_tokens), 0) AS tokens
FROM spans WHERE {span_where(day)} AND kind IN ('llm', 'embedding')"""


def cost_since(f: Filters, since: datetime, until: datetime) -> str:
    """Priced spend and unpriced calls from ``since`` on (analytics table)."""
    day = Filters(since, until, f.service, f.agent)
    return f"""SELECT sum(cost_usd) AS cost_usd, count(*) FILTER (WHERE {UNPRICED}) AS unpriced_calls
FROM {COSTS} WHERE {span_where(day)}"""


def overview_series(f: Filters) -> str:
    width = bucket_for(f)
    return f"""
WITH roots AS (SELECT trace_id, start_time, duration_ms FROM spans WHERE {_trace_scope(f)}),
failed AS (SELECT DISTINCT trace_id FROM spans WHERE {span_where(f, agent_on_span=False)} AND status = 'error'),
traffic AS (
  SELECT time_bucket(INTERVAL '{width}', start_time) AS bucket,
         count(*) AS requests,
         count(*) FILTER (WHERE trace_id IN (SELECT trace_id FROM failed)) AS errors,
         avg(duration_ms) AS avg_ms,
         quantile_cont(duration_ms, 0.95) AS p95_ms
  FROM roots GROUP BY ALL)
SELECT * FROM traffic ORDER BY bucket"""


def cost_series(f: Filters) -> str:
    return f"""SELECT time_bucket(INTERVAL '{bucket_for(f)}', start_time) AS bucket, sum(cost_usd) AS cost_usd
FROM {COSTS} WHERE {span_where(f)} GROUP BY ALL ORDER BY bucket"""


def top_errors(f: Filters, limit: int = 10) -> str:
    return f"""SELECT coalesce(error_type, left(status_message, 160), 'error without message') AS error,
       kind, count(*) AS count, count(DISTINCT trace_id) AS traces,
       arg_max(status_message, start_time) AS last_message,
       max(start_time) AS last_seen, arg_max(trace_id, start_time) AS example_trace
FROM spans WHERE {span_where(f)} AND status = 'error'
GROUP BY ALL ORDER BY count DESC, last_seen DESC LIMIT {int(limit)}"""


def distinct_values(column: str, since: datetime) -> str:
    if column not in {"service_name", "agent_name", "model"}:
        raise ValueError(f"no filter on {column}")
    return f"""SELECT DISTINCT {column} AS value FROM spans
WHERE start_time >= {lit(since)} AND {column} IS NOT NULL ORDER BY value LIMIT 500"""


def agent_stats(f: Filters) -> str:
    return f"""SELECT agent_name AS agent,
       count(*) FILTER (WHERE kind = 'agent') AS runs,
       count(*) FILTER (WHERE kind = 'llm') AS llm_calls,
       count(*) FILTER (WHERE kind = 'tool') AS tool_calls,
       avg(duration_ms) FILTER (WHERE kind = 'agent') AS avg_ms,
       quantile_cont(duration_ms, 0.95) FILTER (WHERE kind = 'agent') AS p95_ms,
       count(*) FILTER (WHERE kind = 'agent' AND status = 'error')
         / greatest(count(*) FILTER (WHERE kind = 'agent'), 1) AS error_rate,
       coalesce(sum(input_tokens), 0) + coalesce(sum(output_tokens), 0) AS tokens
FROM spans WHERE {span_where(f)} AND agent_name IS NOT NULL
GROUP BY ALL ORDER BY runs DESC, agent"""


def handoffs(f: Filters) -> str:
    return f"""WITH h AS (SELECT trace_id, coalesce(handoff_from, agent_name, '?') AS source,
                  coalesce(handoff_to, '?') AS target, status
           FROM spans WHERE {span_where(f, agent_on_span=False)} AND kind = 'handoff'
           {f"AND (handoff_from = {lit(f.agent)} OR handoff_to = {lit(f.agent)})" if f.agent else ""}),
failed AS (SELECT DISTINCT trace_id FROM spans WHERE {span_where(f, agent_on_span=False)} AND status = 'error')
SELECT source, target, count(*) AS count,
       count(*) FILTER (WHERE status = 'error') AS handoff_errors,
       count(*) FILTER (WHERE trace_id IN (SELECT trace_id FROM failed)) / count(*) AS run_failure_rate
FROM h GROUP BY ALL ORDER BY count DESC"""


def guardrails(f: Filters) -> str:
    return f"""SELECT name AS guardrail, coalesce(agent_name, '') AS agent, count(*) AS checks,
       count(*) FILTER (WHERE guardrail_triggered) AS trips,
       count(*) FILTER (WHERE guardrail_triggered) / count(*) AS trip_rate
FROM spans WHERE {span_where(f)} AND kind = 'guardrail'
GROUP BY ALL ORDER BY trip_rate DESC, checks DESC"""


def tool_stats(f: Filters) -> str:
    return f"""SELECT coalesce(tool_name, name) AS tool, count(*) AS calls,
       count(*) FILTER (WHERE status = 'error') AS failures,
       count(*) FILTER (WHERE status = 'error') / count(*) AS failure_rate,
       avg(duration_ms) AS avg_ms, quantile_cont(duration_ms, 0.95) AS p95_ms,
       arg_max(status_message, start_time) FILTER (WHERE status = 'error') AS last_error
FROM spans WHERE {span_where(f)} AND kind = 'tool'
GROUP BY ALL ORDER BY failure_rate DESC, calls DESC"""


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
    """The costliest traces in the window, from the per-span costs (the truth for money)."""
    return f"""WITH spend AS (
  SELECT trace_id, sum(cost_usd) AS cost_usd, count(*) AS llm_calls,
         count(*) FILTER (WHERE {UNPRICED}) AS unpriced_calls
  FROM {COSTS} WHERE {span_where(f)} GROUP BY trace_id HAVING sum(cost_usd) IS NOT NULL
  ORDER BY cost_usd DESC LIMIT {int(limit)})
SELECT t.start_time, t.root_name, t.service_name, t.duration_ms, s.llm_calls, s.unpriced_calls, s.cost_usd,
       s.trace_id
FROM spend s JOIN traces t USING (trace_id) ORDER BY s.cost_usd DESC"""


def span_costs(trace_id: str) -> str:
    """Cost of each priced span of one trace (for the trace detail page)."""
    return f"""SELECT span_id, cost_usd, cost_status, price_model FROM {COSTS} WHERE trace_id = {lit(trace_id)}"""


def recent_rows(table: str, time_column: str, f: Filters, limit: int = 500) -> str:
    """Rows of an analytics table (anomalies, alerts) in the window, newest first."""
    return f"""SELECT * FROM {table}
WHERE {time_column} >= {lit(f.start)} AND {time_column} < {lit(f.end)}
ORDER BY {time_column} DESC LIMIT {int(limit)}"""
