"""The agents page's SQL: runs, calls, tokens and cost per agent, handoffs, guardrails and tools.

Where the analytics jobs have run, each query reads the per-minute rollups (``call_minutes``,
``minute_rollup``) for the minutes they cover and the spans for the rest (see
:func:`dashboard.queries.split`); without them, the spans for the whole window.
"""

from __future__ import annotations

from datetime import datetime

from dashboard.queries import Filters, lit, minute_where, span_where, split


# What the agents page groups each kind of call by: (column, from call_minutes, from spans).
_CALL_KEYS = {
    "agent": (("agent", "name", "agent_name"),),
    "tool": (("tool", "name", "coalesce(tool_name, name)"),),
    "guardrail": (("guardrail", "name", "name"), ("agent", "coalesce(agent_name, '')", "coalesce(agent_name, '')")),
    "handoff": (("source", "name", "coalesce(handoff_from, agent_name, '?')"),
                ("target", "target", "coalesce(handoff_to, '?')")),
}
_HIST_BUCKET = "CAST(floor(ln(greatest(duration_ms, 1.0)) / ln(1.1)) AS SMALLINT)"  # analytics/rollups.py


def _calls(f: Filters, cut: datetime | None, kind: str) -> str | None:
    """Per-group counts, failures, guardrail trips, failed runs, mean and p95 latency of one kind of
    call: the analytics call_minutes for the minutes they cover, the spans for the rest. The p95
    comes from the merged latency histograms (within 5 %). None without rollups."""
    rolled, raw = split(f, cut)
    if rolled is None:
        return None
    keys = _CALL_KEYS[kind]
    handoff = kind == "handoff"
    scope = Filters(f.start, f.end, f.service, None if handoff else f.agent)

    def who(exprs: list[str]) -> str:  # a handoff is the agent's when it hands off or is handed to
        return f" AND {lit(f.agent)} IN ({', '.join(exprs)})" if handoff and f.agent else ""

    rolled_scope = Filters(rolled.start, rolled.end, scope.service, scope.agent)
    parts = [f"""SELECT {", ".join(f"{r} AS {a}" for a, r, _ in keys)}, calls, errors, trips, run_failures,
       duration_sum_ms, last_error, last_error_at, latency_hist
FROM call_minutes WHERE {minute_where(rolled_scope)} AND kind = {lit(kind)}{who([r for _, r, _ in keys])}"""]
    failed = "(trace_id IN (SELECT trace_id FROM traces WHERE status = 'error'))::BIGINT" if handoff else "0"
    named = " AND agent_name IS NOT NULL" if kind == "agent" else ""
    for w in raw:
        window = Filters(w.start, w.end, scope.service, scope.agent)
        parts.append(f"""SELECT {", ".join(f"{x} AS {a}" for a, _, x in keys)}, 1 AS calls,
       (status = 'error')::BIGINT AS errors, coalesce(guardrail_triggered, false)::BIGINT AS trips,
       {failed} AS run_failures, duration_ms AS duration_sum_ms,
       CASE WHEN status = 'error' THEN status_message END AS last_error,
       CASE WHEN status = 'error' THEN start_time END AS last_error_at,
       [{{'b': {_HIST_BUCKET}, 'n': 1}}] AS latency_hist
FROM spans WHERE {span_where(window)} AND kind = {lit(kind)}{named}{who([x for _, _, x in keys])}""")
    cols = ", ".join(a for a, _, _ in keys)
    # Every part lists the same columns in the same order: UNION ALL matches them by position
    # (ClickHouse has no UNION ... BY NAME).
    return f"""WITH u AS ({" UNION ALL ".join(parts)}),
h AS (SELECT {cols}, e.b AS b, sum(e.n) AS n FROM (SELECT {cols}, unnest(latency_hist) AS e FROM u) GROUP BY ALL),
q AS (SELECT {cols}, b, sum(n) OVER (PARTITION BY {cols} ORDER BY b) AS cum, sum(n) OVER (PARTITION BY {cols}) AS total FROM h),
p AS (SELECT {cols}, min(b) FILTER (WHERE cum >= 0.95 * total) AS b95 FROM q GROUP BY ALL)
SELECT {cols}, sum(calls) AS calls, sum(errors) AS errors, sum(trips) AS trips, sum(run_failures) AS run_failures,
       sum(duration_sum_ms) / sum(calls) AS avg_ms,
       CASE WHEN any_value(p.b95) > 0 THEN pow(1.1, any_value(p.b95) + 0.5) ELSE 1.0 END AS p95_ms,
       arg_max(last_error, last_error_at) AS last_error
FROM u LEFT JOIN p USING ({cols}) GROUP BY ALL"""


