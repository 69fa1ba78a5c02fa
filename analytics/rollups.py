"""SQL of the analytics jobs: read new spans, build trace summaries and per-minute rollups.

Readers take a ``store.cursor()``; writers are functions of a connection, run by the writer
thread (``writer.execute``) inside its transaction. Every write deletes the keys it recomputes
and inserts them again, so a job can be re-run and late spans simply recompute their minute.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from collector.rollup import chunk_end

HIST_BASE = 1.1  # latency histogram bucket ratio: quantiles from it are within ±5 %

LLM_SPANS_SQL = """
SELECT trace_id, span_id, start_time, project, service_name, session_id, agent_name, model, provider,
       input_tokens, cached_tokens, cache_write_tokens, output_tokens, reasoning_tokens
FROM spans
WHERE trace_id IN (SELECT trace_id FROM _traces) AND kind IN ('llm', 'embedding')
"""

TRACE_FEATURES_SQL = """
WITH s AS MATERIALIZED (  -- the columns used, not the payloads: read twice, so kept (and spilled) once
    SELECT trace_id, span_id, project, service_name, workflow_name, agent_name, session_id, start_time, end_time,
           kind, status, input_tokens, output_tokens, tool_name,
           CASE WHEN kind = 'tool' THEN md5(coalesce(input, '')) END AS input_md5
    FROM spans WHERE trace_id IN (SELECT trace_id FROM _traces)
), repeats AS (
    SELECT trace_id, tool_name, count(*) AS n
    FROM s WHERE kind = 'tool' GROUP BY trace_id, tool_name, input_md5
), top_repeat AS (
    SELECT trace_id, max(n) AS max_repeated_tool_calls, first(tool_name ORDER BY n DESC, tool_name) AS repeated_tool
    FROM repeats GROUP BY trace_id
), costs AS (
    SELECT trace_id, sum(cost_usd) AS cost_usd,
           count(*) FILTER (WHERE cost_status = 'unpriced') AS unpriced_calls
    FROM span_costs WHERE trace_id IN (SELECT trace_id FROM _traces) GROUP BY trace_id
)
SELECT s.trace_id,
       coalesce(first(s.project ORDER BY s.start_time, s.span_id), 'default') AS project,
       first(s.service_name ORDER BY s.start_time, s.span_id) AS service_name,
       first(s.workflow_name ORDER BY s.start_time, s.span_id) FILTER (WHERE s.workflow_name IS NOT NULL) AS workflow_name,
       first(s.agent_name ORDER BY s.start_time, s.span_id) FILTER (WHERE s.agent_name IS NOT NULL) AS agent_name,
       first(s.session_id ORDER BY s.start_time, s.span_id) FILTER (WHERE s.session_id IS NOT NULL) AS session_id,
       min(s.start_time) AS start_time, max(s.end_time) AS end_time,
       date_diff('microsecond', min(s.start_time), max(s.end_time)) / 1000.0 AS duration_ms,
       count(*) AS spans,
       count(*) FILTER (WHERE s.kind = 'llm') AS llm_calls,
       count(*) FILTER (WHERE s.kind = 'tool') AS tool_calls,
       count(*) FILTER (WHERE s.kind = 'handoff') AS handoffs,
       count(*) FILTER (WHERE s.status = 'error') AS errors,
       coalesce(sum(s.input_tokens) FILTER (WHERE s.kind = 'llm'), 0) AS input_tokens,
       coalesce(sum(s.output_tokens) FILTER (WHERE s.kind = 'llm'), 0) AS output_tokens,
       coalesce(sum(coalesce(s.input_tokens, 0) + coalesce(s.output_tokens, 0)) FILTER (WHERE s.kind = 'llm'), 0)
           AS total_tokens,
       any_value(c.cost_usd) AS cost_usd,
       coalesce(any_value(c.unpriced_calls), 0) AS unpriced_calls,
       coalesce(any_value(r.max_repeated_tool_calls), 0) AS max_repeated_tool_calls,
       any_value(r.repeated_tool) AS repeated_tool,
       CASE WHEN count(*) FILTER (WHERE s.status = 'error') > 0 THEN 'error' ELSE 'ok' END AS status
