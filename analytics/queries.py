"""SQL of the detection and alert steps, and of the jobs' watermarks (analytics_state)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa

from analytics.anomaly import ANOMALY_COLUMNS, first_per_id
from analytics.rollups import fetch_table, replace_rows


def read_state(cur: duckdb.DuckDBPyConnection, job: str) -> tuple[datetime | None, str | None]:
    rows = cur.execute(  # fetchall, not fetchone: the cursor's result is finished for what follows
        "SELECT watermark, fingerprint FROM analytics_state WHERE job = ? ORDER BY updated_at DESC LIMIT 1",
        [job],
    ).fetchall()
    return (rows[0][0], rows[0][1]) if rows else (None, None)


def write_state(con: duckdb.DuckDBPyConnection, job: str, watermark: datetime | None, fingerprint: str | None,
                now: datetime) -> None:  # fmt: skip
    con.execute("DELETE FROM analytics_state WHERE job = ?", [job])
    con.execute(
        "INSERT INTO analytics_state VALUES (?, ?, ?, ?)", [job, watermark, fingerprint, now]
    )


# The group a trace is compared within: the same key as analytics.anomaly.group_key.
GROUP_KEY_SQL = (
    "coalesce(workflow_name, service_name, 'default') || '/' || coalesce(agent_name, '-')"
)


def baseline_traces(
    cur: duckdb.DuckDBPyConnection, lo: datetime, hi: datetime, per_group: int
) -> pa.Table:
    """Trace features started in [lo, hi], at most ``per_group`` per group (a deterministic sample
    by trace id): the rolling window the forests are trained on, without moving a week of rows.

    The sample is picked per group with ``min_by(.., n)`` (``per_group`` ids per group), then
    fetched: a window over every row of the week would sort whole rows and grow with the store."""
    return fetch_table(
        cur,
        f"""WITH picked AS (
                SELECT unnest(min_by(trace_id, hash(trace_id), $n)) AS trace_id
                FROM trace_features WHERE start_time >= $lo AND start_time <= $hi
                GROUP BY project, {GROUP_KEY_SQL})
            SELECT * FROM trace_features
            WHERE start_time >= $lo AND start_time <= $hi AND trace_id IN (SELECT trace_id FROM picked)""",
        {"lo": lo, "hi": hi, "n": per_group},
    )


def error_windows(
    cur: duckdb.DuckDBPyConnection, lo: datetime, hi: datetime, minutes: int
) -> pa.Table:
    """Traces and failed traces per project, service and tumbling window in [lo, hi) (as DOUBLE:
    the detectors divide them)."""
    return fetch_table(
        cur,
        f"""SELECT project, service_name, time_bucket(INTERVAL {int(minutes)} MINUTE, minute) AS window_start,
                   CAST(sum(traces_started) AS DOUBLE) AS traces, CAST(sum(traces_failed) AS DOUBLE) AS failed
            FROM minute_rollup WHERE minute >= ? AND minute < ? GROUP BY ALL""",
        [lo, hi],
    )


def minute_series(cur: duckdb.DuckDBPyConnection, lo: datetime, hi: datetime) -> pa.Table:
    """Per project, service and minute: traces, typical duration, error rate, cost and tokens.

    The typical duration is the agents' median durations weighted by their traces: one very
    slow trace (already reported by itself) does not make its whole minute a latency spike.
    """
    return fetch_table(
        cur,
        """SELECT project, service_name, minute, CAST(sum(traces_started) AS DOUBLE) AS traces,
                  sum(latency_p50_ms * traces_started) / nullif(sum(traces_started), 0)
                      AS typical_latency_ms,
                  sum(traces_failed) / nullif(sum(traces_started), 0) AS error_rate,
                  coalesce(sum(cost_usd), 0) AS cost_usd, CAST(sum(total_tokens) AS DOUBLE) AS tokens
           FROM minute_rollup WHERE minute >= ? AND minute < ? GROUP BY ALL""",
        [lo, hi],
    )


def insert_anomalies(con: duckdb.DuckDBPyConnection, found: pa.Table) -> dict[tuple[str, str], int]:
    """Insert anomalies not already stored (by anomaly_id); returns the new ones' count per (project, kind)."""
    if found.num_rows == 0:
        return {}
    con.register("_anomalies", first_per_id(found).select(list(ANOMALY_COLUMNS)))
    try:
        fresh = (
            "SELECT * FROM _anomalies WHERE anomaly_id NOT IN (SELECT anomaly_id FROM anomalies)"
        )
        counts = con.execute(f"SELECT project, kind, count(*) FROM ({fresh}) GROUP BY ALL").fetchall()
        con.execute(f"INSERT INTO anomalies BY NAME {fresh}")
    finally:
        con.unregister("_anomalies")
    return {(str(p), str(k)): int(n) for p, k, n in counts}


def recent_minutes(cur: duckdb.DuckDBPyConnection, now: datetime, minutes: int) -> list[dict[str, Any]]:
    return fetch_table(
        cur,
        "SELECT * EXCLUDE (latency_hist) FROM minute_rollup WHERE minute >= ? AND minute < ?",
        [now - timedelta(minutes=minutes), now],
    ).to_pylist()


def recent_anomalies(cur: duckdb.DuckDBPyConnection, now: datetime, minutes: int) -> list[dict[str, Any]]:
    return fetch_table(
        cur,
        "SELECT project, kind, service_name, agent_name, window_end FROM anomalies WHERE window_end > ? AND window_end <= ?",
        [now - timedelta(minutes=minutes), now],
    ).to_pylist()


def open_alerts(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    return fetch_table(cur, "SELECT * FROM alerts WHERE state = 'firing'").to_pylist()


def upsert_alerts(con: duckdb.DuckDBPyConnection, rows: pa.Table) -> None:
    replace_rows(con, "alerts", rows, ["alert_id"])
