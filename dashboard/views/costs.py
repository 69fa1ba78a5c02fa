"""Costs: spend by model, agent, service and day; the most expensive traces; unpriced models."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, fmt, queries, ui


def _load(f: queries.Filters) -> dict[str, pd.DataFrame | None]:
    return ui.fetch(
        {"expensive": queries.expensive_traces(f)},
        {"model": queries.cost_by(f, "model"), "agent": queries.cost_by(f, "agent"),
         "service": queries.cost_by(f, "service"), "day": queries.cost_by_day(f),
         "unpriced": queries.unpriced_models(f)},
    )


def _breakdowns(data: dict[str, pd.DataFrame]) -> None:
    by_model = data["model"]
    total = by_model["cost_usd"].sum(min_count=1) if not by_model.empty else None
    tokens = (by_model["input_tokens"].sum() + by_model["output_tokens"].sum()) if not by_model.empty else 0
    calls = int(by_model["llm_calls"].sum()) if not by_model.empty else 0
    unpriced = int(by_model["unpriced_calls"].sum()) if not by_model.empty else 0
    ui.kpis([
        ("Total cost", fmt.money(total), "Priced LLM calls only; unpriced ones are listed below"),
        ("LLM calls", fmt.count(calls), None),
        ("Tokens", fmt.count(tokens), "Input + output"),
        ("Cost / call", fmt.money(total / calls) if calls and total is not None and total == total else fmt.MISSING, None),
        ("Unpriced calls", fmt.count(unpriced), "Calls to models missing from the price table"),
    ])
    left, right = st.columns(2)
    left.plotly_chart(charts.hbar(by_model, "model", "cost_usd", title="By model", money=True), key="c_model")
    right.plotly_chart(charts.hbar(data["agent"], "agent", "cost_usd", title="By agent", money=True,
                                   color="#8B5CF6"), key="c_agent")
    left, right = st.columns(2)
    left.plotly_chart(charts.hbar(data["service"], "service", "cost_usd", title="By service", money=True,
                                  color="#14B8A6"), key="c_service")
    right.plotly_chart(charts.cost_by_day(data["day"]), key="c_day")
    with st.expander("Token and cost table by model"):
        ui.table(by_model)


def _unpriced(frame: pd.DataFrame) -> None:
    if ui.section("Unpriced models", frame, empty="Every model called in this time range has a price.",
                  good_when_empty=True):
        st.warning(f"{len(frame)} model(s) have no price, so their cost is unknown (not $0). "
                   "Add them to the price table to include them.", icon=":material/price_change:")


ui.header("Costs", "What your agents spend, and where.")
with ui.guard():
    costs = _load(ui.filters())
    if costs["model"] is None:
        st.info(ui.NO_ANALYTICS, icon=":material/hourglass_empty:")
    else:
        _breakdowns(costs)
        ui.section("Most expensive traces", costs["expensive"], empty="No priced traces in this time range.")
        _unpriced(costs["unpriced"])
