"""Agents: per-agent calls, latency, errors and cost; the handoff graph; guardrails; tools."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, client, fmt, queries, ui


def _agents(f: queries.Filters) -> None:
    stats = client.query(queries.agent_runs(f))
    if stats.empty:
        st.info("No agent spans in this time range.", icon=":material/info:")
        return
    # Long windows read the analytics rollup (one row per agent-minute); short ones, and a rollup
    # the jobs have not filled yet, read the spans themselves (always current).
    usage = ui.optional(queries.agent_usage(f)) if f.minutes > queries.RAW_WINDOW_MINUTES else None
    if usage is None or usage.empty:
        usage = client.query(queries.agent_usage_raw(f))
    stats = stats.merge(usage, on="agent", how="left")
    ui.table(stats, {"runs": "Runs", "avg_ms": "Avg latency", "p95_ms": "p95 latency"})


def _handoffs(f: queries.Filters) -> None:
    st.markdown("#### Handoffs")
    st.caption("Who hands off to whom across all runs; arrow width = how often, red = runs that then failed ≥ 20%.")
    edges = client.query(queries.handoffs(f))
    graph, table = st.columns([3, 2])
    graph.plotly_chart(charts.handoff_graph(edges), key="handoff_graph", config={"displayModeBar": False})
    if not edges.empty:
        with table:
            ui.table(edges, {"source": "From", "target": "To", "count": "Handoffs",
                             "handoff_errors": "Failed handoffs", "run_failure_rate": "Runs that failed"})


def _guardrails_and_tools(f: queries.Filters) -> None:
    left, right = st.columns(2)
    with left:
        ui.section("Guardrails", client.query(queries.guardrails(f)), empty="No guardrail checks in this time range.")
    with right:
        ui.section("Tools", client.query(queries.tool_stats(f)), empty="No tool calls in this time range.")


ui.header("Agents", "How each agent performs, who hands off to whom, and where guardrails and tools fail.")
with ui.guard():
    filters = ui.filters()
    _agents(filters)
    _handoffs(filters)
    _guardrails_and_tools(filters)
    st.caption(f"{fmt.when(filters.start) if filters.start.year > 2000 else 'All time'} → {fmt.when(filters.end)}")
