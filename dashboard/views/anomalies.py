"""Anomalies & alerts: what the analytics jobs detected, why, and links to the traces."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, fmt, queries, ui


def _pick(frame: pd.DataFrame | None, columns: list[str]) -> pd.DataFrame | None:
    return None if frame is None else frame[[c for c in columns if c in frame]]


ui.header("Anomalies & alerts", "Unusual latency, cost and error rates found by the analytics jobs, and the "
          "alert rules they tripped. Each row says why; open the trace to see it.")
with ui.guard():
    f = ui.filters()
    anomalies = ui.optional(queries.recent_rows("anomalies", "detected_at", f))
    alerts = ui.optional(queries.recent_rows("alerts", "fired_at", f))
    firing = 0 if alerts is None or "state" not in alerts else int((alerts["state"] == "firing").sum())
    ui.kpis([
        ("Alerts firing", fmt.count(firing) if alerts is not None else fmt.MISSING, "Rules firing now"),
        ("Alerts in range", fmt.count(len(alerts)) if alerts is not None else fmt.MISSING, "Firing episodes in the time range"),
        ("Anomalies", fmt.count(len(anomalies)) if anomalies is not None else fmt.MISSING, "Detected in the time range"),
        ("Traces flagged", fmt.count(anomalies["trace_id"].nunique()) if anomalies is not None
         and "trace_id" in anomalies else fmt.MISSING, None),
    ])
    if alerts is not None and "severity" in alerts:  # most severe first, newest first within each
        alerts = alerts.sort_values("severity", key=fmt.severity_rank, kind="stable")
    ui.section("Alerts", _pick(alerts, ["severity", "state", "rule", "subject", "message", "value", "threshold",
                                        "fired_at", "last_seen_at", "resolved_at"]),
               empty="No alert fired in this time range.", good_when_empty=True,
               missing="The analytics jobs have not created the alerts table yet.", key="alerts_table",
               labels={"fired_at": "Fired (UTC)", "last_seen_at": "Last seen (UTC)", "resolved_at": "Resolved (UTC)"})
    shown = ui.section(
        "Anomalies", _pick(anomalies, ["detected_at", "kind", "reason", "service_name", "agent_name", "score",
                                       "detector", "trace_id"]),
        empty="Nothing unusual in this time range.", good_when_empty=True,
        missing="The analytics jobs have not created the anomalies table yet.", key="anomalies_table",
        labels={"detected_at": "Detected (UTC)", "reason": "Why"},
    )
    if shown and anomalies is not None:
        counts = anomalies.groupby("kind", as_index=False).size().rename(columns={"size": "anomalies"})
        st.plotly_chart(charts.hbar(counts, "kind", "anomalies", title="Anomalies by kind", color="#F97316"),
                        key="anomaly_kinds")