FROM s LEFT JOIN costs c USING (trace_id) LEFT JOIN top_repeat r USING (trace_id)
GROUP BY s.trace_id
"""

# Minutes are recomputed whole: every project/service/agent row of an affected minute.
MINUTE_ROLLUP_SQL = f"""
WITH sp AS (
    SELECT date_trunc('minute', start_time) AS minute, project, service_name, agent_name,
           count(*) AS spans,
           count(*) FILTER (WHERE kind = 'llm') AS llm_calls,
           count(*) FILTER (WHERE kind = 'tool') AS tool_calls,
           count(*) FILTER (WHERE status = 'error') AS errors,
           coalesce(sum(input_tokens) FILTER (WHERE kind = 'llm'), 0) AS input_tokens,
           coalesce(sum(output_tokens) FILTER (WHERE kind = 'llm'), 0) AS output_tokens
    FROM spans
    WHERE start_time >= $lo AND start_time < $hi
      AND date_trunc('minute', start_time) IN (SELECT minute FROM _minutes)
    GROUP BY ALL
), co AS (
    SELECT date_trunc('minute', start_time) AS minute, project, service_name, agent_name, sum(cost_usd) AS cost_usd
    FROM span_costs
    WHERE start_time >= $lo AND start_time < $hi
      AND date_trunc('minute', start_time) IN (SELECT minute FROM _minutes)
    GROUP BY ALL
), t AS (
    SELECT date_trunc('minute', start_time) AS minute, project, service_name, agent_name, duration_ms, status,
           CAST(floor(ln(greatest(duration_ms, 1.0)) / ln({HIST_BASE})) AS SMALLINT) AS b
    FROM trace_features
    WHERE start_time >= $lo AND start_time < $hi
      AND date_trunc('minute', start_time) IN (SELECT minute FROM _minutes)
), tr AS (
    SELECT minute, project, service_name, agent_name, count(*) AS traces_started,
           count(*) FILTER (WHERE status = 'error') AS traces_failed,
           sum(duration_ms) AS latency_sum_ms,
           quantile_cont(duration_ms, 0.5) AS latency_p50_ms,
           quantile_cont(duration_ms, 0.95) AS latency_p95_ms,
           quantile_cont(duration_ms, 0.99) AS latency_p99_ms
    FROM t GROUP BY ALL
), hist AS (
    SELECT minute, project, service_name, agent_name, list({{'b': b, 'n': n}} ORDER BY b) AS latency_hist
    FROM (SELECT minute, project, service_name, agent_name, b, CAST(count(*) AS INTEGER) AS n FROM t GROUP BY ALL)
    GROUP BY ALL
), parts AS (
    SELECT * FROM sp UNION ALL BY NAME SELECT * FROM co UNION ALL BY NAME SELECT * FROM tr
    UNION ALL BY NAME SELECT * FROM hist
)
SELECT minute, project, service_name, agent_name,
       coalesce(sum(spans), 0) AS spans, coalesce(sum(llm_calls), 0) AS llm_calls,
       coalesce(sum(tool_calls), 0) AS tool_calls, coalesce(sum(errors), 0) AS errors,
       coalesce(sum(traces_started), 0) AS traces_started, coalesce(sum(traces_failed), 0) AS traces_failed,
       coalesce(sum(input_tokens), 0) AS input_tokens, coalesce(sum(output_tokens), 0) AS output_tokens,
       coalesce(sum(input_tokens), 0) + coalesce(sum(output_tokens), 0) AS total_tokens,
       sum(cost_usd) AS cost_usd, coalesce(sum(latency_sum_ms), 0) AS latency_sum_ms,
       max(latency_p50_ms) AS latency_p50_ms, max(latency_p95_ms) AS latency_p95_ms,
       max(latency_p99_ms) AS latency_p99_ms, any_value(latency_hist) AS latency_hist
