"""SQL: ask anything of the span store through the collector's read-only sandbox."""

from __future__ import annotations

import io

import pandas as pd
import streamlit as st

from dashboard import charts, client, fmt, queries, ui

def _example_changed() -> None:
    st.session_state["sql_text"] = queries.SQL_EXAMPLES[st.session_state["sql_example"]]


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


ui.header("SQL", "Read-only SQL over `spans`, `traces`, `sessions` and the analytics tables, in the store's "
          "dialect (DuckDB; ClickHouse on a ClickHouse store). The examples run on either.")
if "sql_text" not in st.session_state:
    st.session_state["sql_text"] = queries.SQL_EXAMPLES["p95 latency by model"]
st.selectbox("Example queries", list(queries.SQL_EXAMPLES), index=None, placeholder="Start from an example…",
             key="sql_example", on_change=_example_changed)
with st.form("sql_form", border=False):
    sql = st.text_area("Query", key="sql_text", height=200, label_visibility="collapsed")
    run = st.form_submit_button("Run query", type="primary", icon=":material/play_arrow:")
with ui.guard():
    if run or "sql_result" not in st.session_state:  # a first visit shows the example's answer at once
        st.session_state.pop("sql_result", None)
        # An example as given is DuckDB SQL (a ClickHouse store translates it); typed SQL is the store's.
        example = sql.strip() in {text.strip() for text in queries.SQL_EXAMPLES.values()}
        st.session_state["sql_result"] = client.run_sql(sql, dialect=client.PAGES_DIALECT if example else None)
    result: client.SqlResult = st.session_state["sql_result"]
    frame = result.frame
    note = " · **truncated** to the row limit" if result.truncated else ""
    st.caption(f"{fmt.count(len(frame))} rows · {len(frame.columns)} columns · {result.elapsed_ms:,.0f} ms{note}")
    # A query result shows SQL's NULL as SQL writes it (Streamlit's default says "None").
    st.dataframe(frame, hide_index=True, height=min(38 + 35 * max(len(frame), 1), 520), placeholder="NULL")
    _downloads(frame)
    _chart(frame)
