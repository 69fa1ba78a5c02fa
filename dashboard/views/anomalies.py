"""Anomalies & alerts: what the analytics jobs detected, why, and links to the traces."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import client, fmt, queries, ui


def _table(table: str, time_column: str, f: queries.Filters) -> pd.DataFrame | None:
    """The table's rows in the window, or None when analytics has not created it yet."""
    try:
        return client.query(queries.recent_rows(table, time_column, f))
    except client.ApiError as exc:
        if "does not exist" in str(exc) or "not found" in str(exc).lower():
            return None
        raise


ui.header("Anomalies & alerts", "Unusual latency, cost and error rates, and the alert rules they tripped.")
with ui.guard():
    f = ui.filters()
    anomalies = _table("anomalies", "detected_at", f)
    alerts = _table("alerts", "fired_at", f)
    ui.kpis([
        ("Anomalies", fmt.count(len(anomalies)) if anomalies is not None else "–", "Detected in the time range"),
        ("Alerts", fmt.count(len(alerts)) if alerts is not None else "–", "Rules that fired in the time range"),
    ])
    ui.section("Alerts", alerts, empty="No alert fired in this time range.", good_when_empty=True,
               missing="The analytics jobs have not created the alerts table yet.", key="alerts_table")
    ui.section("Anomalies", anomalies, empty="Nothing unusual in this time range.", good_when_empty=True,
               missing="The analytics jobs have not created the anomalies table yet.", key="anomalies_table")