def agent_runs(f: Filters, cut: datetime | None = None) -> str:
    """Per agent: its runs (agent spans), their latency and how often they failed."""
    calls = _calls(f, cut, "agent")
    if calls is not None:
        return f"""SELECT agent, calls AS runs, avg_ms, p95_ms, errors / calls AS error_rate
FROM ({calls}) ORDER BY runs DESC, agent"""
    return f"""SELECT agent_name AS agent, count(*) AS runs, avg(duration_ms) AS avg_ms,
       approx_quantile(duration_ms, 0.95) AS p95_ms, count(*) FILTER (WHERE status = 'error') / count(*) AS error_rate
FROM spans WHERE {span_where(f)} AND kind = 'agent' AND agent_name IS NOT NULL
GROUP BY ALL ORDER BY runs DESC, agent"""


def agent_usage(f: Filters, cut: datetime | None = None) -> str:
    """Per agent: LLM and tool calls, tokens and cost: the analytics per-minute rollup for the
    minutes it covers (one row per agent-minute), the spans themselves for the rest."""
    rolled, raw = split(f, cut)
    parts = [f"""SELECT agent_name AS agent, sum(llm_calls) AS llm_calls, sum(tool_calls) AS tool_calls,
       sum(total_tokens) AS tokens, sum(cost_usd) AS cost_usd
FROM minute_rollup WHERE {minute_where(rolled)} AND agent_name IS NOT NULL GROUP BY ALL"""] if rolled else []
    parts += [f"""SELECT agent_name AS agent, count(*) FILTER (WHERE kind = 'llm') AS llm_calls,
       count(*) FILTER (WHERE kind = 'tool') AS tool_calls,
       coalesce(sum(coalesce(input_tokens, 0) + coalesce(output_tokens, 0)) FILTER (WHERE kind = 'llm'), 0) AS tokens,
       sum(cost_usd) AS cost_usd
FROM spans WHERE {span_where(w)} AND kind IN ('llm', 'tool', 'embedding') AND agent_name IS NOT NULL
GROUP BY ALL""" for w in raw]
    return f"""SELECT agent, sum(llm_calls) AS llm_calls, sum(tool_calls) AS tool_calls, sum(tokens) AS tokens,
       sum(cost_usd) AS cost_usd FROM ({" UNION ALL ".join(parts)}) GROUP BY ALL"""


def handoffs(f: Filters, cut: datetime | None = None) -> str:
    """Who hands off to whom; a handoff 'fails' when its run (trace) ends in error."""
    calls = _calls(f, cut, "handoff")
    if calls is not None:
        return f"""SELECT source, target, calls AS count, errors AS handoff_errors,
       run_failures / calls AS run_failure_rate FROM ({calls}) ORDER BY count DESC, source, target"""
    return f"""WITH h AS (SELECT trace_id, coalesce(handoff_from, agent_name, '?') AS source,
                  coalesce(handoff_to, '?') AS target, status
           FROM spans WHERE {span_where(f, agent_on_span=False)} AND kind = 'handoff'
           {f"AND (handoff_from = {lit(f.agent)} OR handoff_to = {lit(f.agent)})" if f.agent else ""})
SELECT source, target, count(*) AS count,
       count(*) FILTER (WHERE h.status = 'error') AS handoff_errors,
       count(*) FILTER (WHERE t.status = 'error') / count(*) AS run_failure_rate
FROM h LEFT JOIN traces t USING (trace_id) GROUP BY ALL ORDER BY count DESC, source, target"""


def guardrails(f: Filters, cut: datetime | None = None) -> str:
    calls = _calls(f, cut, "guardrail")
    if calls is not None:
        return f"""SELECT guardrail, agent, calls AS checks, trips, trips / calls AS trip_rate
FROM ({calls}) ORDER BY trip_rate DESC, checks DESC"""
    return f"""SELECT name AS guardrail, coalesce(agent_name, '') AS agent, count(*) AS checks,
       count(*) FILTER (WHERE guardrail_triggered) AS trips,
       count(*) FILTER (WHERE guardrail_triggered) / count(*) AS trip_rate
FROM spans WHERE {span_where(f)} AND kind = 'guardrail'
GROUP BY ALL ORDER BY trip_rate DESC, checks DESC"""


def tool_stats(f: Filters, cut: datetime | None = None) -> str:
    calls = _calls(f, cut, "tool")
    if calls is not None:
        return f"""SELECT tool, calls, errors AS failures, errors / calls AS failure_rate, avg_ms, p95_ms, last_error
FROM ({calls}) ORDER BY failure_rate DESC, calls DESC"""
    return f"""SELECT coalesce(tool_name, name) AS tool, count(*) AS calls,
       count(*) FILTER (WHERE status = 'error') AS failures,
       count(*) FILTER (WHERE status = 'error') / count(*) AS failure_rate,
       avg(duration_ms) AS avg_ms, approx_quantile(duration_ms, 0.95) AS p95_ms,
       arg_max(status_message, start_time) FILTER (WHERE status = 'error') AS last_error
FROM spans WHERE {span_where(f)} AND kind = 'tool'
GROUP BY ALL ORDER BY failure_rate DESC, calls DESC"""
