"""Trace detail: the waterfall of every span and the selected span's details."""

from __future__ import annotations

import html
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import charts, client, fmt, messages, queries, ui

CHAT_ROLES = {"user": "user", "human": "user", "assistant": "assistant", "ai": "assistant", "model": "assistant"}


def _trace_id() -> str | None:
    from_url = st.query_params.get("trace_id")
    if from_url and from_url != st.session_state.get("trace_id"):
        st.session_state["trace_id"] = from_url
        st.session_state.pop("span_pick", None)
    typed = st.text_input("Trace id", value=st.session_state.get("trace_id") or "", placeholder="32 hex digits",
                          label_visibility="collapsed")
    if typed.strip() and typed.strip() != st.session_state.get("trace_id"):
        st.session_state["trace_id"] = typed.strip()
        st.session_state.pop("span_pick", None)
        st.query_params["trace_id"] = typed.strip()
    return st.session_state.get("trace_id")


def _with_costs(spans: pd.DataFrame, trace_id: str) -> pd.DataFrame:
    """Join each span's cost from the analytics jobs (absent until they have run: unknown, not $0)."""
    try:
        costs = client.query(queries.span_costs(trace_id))
    except client.ApiError:
        costs = pd.DataFrame()
    extra = [c for c in costs.columns if c == "span_id" or c not in spans.columns]
    if costs.empty or len(extra) < 2:
        return spans
    return spans.merge(costs[extra], on="span_id", how="left")


def _summary(spans: pd.DataFrame) -> None:
    roots = spans[spans["depth"] == 0]
    root = roots.iloc[0] if not roots.empty else spans.iloc[0]
    errors = int((spans["status"] == "error").sum())
    start, end = spans["start_time"].min(), spans["end_time"].max()
    total_ms = (end - start).total_seconds() * 1000
    badge = ":red-badge[:material/error: error]" if errors else ":green-badge[:material/check: ok]"
    title = root.get("workflow_name") or root["name"]
    st.markdown(f"### {title} {badge}")
    meta = [f"service **{root.get('service_name') or '–'}**", f"started {fmt.when(start)}",
            f"trace `{root['trace_id']}`"]
    if isinstance(root.get("user_id"), str):
        meta.append(f"user **{root['user_id']}**")
    st.caption(" · ".join(meta))
    tokens = spans.get("input_tokens", pd.Series(dtype=float)).fillna(0).sum() + spans.get(
        "output_tokens", pd.Series(dtype=float)).fillna(0).sum()
    cost = spans["cost_usd"].sum(min_count=1) if "cost_usd" in spans else None
    # LLM calls the cost job has not been through yet: it gives every call it sees a cost_status,
    # priced or not (no column at all: it has seen none of this trace's calls)
    status = spans["cost_status"] if "cost_status" in spans else pd.Series(None, index=spans.index, dtype=object)
    unpriced_yet = int(((spans["kind"] == "llm") & status.isna()).sum())
    ui.kpis([
        ("Duration", fmt.duration(total_ms), None),
        ("Spans", fmt.count(len(spans)), None),
        ("LLM calls", fmt.count((spans["kind"] == "llm").sum()), None),
        ("Tool calls", fmt.count((spans["kind"] == "tool").sum()), None),
        ("Tokens", fmt.count(tokens), "Input + output tokens of every LLM call"),
        ("Cost", fmt.cost(cost, pending=unpriced_yet > 0),
         f"{unpriced_yet} LLM calls not priced yet: the analytics jobs price them every minute by default"
         if unpriced_yet else "Unpriced models count as unknown, not $0"),
        ("Errors", fmt.count(errors), None),
    ])
    sessions = spans["session_id"].dropna().unique() if "session_id" in spans else []
    if len(sessions) and st.button(f"Open session {sessions[0]}", icon=":material/forum:"):
        ui.open_session(str(sessions[0]))


def _visible(spans: pd.DataFrame) -> pd.DataFrame:
    a, b, c = st.columns([3, 2, 1])
    kinds = list(dict.fromkeys(spans["kind"]))
    chosen = a.multiselect("Span kinds", kinds, default=kinds, key="wf_kinds")
    text = b.text_input("Find span", placeholder="name contains…", key="wf_find")
    errors_only = c.toggle("Errors only", key="wf_errors")
    mask = spans["kind"].isin(chosen)
    if text:
        mask &= spans["name"].str.contains(text, case=False, regex=False)
    if errors_only:
        mask &= spans["status"] == "error"
    return spans[mask].reset_index(drop=True)


def _clicked(visible: pd.DataFrame) -> None:
    """A click on the waterfall selects that span (read before anything is drawn)."""
    state = st.session_state.get("wf_chart")
    points = (state or {}).get("selection", {}).get("points", []) if isinstance(state, dict) else []
    points = points or (getattr(getattr(state, "selection", None), "points", None) or [])
    for point in points:
        custom = point.get("customdata")
        span_id = custom[0] if isinstance(custom, list) and custom else None
        if span_id is None and point.get("curve_number") == 0 and point.get("point_index") is not None:
            index = int(point["point_index"])
            span_id = visible.iloc[index]["span_id"] if index < len(visible) else None
        if span_id and span_id != st.session_state.get("wf_last_click"):
            st.session_state["wf_last_click"] = span_id
            st.session_state["span_pick"] = span_id
        break