FROM parts GROUP BY ALL
"""

def _same_call(left: str, right: str) -> str:
    """Join condition on a call's group: its keys may be NULL (no service, no agent, no handoff
    target), which USING would never match, losing the histogram and the failed runs."""
    keys = ("minute", "project", "service_name", "agent_name", "kind", "name", "target")
    return " AND ".join(f"{left}.{k} IS NOT DISTINCT FROM {right}.{k}" for k in keys)


# Agent runs, tool calls, guardrail checks and handoffs per minute (of span start), service,
# agent and what was called: the dashboard's agents page without scanning every span.
# ``run_failures`` counts calls whose trace failed (trace_features is written before this runs).
CALL_MINUTES_SQL = f"""
WITH s AS (
    SELECT date_trunc('minute', start_time) AS minute, project, service_name, agent_name, kind,
           CASE kind WHEN 'tool' THEN coalesce(tool_name, name)
                     WHEN 'handoff' THEN coalesce(handoff_from, agent_name, '?')
                     WHEN 'agent' THEN agent_name ELSE name END AS name,
           CASE WHEN kind = 'handoff' THEN coalesce(handoff_to, '?') END AS target,
           trace_id, start_time, status, status_message, duration_ms, guardrail_triggered,
           CAST(floor(ln(greatest(duration_ms, 1.0)) / ln({HIST_BASE})) AS SMALLINT) AS b
    FROM spans
    WHERE start_time >= $lo AND start_time < $hi AND kind IN ('agent', 'tool', 'guardrail', 'handoff')
      AND date_trunc('minute', start_time) IN (SELECT minute FROM _minutes)
      AND (kind <> 'agent' OR agent_name IS NOT NULL)
), calls AS (
    SELECT minute, project, service_name, agent_name, kind, name, target, count(*) AS calls,
           count(*) FILTER (WHERE status = 'error') AS errors,
           count(*) FILTER (WHERE guardrail_triggered) AS trips,
           sum(duration_ms) AS duration_sum_ms,
           arg_max(status_message, start_time) FILTER (WHERE status = 'error') AS last_error,
           max(start_time) FILTER (WHERE status = 'error') AS last_error_at
    FROM s GROUP BY ALL
), failed AS (
    SELECT minute, project, service_name, agent_name, kind, name, target, count(*) AS run_failures
    FROM s WHERE kind = 'handoff'
      AND trace_id IN (SELECT trace_id FROM trace_features WHERE status = 'error'
                       AND start_time < $hi)
    GROUP BY ALL
), hist AS (
    SELECT minute, project, service_name, agent_name, kind, name, target,
           list({{'b': b, 'n': n}} ORDER BY b) AS latency_hist
    FROM (SELECT minute, project, service_name, agent_name, kind, name, target, b, CAST(count(*) AS INTEGER) AS n
          FROM s GROUP BY ALL)
    GROUP BY ALL
)
SELECT c.*, coalesce(f.run_failures, 0) AS run_failures, h.latency_hist
FROM calls c
LEFT JOIN failed f ON {_same_call("c", "f")}
LEFT JOIN hist h ON {_same_call("c", "h")}
"""

ERROR_MINUTES_SQL = """
SELECT date_trunc('minute', start_time) AS minute, project, service_name, agent_name, kind,
       coalesce(tool_name, name) AS name, error_type, count(*) AS errors,
       first(status_message ORDER BY start_time DESC) AS sample_message,
       first(trace_id ORDER BY start_time DESC) AS sample_trace_id
FROM spans
WHERE status = 'error' AND start_time >= $lo AND start_time < $hi
  AND date_trunc('minute', start_time) IN (SELECT minute FROM _minutes)
