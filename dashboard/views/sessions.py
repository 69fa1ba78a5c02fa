"""Sessions: conversations grouped by session id, read turn by turn with their traces."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, client, fmt, messages, queries, ui

MAX_TURNS = 50


def _first(values: pd.Series) -> object:
    values = values.dropna()
    return values.iloc[0] if not values.empty else None


def _turn_text(spans: pd.DataFrame) -> tuple[str, str]:
    """What the user asked and what the agents finally answered, from the trace's spans."""
    spans = charts.tree_order(spans)
    asked = answered = ""
    for payload in spans["input"].dropna() if "input" in spans else []:
        users = [m for m in messages.messages(payload) if m.role.lower() in ("user", "human")]
        if users:
            asked = users[-1].text
            break
    llm = spans[spans["kind"] == "llm"] if "kind" in spans else spans.iloc[0:0]
    for payload in reversed(list(llm["output"].dropna()) if "output" in llm else []):
        said = messages.messages(payload, direction="output")
        if said:
            answered = said[-1].text
            break
    if not asked and "input" in spans:
        asked = messages.pretty(_first(spans["input"]))
    if not answered and "output" in spans:
        answered = messages.pretty(_first(spans[spans["depth"] == 0]["output"]))
    return asked, answered


def _list(f: queries.Filters) -> str | None:
    frame = client.query(queries.recent_sessions(f))
    if frame.empty:
        st.info("No sessions in this time range. Spans carry a session when the agent sets "
                "`session.id` or `gen_ai.conversation.id` (the Agents SDK group id).", icon=":material/info:")
        return None
    total = client.query(queries.session_count(f)).iloc[0]["sessions"]
    # The count is approximate (HyperLogLog) and may come out just under a page that is complete.
    shown_all = len(frame) >= total and len(frame) < queries.RECENT_SESSIONS
    st.caption((f"{len(frame)} sessions in this time range, most recent first" if shown_all else
                f"about {fmt.count(total)} sessions in this time range · the {len(frame)} most recent first")
               + " · select one to read it")
    shown = [c for c in ("session_id", "user_id", "first_seen", "last_seen", "trace_count", "error_traces",
                         "llm_calls", "tool_calls", "input_tokens", "output_tokens", "cost_usd") if c in frame]
    event = ui.table(
        frame[shown], {"first_seen": "Started (UTC)", "last_seen": "Last activity (UTC)", "error_traces": "Failed turns"},
        link_traces=False, on_select="rerun", selection_mode="single-row", key="ss_table",
        height=min(38 + 35 * len(frame), 420),
    )
    ui.pending_costs_note(frame, "sessions", last="last_seen")
    rows = event.selection.rows if event is not None else []
    if rows:
        return str(frame.iloc[rows[0]]["session_id"])
    return st.session_state.get("session_id")


def _conversation(session_id: str) -> None:
    detail = client.session(session_id)
    turns = detail["traces"]
    if turns.empty:
        st.warning(f"Session {session_id} has no traces.")
        return
    turns = turns.sort_values("start_time")
    cost = turns["cost_usd"].sum(min_count=1) if "cost_usd" in turns else None
    pending = ui.cost_pending(turns, ui.costs_pending_from())
    st.markdown(f"### Session `{session_id}`")
    ui.kpis([
        ("Turns", fmt.count(len(turns)), None),
        ("Failed turns", fmt.count((turns["status"] == "error").sum()), None),
        ("Total time", fmt.duration(turns["duration_ms"].sum()), "Sum of the turns' durations"),
        ("Cost", fmt.cost(cost, pending=bool(pending.any())),
         "Not computed yet for the newest turns: the analytics jobs price LLM calls every minute by default"
         if pending.any() else None),
    ])
    if len(turns) > MAX_TURNS:
        st.caption(f"Showing the last {MAX_TURNS} of {len(turns)} turns.")
        turns = turns.tail(MAX_TURNS)
    shown = zip(turns.itertuples(index=False), pending.loc[turns.index])
    for number, (turn, cost_pending) in enumerate(shown, start=1):
        cost_text = fmt.cost(getattr(turn, "cost_usd", None), pending=cost_pending)
        label = f"Turn {number} · {fmt.when(turn.start_time)} · {fmt.duration(turn.duration_ms)} · {cost_text}"
        with st.container(border=True):
            st.markdown(f"{fmt.badge('error' if turn.status == 'error' else 'ok')} **{label}**")
            asked, answered = _turn_text(client.trace(turn.trace_id))
            with st.chat_message("user"):
                st.markdown(asked[:4000] or "_no input recorded_")
            with st.chat_message("assistant"):
                st.markdown(answered[:4000] or "_no answer recorded_")
            if st.button("Open trace", key=f"turn_{turn.trace_id}", icon=":material/waterfall_chart:"):
                ui.open_trace(turn.trace_id)


ui.header("Sessions", "Conversations, turn by turn. Each turn is one trace.")
with ui.guard():
    wanted = st.query_params.get("session")
    if wanted:
        st.session_state["session_id"] = wanted
    chosen = _list(ui.filters())
    if chosen:
        st.session_state["session_id"] = chosen
        _conversation(chosen)
