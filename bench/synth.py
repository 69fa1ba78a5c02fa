"""Synthetic agent traffic, generated in SQL straight into a DuckDB store, with labelled anomalies.

Used by the analytics benchmarks (millions of spans in seconds) and by tests (a few thousand).
Randomness comes from ``hash(trace, salt)``, so a given configuration always yields the same
rows. Each trace is a workflow span, an agent span, LLM calls, tool calls and sometimes a handoff;
durations are log-normal. Injected, with labels:

* ``latency``: the trace runs ``latency_factor`` times longer;
* ``cost``: its LLM calls use ``cost_factor`` times more tokens;
* ``loop``: one tool called ``loop_calls`` times with identical arguments;
* failed traces have one failed tool call (the first), and their agent and workflow spans fail;
* ``error_burst``: for ``burst_minutes`` every ``burst_every_minutes``, one service's traces fail
  at ``burst_error_rate`` (labelled per service and 5-minute window).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import duckdb
import pandas as pd

AGENTS = (  # (service, workflow, agent, model)
    ("support-bot", "support", "triage", "gpt-4.1-2025-04-14"),
    ("support-bot", "support", "billing", "gpt-4.1-mini"),
    ("research", "research", "researcher", "claude-sonnet-4-5-20250929"),
    ("research", "research", "writer", "gpt-4o-mini"),
    ("coder", "coding", "coder", "claude-haiku-4-5"),
    ("coder", "coding", "reviewer", "llama-3.3-70b"),  # not in the price table
)


@dataclass(frozen=True)
class Synth:
    traces: int = 1000
    start: datetime = datetime(2026, 1, 5, 0, 0)
    minutes: int = 600
    salt: int = 0
    p_latency: float = 0.004
    p_cost: float = 0.004
    p_loop: float = 0.004
    base_error_rate: float = 0.005
    latency_factor: float = 20.0
    cost_factor: float = 30.0
    loop_calls: int = 12
    burst_every_minutes: int = 240
    burst_minutes: int = 10  # a multiple of 5
    burst_error_rate: float = 0.4
    agents: tuple[tuple[str, str, str, str], ...] = field(default=AGENTS)
    received_at: datetime | None = None  # default: each span one second after its trace ends

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.minutes)


def _u(expr: str, salt: str) -> str:
    """A uniform number in (0, 1) from a hash."""
    return f"((hash({expr}, '{salt}') % 1000003) + 0.5) / 1000003.0"


def _traces_sql(c: Synth) -> str:
    n_agents = len(c.agents)
    agent_rows = ", ".join(
        f"({i}, '{svc}', '{wf}', '{ag}', '{model}')"
        for i, (svc, wf, ag, model) in enumerate(c.agents)
    )
    services = sorted({a[0] for a in c.agents})
    service_rows = ", ".join(f"('{s}', {i})" for i, s in enumerate(services))
    seconds = c.minutes * 60
    bursts = f"""(minute_no % {c.burst_every_minutes}) >= {c.burst_every_minutes // 2}
                 AND (minute_no % {c.burst_every_minutes}) < {c.burst_every_minutes // 2 + c.burst_minutes}
                 AND (minute_no // {c.burst_every_minutes}) % {len(services)} = service_no"""
    return f"""
    WITH agents(agent_no, service_name, workflow_name, agent_name, model) AS (VALUES {agent_rows}),
    services(service_name, service_no) AS (VALUES {service_rows}),
    base AS (
        SELECT i, {_u("i + " + str(c.salt), "a")} AS ua, {_u("i + " + str(c.salt), "z1")} AS u1,
               {_u("i + " + str(c.salt), "z2")} AS u2, {_u("i + " + str(c.salt), "e")} AS ue,
               CAST(hash(i + {c.salt}, 'g') % {n_agents} AS INTEGER) AS agent_no,
               TIMESTAMP '{c.start:%Y-%m-%d %H:%M:%S}'
                 + to_microseconds(CAST(i * {seconds} * 1e6 / {c.traces} AS BIGINT)) AS t0
        FROM range({c.traces}) r(i)
    ), labelled AS (
        SELECT b.*, a.service_name, a.workflow_name, a.agent_name, a.model, s.service_no,
               CAST(date_diff('minute', TIMESTAMP '{c.start:%Y-%m-%d %H:%M:%S}', t0) AS INTEGER) AS minute_no,
               CASE WHEN ua < {c.p_latency} THEN 'latency'
                    WHEN ua < {c.p_latency + c.p_cost} THEN 'cost'
                    WHEN ua < {c.p_latency + c.p_cost + c.p_loop} THEN 'loop' END AS label
        FROM base b JOIN agents a USING (agent_no) JOIN services s USING (service_name)
    )
    SELECT *,
           printf('%032x', i + CAST({c.salt} AS BIGINT) * 1000000000) AS trace_id,
           exp(ln(2000) + 0.4 * sqrt(-2 * ln(u1)) * cos(2 * pi() * u2))
             * (CASE WHEN label = 'latency' THEN {c.latency_factor} ELSE 1 END) AS dur_ms,
           CASE WHEN label = 'cost' THEN {c.cost_factor} ELSE 1 END AS token_factor,
           1 + CAST(hash(i, 'l') % 3 AS INTEGER) AS n_llm,
           CASE WHEN label = 'loop' THEN {c.loop_calls} ELSE CAST(hash(i, 't') % 4 AS INTEGER) END AS n_tool,
           CAST(hash(i, 'h') % 5 = 0 AS INTEGER) AS n_handoff,
           ({bursts}) AS in_burst,
           ue < CASE WHEN ({bursts}) THEN {c.burst_error_rate} ELSE {c.base_error_rate} END AS failed
    FROM labelled
    """


def _spans_sql(c: Synth) -> str:
    received = (
        f"TIMESTAMP '{c.received_at.isoformat(sep=' ')}'"
        if c.received_at
        else "t0 + to_microseconds(CAST((dur_ms + 1000) * 1000 AS BIGINT))"
    )
    return f"""
    WITH tr AS ({_traces_sql(c)}),
    slots AS (
        SELECT tr.*, j, 2 + n_llm + n_tool + n_handoff AS n_spans FROM tr, range(2 + n_llm + n_tool + n_handoff) s(j)
    ), shaped AS (
        SELECT *,
               CASE WHEN j = 0 THEN 'workflow' WHEN j = 1 THEN 'agent'
                    WHEN j < 2 + n_llm THEN 'llm' WHEN j < 2 + n_llm + n_tool THEN 'tool' ELSE 'handoff' END AS k,
               CASE WHEN j < 2 THEN dur_ms ELSE dur_ms / (n_spans - 2) * 0.9 END AS d,
               CASE WHEN j < 2 THEN 0 ELSE dur_ms * (j - 2) / (n_spans - 2) END AS offset_ms
        FROM slots
    )
    SELECT trace_id,
           printf('%016x', hash(trace_id, j)) AS span_id,
           CASE WHEN j = 0 THEN NULL WHEN j = 1 THEN printf('%016x', hash(trace_id, 0))
                ELSE printf('%016x', hash(trace_id, 1)) END AS parent_span_id,
           CASE k WHEN 'workflow' THEN workflow_name WHEN 'agent' THEN agent_name WHEN 'llm' THEN 'response'
                  WHEN 'tool' THEN CASE WHEN label = 'loop' THEN 'search' ELSE 'tool_' || (hash(trace_id, j, 'n') % 5) END
                  ELSE 'handoff' END AS name,
           k AS kind, 'internal' AS span_kind,
           CASE WHEN failed AND (k IN ('agent', 'workflow') OR j = 2 + n_llm) THEN 'error' ELSE 'ok' END AS status,
           CASE WHEN failed AND j = 2 + n_llm AND k = 'tool' THEN 'Error running tool (non-fatal): timeout' END
               AS status_message,
           t0 + to_microseconds(CAST(offset_ms * 1000 AS BIGINT)) AS start_time,
           t0 + to_microseconds(CAST((offset_ms + d) * 1000 AS BIGINT)) AS end_time,
           d AS duration_ms, service_name, 'tracehouse.synth' AS scope_name, 'genai' AS convention,
           'default' AS project, 'session-' || (i // 4) AS session_id, workflow_name,
           CASE WHEN k = 'workflow' THEN NULL ELSE agent_name END AS agent_name,
           CASE WHEN k = 'llm' THEN model END AS model,
           CASE WHEN k = 'llm' THEN CASE WHEN model LIKE 'claude%' THEN 'anthropic' ELSE 'openai' END END AS provider,
           CASE WHEN k = 'llm' THEN CAST((800 + hash(trace_id, j, 'i') % 1200) * token_factor AS BIGINT) END AS input_tokens,
           CASE WHEN k = 'llm' THEN CAST((100 + hash(trace_id, j, 'o') % 300) * token_factor AS BIGINT) END AS output_tokens,
           CASE WHEN k = 'llm' THEN CAST((hash(trace_id, j, 'c') % 400) * token_factor AS BIGINT) END AS cached_tokens,
           CASE WHEN k = 'llm' AND model LIKE 'claude%' THEN CAST(hash(trace_id, j, 'w') % 50 AS BIGINT) END
               AS cache_write_tokens,
           CAST(NULL AS BIGINT) AS reasoning_tokens,
           CASE WHEN k = 'tool' THEN CASE WHEN label = 'loop' THEN 'search' ELSE 'tool_' || (hash(trace_id, j, 'n') % 5) END END
               AS tool_name,
           CASE WHEN k = 'tool' THEN CASE WHEN label = 'loop' THEN '{{"q": "same"}}'
                                          ELSE '{{"q": "' || (hash(trace_id, j, 'q') % 100000) || '"}}' END END AS input,
           CASE WHEN failed AND j = 2 + n_llm AND k = 'tool' THEN 'TimeoutError' END AS error_type,
           false AS payload_truncated, '{{}}' AS attributes, '{{}}' AS resource, '[]' AS events, '[]' AS links,
           {received} AS received_at
    FROM shaped
    """


def generate(con: duckdb.DuckDBPyConnection, config: Synth) -> int:
    """Insert the configuration's spans into ``spans``; returns how many."""
    before = con.execute("SELECT count(*) FROM spans").fetchone()[0]
    con.execute(f"INSERT INTO spans BY NAME {_spans_sql(config)} ORDER BY start_time")
    return con.execute("SELECT count(*) FROM spans").fetchone()[0] - before


def labels(con: duckdb.DuckDBPyConnection, config: Synth) -> pd.DataFrame:
    """trace_id, service_name, agent_name, label (None when normal), window_start, in_burst, failed."""
    return con.execute(
        f"""SELECT trace_id, service_name, agent_name, label, in_burst, failed,
                   time_bucket(INTERVAL 5 MINUTE, t0) AS window_start FROM ({_traces_sql(config)})"""
    ).df()