GROUP BY ALL
"""


def new_span_range(
    cur: duckdb.DuckDBPyConnection, after: datetime | None
) -> tuple[int, datetime | None]:
    """(count, newest received_at) of spans received after the watermark."""
    lo = after or datetime(1970, 1, 1)
    ((n, hi),) = cur.execute(  # fetchall: a finished result (fetch_table needs the cursor free)
        "SELECT count(*), max(received_at) FROM spans WHERE received_at > ?", [lo]
    ).fetchall()
    return int(n), hi


def chunk_bounds(cur: duckdb.DuckDBPyConnection, lo: datetime, hi: datetime, spans: int) -> Iterator[datetime]:
    """Upper bounds splitting (lo, hi] into chunks of about ``spans`` spans, each found when asked.

    One chunk's end at a time (a top-N of ``spans`` stamps), not quantiles of the whole backlog,
    whose sort holds 8 bytes per span and outgrows a small memory limit at millions of spans.
    """
    while lo < hi:
        lo = chunk_end(cur, lo, hi, spans)
        yield lo


def fetch_table(cur: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | dict[str, Any] | None = None) -> pa.Table:
    """A query's rows as Arrow, with DuckDB's exact column types (no pandas in the collector)."""
    return cur.sql(sql, params=params).to_arrow_table()


def _of_traces(cur: duckdb.DuckDBPyConnection, traces: pa.Table, sql: str) -> pa.Table:
    """Run ``sql``, which reads the trace ids as table ``_traces``."""
    cur.register("_traces", traces.select(["trace_id"]))
    try:
        return fetch_table(cur, sql)
    finally:
        cur.unregister("_traces")


def llm_spans(cur: duckdb.DuckDBPyConnection, traces: pa.Table) -> pa.Table:
    """Every LLM span of these traces (all of them: the writer may have set an older span's agent)."""
    return _of_traces(cur, traces, LLM_SPANS_SQL)


def touched(cur: duckdb.DuckDBPyConnection, lo: datetime, hi: datetime) -> tuple[pa.Table, pa.Table]:
    """Traces with spans received in (lo, hi], and every minute a span of theirs starts in.

    Whole traces, not only the new spans: when a late ancestor arrives the writer fills the
    agent of spans stored earlier, so their minutes must be recomputed too.
    """
    traces = fetch_table(
        cur, "SELECT DISTINCT trace_id FROM spans WHERE received_at > ? AND received_at <= ?", [lo, hi]
    )
    minutes = _of_traces(
        cur,
        traces,
        "SELECT DISTINCT date_trunc('minute', start_time) AS minute FROM spans "
        "WHERE trace_id IN (SELECT trace_id FROM _traces)",
    )
    return traces, minutes


def trace_features(cur: duckdb.DuckDBPyConnection, traces: pa.Table) -> pa.Table:
    return _of_traces(cur, traces, TRACE_FEATURES_SQL)


def earliest(rows: pa.Table, column: str) -> Any:
    """The smallest value of a column (None when there are no rows)."""
    return pc.min(rows[column]).as_py() if rows.num_rows else None


def minute_rollups(cur: duckdb.DuckDBPyConnection, minutes: pa.Table) -> tuple[pa.Table, pa.Table, pa.Table]:
    """Rows of minute_rollup, error_minutes and call_minutes for the given minutes."""
    if minutes.num_rows == 0:
        return pa.table({}), pa.table({}), pa.table({})
    lo = earliest(minutes, "minute")
    hi = pc.max(minutes["minute"]).as_py() + timedelta(minutes=1)
    cur.register("_minutes", minutes.select(["minute"]))
    try:
        params = {"lo": lo, "hi": hi}
        return (
            fetch_table(cur, MINUTE_ROLLUP_SQL, params),
            fetch_table(cur, ERROR_MINUTES_SQL, params),
            fetch_table(cur, CALL_MINUTES_SQL, params),
        )
    finally:
        cur.unregister("_minutes")


def replace_rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    rows: pa.Table,
    keys: Sequence[str],
    key_rows: pa.Table | None = None,
) -> None:
    """Delete the rows of ``table`` whose ``keys`` appear in ``key_rows`` (default ``rows``), insert ``rows``.

    Runs on the writer's connection, inside its transaction.
    """
    key_rows = rows if key_rows is None else key_rows
    if key_rows.num_rows == 0 and rows.num_rows == 0:
        return
    con.register("_keys", key_rows.select(list(keys)))
    try:
        cond = " AND ".join(f"t.{k} = k.{k}" for k in keys)
        con.execute(f"DELETE FROM {table} t WHERE EXISTS (SELECT 1 FROM _keys k WHERE {cond})")
    finally:
        con.unregister("_keys")
    if rows.num_rows:
        con.register("_rows", rows)
        try:
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _rows")
        finally:
            con.unregister("_rows")


def set_span_costs(con: duckdb.DuckDBPyConnection, costs: pa.Table) -> None:
    """Copy each span's cost into ``spans.cost_usd`` (what `traces`/`sessions` and SQL users sum)."""
    if costs.num_rows == 0:
        return
    con.register("_costs", costs.select(["trace_id", "span_id", "cost_usd"]))
    try:
        con.execute(
            "UPDATE spans SET cost_usd = c.cost_usd FROM _costs c "
            "WHERE spans.trace_id = c.trace_id AND spans.span_id = c.span_id "
            "AND spans.cost_usd IS DISTINCT FROM c.cost_usd"
        )
    finally:
        con.unregister("_costs")


