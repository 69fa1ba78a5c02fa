"""Overview: live KPIs, time series of traffic, latency, errors and cost, and the top errors.

The body is an ``st.fragment`` with ``run_every``: only it reruns every few seconds, so the
page refreshes without a full-page flicker and the sidebar keeps its state.
"""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from dashboard import charts, client, fmt, queries, ui

REFRESH_S = 5


def _kpis(f: queries.Filters) -> None:
    now = ui.utcnow()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    kpi = client.query(queries.overview_kpis(f)).iloc[0]
    active = client.query(queries.active_agents(f, now)).iloc[0]
    today = client.query(queries.usage_since(f, midnight, now + timedelta(seconds=5))).iloc[0]
    requests = int(kpi["requests"] or 0)
    failed = int(kpi["failed"] or 0)
    success = (requests - failed) / requests if requests else None
    ui.kpis(
        [
            ("Active agents", fmt.count(active["active_agents"]), "Agents with spans in the last 5 minutes"),
            ("Requests / min", f"{requests / f.minutes:,.2f}" if requests else "0",
             f"{fmt.count(requests)} traces in the time range"),
            ("Avg response", fmt.duration(kpi["avg_ms"]), "Mean trace duration"),
            ("p95 response", fmt.duration(kpi["p95_ms"]), "95th percentile of trace duration"),
            ("Success rate", fmt.percent(success), f"{fmt.count(failed)} traces had an error"),
            ("Cost today", fmt.money(today["cost_usd"]),
             f"Since 00:00 UTC; {fmt.count(today['unpriced_calls'])} LLM calls have no price"),
            ("Tokens today", fmt.count(today["tokens"]), "Input + output tokens since 00:00 UTC"),
        ]
    )


def _series(f: queries.Filters) -> None:
    series = client.query(queries.overview_series(f))
    left, right = st.columns(2)
    left.plotly_chart(charts.traffic(series), key="traffic")
    right.plotly_chart(charts.latency(series), key="latency")
    left, right = st.columns(2)
    left.plotly_chart(charts.errors(series), key="errors")
    right.plotly_chart(charts.cost(series), key="cost")


def _top_errors(f: queries.Filters) -> None:
    errors = client.query(queries.top_errors(f)).rename(columns={"example_trace": "trace_id", "count": "spans"})
    ui.section("Top errors", errors[["error", "kind", "spans", "traces", "last_seen", "trace_id"]],
               empty="No errors in this time range.", good_when_empty=True,
               labels={"kind": "Span kind", "open": "Latest trace"})


ui.header("Overview", "Live health of your agents in the selected time range.")
live = st.toggle(f"Live (refresh every {REFRESH_S} s)", value=True, key="overview_live")


@st.fragment(run_every=REFRESH_S if live else None)
def body() -> None:
    with ui.guard():
        f = ui.filters()
        _kpis(f)
        _series(f)
        _top_errors(f)
        st.caption(f"Updated {fmt.when(ui.utcnow())}")


body()
