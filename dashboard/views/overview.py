"""Overview: live KPIs, time series of traffic, latency, errors and cost, and the top errors.

The body is an ``st.fragment`` with ``run_every``: only it reruns every few seconds, so the
page refreshes without a full-page flicker and the sidebar keeps its state.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, fmt, queries, ui

REFRESH_S = 5


def _load(f: queries.Filters) -> dict[str, pd.DataFrame | None]:
    # "Now" is the window's end, rounded up to a few seconds, so the whole batch of queries is
    # identical (and served from cache) for every refresh within those seconds.
    now = until = f.end
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    # Tokens and top errors (linked to the latest failing trace) come from the analytics
    # per-minute tables up to where they are complete, and from the spans after it (the last
    # minute or so): live, without a day's scan.
    cut = ui.rollup_cut(f)
    data = ui.fetch(
        {"numbers": queries.overview_numbers(f, now, midnight, cut), "series": queries.overview_series(f),
         "errors": queries.top_errors_split(f, cut)},
        {"spend": queries.cost_since(f, midnight, until, cut), "cost_series": queries.cost_series(f, cut)},
    )
    return data


def _kpis(f: queries.Filters, data: dict[str, pd.DataFrame | None]) -> None:
    live = data["numbers"].iloc[0]
    totals = data["series"][data["series"]["total"] == 1]
    kpi = totals.iloc[0] if not totals.empty else pd.Series({"requests": 0, "errors": 0, "avg_ms": None, "p95_ms": None})
    minutes = queries.LIVE_WINDOW.total_seconds() / 60
    tokens = live["tokens"]
    spend = data["spend"]
    cost, unpriced = (None, None) if spend is None else spend.iloc[0][["cost_usd", "unpriced_calls"]]
    requests = int(kpi["requests"] or 0)
    failed = int(kpi["errors"] or 0)
    success = (requests - failed) / requests if requests else None
    ui.kpis(
        [
            ("Active agents", fmt.count(live["active_agents"]), f"Agents with spans in the last {minutes:.0f} minutes"),
            ("Requests / min", f"{live['recent_requests'] / minutes:,.1f}",
             f"Traces started per minute over the last {minutes:.0f} minutes; "
             f"{fmt.count(requests)} in the selected range"),
            ("Avg response", fmt.duration(kpi["avg_ms"]), "Mean trace duration"),
            ("p95 response", fmt.duration(kpi["p95_ms"]), "95th percentile of trace duration"),
            ("Success rate", fmt.percent(success), f"{fmt.count(failed)} traces had an error"),
            ("Cost today", fmt.cost(cost, pending=bool(tokens) and ui.costs_pending_from() is not None),
             f"Since 00:00 UTC; {fmt.count(unpriced)} LLM calls have no price"
             if spend is not None else ui.NO_ANALYTICS),
            ("Tokens today", fmt.count(tokens), "Input + output tokens of LLM calls since 00:00 UTC"),
        ]
    )


def _series(f: queries.Filters, data: dict[str, pd.DataFrame | None]) -> None:
    series, spend = data["series"][data["series"]["total"] == 0], data["cost_series"]
    window = charts.TimeAxis(None if f.start <= ui.EPOCH else f.start, f.end, queries.bucket_ms(f))
    left, right = st.columns(2)
    left.plotly_chart(charts.traffic(series, window), key="traffic")
    right.plotly_chart(charts.latency(series, window), key="latency")
    left, right = st.columns(2)
    left.plotly_chart(charts.errors(series, window), key="errors")
    right.plotly_chart(charts.cost(spend, window) if spend is not None else charts.empty(ui.NO_ANALYTICS), key="cost")


def _top_errors(data: dict[str, pd.DataFrame | None]) -> None:
    errors = data["errors"].rename(columns={"example_trace": "trace_id", "count": "spans"})
    columns = ["error", "kind", "spans", "traces", "last_message", "last_seen", "trace_id"]
    ui.section("Top errors", errors[[c for c in columns if c in errors]],
               empty="No errors in this time range.", good_when_empty=True,
               labels={"kind": "Span kind", "last_message": "Latest message", "open": "Latest trace"})


ui.header("Overview", "Live health of your agents in the selected time range.")
live = st.toggle(f"Live (refresh every {REFRESH_S} s)", value=True, key="overview_live")


@st.fragment(run_every=REFRESH_S if live else None)
def body() -> None:
    with ui.guard():
        f = ui.filters()
        data = _load(f)
        _kpis(f, data)
        _series(f, data)
        _top_errors(data)
        st.caption(f"Updated {fmt.when(ui.utcnow())}")


body()
