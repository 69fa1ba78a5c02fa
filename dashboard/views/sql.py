"""SQL: ask anything of the span store through the collector's read-only sandbox."""

from __future__ import annotations

import io

import pandas as pd
import streamlit as st

from dashboard import charts, client, fmt, ui

EXAMPLES: dict[str, str] = {
    "Slowest traces today": """SELECT trace_id, root_name, service_name, duration_ms, span_count, cost_usd
FROM traces
WHERE start_time >= current_date
ORDER BY duration_ms DESC
LIMIT 20""",
    "Cost per agent per day": """SELECT date_trunc('day', start_time) AS day, agent_name, sum(cost_usd) AS cost_usd
FROM spans
WHERE agent_name IS NOT NULL
GROUP BY ALL
ORDER BY day, cost_usd DESC""",
    "Which tool fails most": """SELECT tool_name, count(*) AS calls,
       count(*) FILTER (WHERE status = 'error') AS failures,
       round(100.0 * failures / calls, 1) AS failure_pct
FROM spans
WHERE kind = 'tool'
GROUP BY ALL
ORDER BY failures DESC""",
    "p95 latency by model": """SELECT model, count(*) AS calls,
       round(quantile_cont(duration_ms, 0.95)) AS p95_ms,
       round(avg(duration_ms)) AS avg_ms
FROM spans
WHERE kind = 'llm' AND model IS NOT NULL
GROUP BY ALL
ORDER BY p95_ms DESC""",
    "Requests per minute (last hour)": """SELECT time_bucket(INTERVAL '1 minute', start_time) AS minute, count(*) AS requests
FROM spans
WHERE parent_span_id IS NULL AND start_time >= now()::TIMESTAMP - INTERVAL '1 hour'
GROUP BY ALL
ORDER BY minute""",
    "Errors by message": """SELECT kind, coalesce(error_type, status_message) AS error, count(*) AS spans
FROM spans
WHERE status = 'error'
GROUP BY ALL
ORDER BY spans DESC
LIMIT 20""",
}


def _example_changed() -> None:
    st.session_state["sql_text"] = EXAMPLES[st.session_state["sql_example"]]


def _downloads(frame: pd.DataFrame) -> None:
    left, right, _ = st.columns([1, 1, 4])
    left.download_button("Download CSV", frame.to_csv(index=False).encode(), "tracehouse-query.csv", "text/csv",
                         icon=":material/download:")
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    right.download_button("Download Parquet", buffer.getvalue(), "tracehouse-query.parquet",
                          "application/vnd.apache.parquet", icon=":material/download:")


def _chart(frame: pd.DataFrame) -> None:
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    if frame.empty or not numeric or len(frame.columns) < 2:
        return
    with st.expander("Quick chart", expanded=True):
        a, b, c = st.columns(3)
        kind = a.selectbox("Chart", ["bar", "line", "scatter"], key="sql_chart_kind")
        x = b.selectbox("X", list(frame.columns), key="sql_x")
        y_choices = [c for c in numeric if c != x] or numeric
        y = c.selectbox("Y", y_choices, key="sql_y")
        st.plotly_chart(charts.quick_chart(frame, kind, x, y), key="sql_chart")


ui.header("SQL", "Read-only DuckDB SQL over `spans`, `traces`, `sessions` and the analytics tables.")
if "sql_text" not in st.session_state:
    st.session_state["sql_text"] = EXAMPLES["p95 latency by model"]
st.selectbox("Example queries", list(EXAMPLES), index=None, placeholder="Start from an example…",
             key="sql_example", on_change=_example_changed)
with st.form("sql_form", border=False):
    sql = st.text_area("Query", key="sql_text", height=200, label_visibility="collapsed")
    run = st.form_submit_button("Run query", type="primary", icon=":material/play_arrow:")
with ui.guard():
    if run or "sql_result" not in st.session_state:  # a first visit shows the example's answer at once
        st.session_state.pop("sql_result", None)
        st.session_state["sql_result"] = client.run_sql(sql)
    result: client.SqlResult = st.session_state["sql_result"]
    frame = result.frame
    note = " · **truncated** to the row limit" if result.truncated else ""
    st.caption(f"{fmt.count(len(frame))} rows · {len(frame.columns)} columns · {result.elapsed_ms:,.0f} ms{note}")
    st.dataframe(frame, hide_index=True, height=min(38 + 35 * max(len(frame), 1), 520))
    _downloads(frame)
    _chart(frame)
