"""Agents: per-agent calls, latency, errors and cost; the handoff graph; guardrails; tools."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import agent_queries, charts, fmt, queries, ui


def _load(f: queries.Filters) -> dict[str, pd.DataFrame | None]:
    # Runs, calls, tokens, cost, handoffs, guardrails and tools from the analytics per-minute
    # rollups up to where they are complete, from the spans after it; from spans without analytics.
    cut = ui.rollup_cut(f)
    return ui.fetch(
        {"runs": agent_queries.agent_runs(f, cut), "handoffs": agent_queries.handoffs(f, cut),
         "guardrails": agent_queries.guardrails(f, cut), "tools": agent_queries.tool_stats(f, cut),
         "usage": agent_queries.agent_usage(f, cut)},
    )


def _agents(data: dict[str, pd.DataFrame]) -> None:
    if data["runs"].empty:
        st.info("No agent spans in this time range.", icon=":material/info:")
        return
    stats = data["runs"].merge(data["usage"], on="agent", how="left")
    ui.table(stats, {"runs": "Runs", "avg_ms": "Avg latency", "p95_ms": "p95 latency"})


def _handoffs(edges: pd.DataFrame) -> None:
    st.markdown("#### Handoffs")
    st.caption("Who hands off to whom across all runs; arrow width = how often, red = runs that then failed ≥ "
               f"{charts.FAILING_HANDOFF_SHARE:.0%}.")
    graph, table = st.columns(2)
    graph.plotly_chart(charts.handoff_graph(edges), key="handoff_graph", config={"displayModeBar": False})
    if not edges.empty:
        with table:  # the graph's "n failed" first: a column past the table's edge reads as missing
            columns = ["source", "target", "count", "run_failure_rate", "handoff_errors"]
            ui.table(edges[columns], {"source": "From", "target": "To", "count": "Handoffs",
                                      "run_failure_rate": "Runs that failed", "handoff_errors": "Failed handoffs"})


ui.header("Agents", "How each agent performs, who hands off to whom, and where guardrails and tools fail.")
with ui.guard():
    filters = ui.filters()
    agents = _load(filters)
    _agents(agents)
    _handoffs(agents["handoffs"])
    left, right = st.columns(2)
    with left:
        ui.section("Guardrails", agents["guardrails"], empty="No guardrail checks in this time range.")
    with right:
        ui.section("Tools", agents["tools"], empty="No tool calls in this time range.")
    st.caption(f"{fmt.when(filters.start) if filters.start.year > 2000 else 'All time'} → {fmt.when(filters.end)}")
