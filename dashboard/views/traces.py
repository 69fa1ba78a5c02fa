"""Traces: a filterable, sortable, paged list; selecting a row opens its timeline."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from dashboard import client, fmt, ui

SORTS = {"Newest first": ("start_time", "desc"), "Oldest first": ("start_time", "asc"),
         "Slowest first": ("duration_ms", "desc"), "Most expensive first": ("cost_usd", "desc"),
         "Most spans first": ("span_count", "desc"), "Most errors first": ("error_count", "desc")}
PAGE_SIZES = (25, 50, 100, 250)


def _controls() -> dict[str, object]:
    top = st.columns([2.2, 1.3, 1.4, 0.9, 1.3, 1.1, 1.4])
    text = top[0].text_input("Search", placeholder="text in names, inputs or outputs", key="tr_q")
    session = top[1].text_input("Session", placeholder="session id", key="tr_session")
    seen = ui.options("workflow", "model")
    workflow = top[2].selectbox("Workflow", ["All", *seen["workflow"]], key="tr_workflow")
    status = top[3].selectbox("Status", ["All", "ok", "error"], key="tr_status")
    model = top[4].selectbox("Model", ["All", *seen["model"]], key="tr_model")
    min_ms = top[5].number_input("Min duration (ms)", min_value=0, step=100, value=0, key="tr_min")
    sort = top[6].selectbox("Sort", list(SORTS), key="tr_sort")
    return {"q": text.strip() or None, "status": None if status == "All" else status,
            "workflow": None if workflow == "All" else workflow,
            "model": None if model == "All" else model, "min_duration_ms": min_ms or None,
            "session": session.strip() or None, "sort": SORTS[sort][0], "order": SORTS[sort][1]}


def _table(frame: pd.DataFrame) -> pd.DataFrame:
    view = pd.DataFrame({
        "status": ["error" if s == "error" else "ok" for s in frame["status"]],  # coloured by ui.table
        "start_time": frame["start_time"],
        "name": frame["workflow_name"].fillna(frame["root_name"]) if "workflow_name" in frame else frame["root_name"],
        "service": frame.get("service_name"),
        "agents": [", ".join(a) if isinstance(a, list) else "" for a in frame.get("agents", [])],
        "models": [", ".join(m) if isinstance(m, list) else "" for m in frame.get("models", [])],
        "duration_ms": frame["duration_ms"],
        "spans": frame["span_count"],
        "llm_calls": frame.get("llm_calls"),
        "tokens": frame.get("input_tokens", 0).fillna(0) + frame.get("output_tokens", 0).fillna(0),
        "cost_usd": frame.get("cost_usd"),
        "session": frame.get("session_id"),
        "trace_id": frame["trace_id"],
    })
    return view


ui.header("Traces", "Every run in the time range. Select a row to open its timeline.")
with ui.guard():
    f = ui.filters()
    params = _controls()
    size_col, page_col, info_col = st.columns([1, 1, 4])
    size = size_col.selectbox("Rows per page", PAGE_SIZES, index=1, key="tr_size")
    signature = (tuple(sorted(params.items())), f.service, f.agent, st.session_state.get("range"), size)
    if st.session_state.get("tr_signature") != signature:  # new filters start at page 1
        st.session_state["tr_signature"] = signature
        st.session_state["tr_page"] = 1
    page = int(st.session_state.get("tr_page", 1))
    frame, total = client.traces(**ui.api_window(f), service=f.service, agent=f.agent, limit=size,
                                 offset=(page - 1) * size, **params)
    pages = max(1, math.ceil(total / size))
    page_col.number_input(f"Page (of {pages:,})", min_value=1, max_value=pages, step=1, key="tr_page")
    shown_from = (page - 1) * size + 1 if total else 0
    info_col.markdown(
        f"<div style='padding-top:2rem'>{fmt.count(total)} traces · showing {shown_from:,}–"
        f"{min(page * size, total):,}</div>", unsafe_allow_html=True)
    if frame.empty:
        st.info("No traces match these filters in this time range.", icon=":material/search_off:")
    else:
        ui.pending_costs_note(frame, "traces")  # above: under a page of 50 rows no one would see it
        view = _table(frame)
        event = ui.table(
            view, {"name": "Workflow", "service": "Service", "agents": "Agents", "models": "Models",
                   "spans": "Spans", "trace_id": "Trace id"},
            link_traces=False, on_select="rerun", selection_mode="single-row", key="tr_table",
            height=min(38 + 35 * len(view), 900),
        )
        rows = event.selection.rows if event is not None else []
        if rows:
            ui.open_trace(str(view.iloc[rows[0]]["trace_id"]))