def histogram_quantiles(buckets: dict[int, int], qs: Sequence[float]) -> list[float | None]:
    """Quantiles from a merged latency histogram (the geometric middle of the bucket)."""
    total = sum(buckets.values())
    if total == 0:
        return [None for _ in qs]
    ordered = sorted(buckets.items())
    out: list[float | None] = []
    for q in qs:
        target, seen = q * total, 0
        for b, n in ordered:
            seen += n
            if seen >= target:
                out.append(HIST_BASE ** (b + 0.5) if b > 0 else 1.0)
                break
    return out


Rows = Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]  # (DuckDB SQL, $name parameters) → rows


def _rows(cur: duckdb.DuckDBPyConnection | Rows, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    if isinstance(cur, duckdb.DuckDBPyConnection):
        return cur.execute(sql, params).fetchall()
    return cur(sql, params)


def overview(
    cur: duckdb.DuckDBPyConnection | Rows,
    now: datetime,
    window_minutes: int = 60,
    active_minutes: int = 5,
    top_errors: int = 5,
) -> dict[str, Any]:
    """The dashboard overview's numbers, from the rollup tables only (fast at any span count).

    ``cur`` is a DuckDB cursor, or a function running this DuckDB SQL elsewhere (ClickHouse:
    analytics.clickhouse_sql.duckdb_sql_rows)."""
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    since = now - timedelta(minutes=window_minutes)
    active_since = now - timedelta(minutes=active_minutes)
    start = min(today, since, active_since)
    row = _rows(cur, """
        SELECT count(DISTINCT agent_name) FILTER (WHERE minute >= $active AND spans > 0),
               sum(traces_started) FILTER (WHERE minute >= $since),
               sum(traces_failed) FILTER (WHERE minute >= $since),
               sum(latency_sum_ms) FILTER (WHERE minute >= $since),
               sum(cost_usd) FILTER (WHERE minute >= $today),
               sum(llm_calls) FILTER (WHERE minute >= $since),
               sum(total_tokens) FILTER (WHERE minute >= $today)
        FROM minute_rollup WHERE minute >= $start AND minute <= $now""",
        {"active": active_since, "since": since, "today": today, "start": start, "now": now})[0]  # fmt: skip
    active, traces, failed, latency_sum, cost_today, llm_calls, tokens_today = row
    traces = int(traces or 0)
    hist = dict(_rows(cur, """
        SELECT e.b, sum(e.n) FROM (SELECT unnest(latency_hist) AS e FROM minute_rollup
                                  WHERE minute >= $since AND minute <= $now AND latency_hist IS NOT NULL)
        GROUP BY e.b""", {"since": since, "now": now}))  # fmt: skip
    p50, p95, p99 = histogram_quantiles(
        {int(b): int(n) for b, n in hist.items()}, (0.5, 0.95, 0.99)
    )
    errors = _rows(cur, """
        SELECT kind, name, error_type, sum(errors) AS n, any_value(sample_message)
        FROM error_minutes WHERE minute >= $today AND minute <= $now
        GROUP BY ALL ORDER BY n DESC, name LIMIT $k""", {"today": today, "now": now, "k": top_errors})  # fmt: skip
    return {
        "now": now.isoformat(),
        "window_minutes": window_minutes,
        "active_agents": int(active or 0),
        "requests_per_minute": traces / window_minutes,
        "traces": traces,
        "avg_response_ms": (latency_sum / traces) if traces else None,
        "p50_response_ms": p50,
        "p95_response_ms": p95,
        "p99_response_ms": p99,
        "success_rate": (1 - (failed or 0) / traces) if traces else None,
        "llm_calls": int(llm_calls or 0),
        "cost_today_usd": None
        if cost_today is None or math.isnan(cost_today)
        else float(cost_today),
        "tokens_today": int(tokens_today or 0),
        "top_errors": [
            {"kind": k, "name": n, "error_type": t, "count": int(c), "sample_message": m}
            for k, n, t, c, m in errors
        ],
    }