def _present(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _facts(span: pd.Series) -> list[tuple[str, str]]:
    status = {"unset": "ok (no status set)"}.get(str(span["status"]), str(span["status"]))
    facts = [("Kind", str(span["kind"])), ("Status", status),
             ("Duration", fmt.duration(span["duration_ms"])), ("Start", fmt.when(span["start_time"]))]

    def add(label: str, key: str, render: Any = str) -> None:
        value = span.get(key)
        if value is not None and not (isinstance(value, float) and pd.isna(value)):
            facts.append((label, render(value)))

    add("Agent", "agent_name")
    add("Model", "model")
    add("Provider", "provider")
    add("Tool", "tool_name")
    add("Input tokens", "input_tokens", fmt.count)
    add("Output tokens", "output_tokens", fmt.count)
    add("Cached tokens", "cached_tokens", fmt.count)
    add("Reasoning tokens", "reasoning_tokens", fmt.count)
    if span.get("kind") == "llm" or pd.notna(span.get("cost_usd", None)):
        status, cost = span.get("cost_status"), span.get("cost_usd")
        facts.append(("Cost", "unpriced model" if status == "unpriced" else fmt.money(cost) if pd.notna(cost)
                      else "not computed yet" if pd.isna(status) else fmt.MISSING))
    if pd.notna(span.get("handoff_from")) or pd.notna(span.get("handoff_to")):
        facts.append(("Handoff", f"{span.get('handoff_from') or '?'} → {span.get('handoff_to') or '?'}"))
    add("Guardrail tripped", "guardrail_triggered", lambda v: "yes" if v else "no")
    add("Error type", "error_type")
    add("Span id", "span_id")
    return facts


def _chat(items: list[messages.Message]) -> None:
    if not items:
        st.caption("Nothing recorded.")
    for item in items:
        role = CHAT_ROLES.get(item.role.lower())
        with st.chat_message(role or "ai", avatar=None if role else ":material/settings:"):
            st.caption(item.role)
            st.markdown(item.text if len(item.text) < 20_000 else item.text[:20_000] + "\n\n… (shortened here)")


def _details(span: pd.Series) -> None:
    color = fmt.kind_color(span["kind"])
    st.markdown(f"<span style='background:{color};color:white;border-radius:4px;padding:2px 8px;"
                f"font-size:0.8rem'>{span['kind']}</span> **{span['name']}**", unsafe_allow_html=True)
    if span["status"] == "error":
        st.error(span.get("status_message") or "This span failed (no message recorded).", icon=":material/error:")
    cells = "".join(f"<div class='th-k'>{html.escape(k)}</div><div class='th-v'>{html.escape(v)}</div>"
                    for k, v in _facts(span))
    st.markdown(f"<div class='th-facts'>{cells}</div>", unsafe_allow_html=True)
    attributes = span.get("attributes") if isinstance(span.get("attributes"), dict) else {}
    if span["kind"] == "llm":
        tabs = st.tabs(["Input messages", "Output"])
        with tabs[0]:
            _chat(messages.messages(span.get("input"), attributes, "input"))
        with tabs[1]:
            _chat(messages.messages(span.get("output"), attributes, "output"))
    else:
        first, second = ("Arguments", "Result") if span["kind"] == "tool" else ("Input", "Output")
        for label, key in ((first, "input"), (second, "output")):
            text = messages.pretty(span.get(key))
            if text:
                st.markdown(f"**{label}**")
                st.code(text[:50_000], language="json" if text[:1] in "[{" else None, wrap_lines=True)
    if span.get("payload_truncated"):
        st.caption(":material/content_cut: The payload was longer than the collector's limit and is truncated.")
    with st.expander("All attributes", expanded=not (_present(span.get("input")) or _present(span.get("output")))):
        st.json(attributes or {}, expanded=2)
    for key, label in (("events", "Events"), ("resource", "Resource")):
        value = span.get(key)
        if value:
            with st.expander(label):
                st.json(value, expanded=1)


ui.header("Trace detail")
with ui.guard():
    trace_id = _trace_id()
    if not trace_id:
        st.info("Pick a trace on the **Traces** page, or paste a trace id above.", icon=":material/info:")
        st.stop()
    spans = charts.tree_order(client.trace(trace_id))
    if spans.empty:
        st.warning(f"Trace {trace_id} has no spans.")
        st.stop()
    spans = _with_costs(spans, trace_id)
    _summary(spans)
    visible = _visible(spans)
    _clicked(visible)
    left, right = st.columns([3, 2], gap="medium")
    with right:
        labels = {sid: "\u00a0\u00a0" * min(int(d), 20) + f"{n} · {fmt.duration(ms)}"
                  for sid, n, d, ms in zip(spans["span_id"], spans["name"], spans["depth"], spans["duration_ms"])}
        if st.session_state.get("span_pick") not in labels:  # first look: a failure, else the first LLM call
            errors, llm = spans[spans["status"] == "error"], spans[spans["kind"] == "llm"]
            st.session_state["span_pick"] = next(f for f in (errors, llm, spans) if not f.empty).iloc[0]["span_id"]
        picked = st.selectbox("Span", list(labels), format_func=labels.__getitem__, key="span_pick")
        _details(spans[spans["span_id"] == picked].iloc[0])
    with left:
        if visible.empty:
            st.info("No span matches these filters.")
        else:
            if len(visible) > charts.WATERFALL_MAX_ROWS:
                st.caption(f"{len(visible):,} spans · drag the chart up or down to scroll, double-click to reset")
            st.plotly_chart(charts.waterfall(visible, picked), key="wf_chart", on_select="rerun",
                            selection_mode="points", config={"displaylogo": False, "scrollZoom": True})
