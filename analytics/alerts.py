"""Alert evaluation: rules (data) × the latest rollup minutes and anomalies → alert state changes. Pure.

An alert is one firing episode of a rule for a subject (a service, an agent, or ``all``) of one
project: rules are evaluated per project, so an alert never counts or names another project's
traffic, and ``all`` means all of the project's services. While the
condition holds, the open alert is only refreshed (deduplicated: one row and one notification per
episode); when it stops holding, the alert resolves. The next breach opens a new episode.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from typing import Any

import pyarrow as pa

from analytics.anomaly import DEFAULT_PROJECT
from analytics.rules import AlertRule

ALERT_COLUMNS = (
    "alert_id", "rule", "severity", "project", "subject", "state", "value", "threshold", "message", "fired_at",
    "last_seen_at", "resolved_at",
)  # fmt: skip
ALERT_SCHEMA = pa.schema([
    ("alert_id", pa.string()), ("rule", pa.string()), ("severity", pa.string()), ("project", pa.string()),
    ("subject", pa.string()), ("state", pa.string()), ("value", pa.float64()), ("threshold", pa.float64()),
    ("message", pa.string()), ("fired_at", pa.timestamp("us")), ("last_seen_at", pa.timestamp("us")),
    ("resolved_at", pa.timestamp("us")),
])  # fmt: skip
_SUMMED = ("traces_started", "traces_failed", "errors", "cost_usd", "latency_sum_ms", "llm_calls", "tool_calls",
           "total_tokens")  # fmt: skip
_SUBJECT = {"service": "service_name", "agent": "agent_name"}
_LABEL = {
    "traces": "traces", "traces_failed": "failed traces", "error_rate": "error rate", "errors": "failed spans",
    "cost_usd": "cost", "avg_latency_ms": "average duration", "llm_calls": "LLM calls",
    "tool_calls": "tool calls", "tokens": "tokens",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Observation:
    rule: AlertRule
    project: str
    subject: str
    value: float
    breached: bool


Row = dict[str, Any]


def _key(row: Row, group_by: str) -> tuple[str, str]:
    """(project, subject) of a row: rules are evaluated per project and subject."""
    project = row.get("project")
    if group_by == "all":
        subject = "all"
    else:
        value = row[_SUBJECT[group_by]]
        subject = "(none)" if value is None else value
    return DEFAULT_PROJECT if project is None else project, subject


def _sums(rows: list[Row]) -> dict[str, float | int]:
    """Each counter's sum over the rows, NaN when every value is NULL. Floats are summed with
    Kahan compensation, as pandas' group sums were: alert values stay what they were."""
    out: dict[str, float | int] = {}
    for col in _SUMMED:
        values = [r[col] for r in rows if r[col] is not None]
        if not values:
            out[col] = math.nan
        elif all(isinstance(v, int) for v in values):
            out[col] = sum(values)
        else:
            total = compensation = 0.0
            for v in values:
                y = float(v) - compensation
                t = total + y
                compensation = t - total - y
                total = t
            out[col] = total
    return out


def _fmt(metric: str | None, value: float) -> str:
    if metric == "error_rate":
        return f"{value:.1%}"
    if metric == "cost_usd":
        return f"${value:.2f}"
    if metric == "avg_latency_ms":
        return f"{value / 1000:.1f} s"
    return f"{value:g}"


def observe(rules: tuple[AlertRule, ...], minutes: list[Row], anomalies: list[Row],
            now: datetime) -> list[Observation]:  # fmt: skip
    """Each rule's value per subject over its window ending at ``now``.

    ``minutes``: minute_rollup rows (minute, project, service_name, agent_name and the counters);
    ``anomalies``: project, kind, service_name, agent_name, window_end. Per project and subject.
    """
    out: list[Observation] = []
    for rule in rules:
        since = now - timedelta(minutes=rule.window_minutes)
        if rule.metric:
            groups: dict[tuple[str, str], list[Row]] = {}
            for m in minutes:
                if since <= m["minute"] < now:
                    groups.setdefault(_key(m, rule.group_by), []).append(m)
            for (project, subject), rows in sorted(groups.items()):
                s = _sums(rows)
                traces = float(s["traces_started"] or 0)
                value = {
                    "traces": traces, "traces_failed": s["traces_failed"],
                    "error_rate": (s["traces_failed"] / traces) if traces else 0.0, "errors": s["errors"],
                    "cost_usd": 0.0 if math.isnan(s["cost_usd"]) else s["cost_usd"],
                    "avg_latency_ms": (s["latency_sum_ms"] / traces) if traces else 0.0,
                    "llm_calls": s["llm_calls"], "tool_calls": s["tool_calls"], "tokens": s["total_tokens"],
                }[rule.metric]  # fmt: skip
                value = float(value or 0.0)
                enough = traces >= rule.min_traces
                out.append(Observation(rule, project, subject, value, enough and rule.breached(value)))
        else:
            counts: dict[tuple[str, str], int] = {}
            for a in anomalies:
                if a["kind"] in rule.anomaly and since < a["window_end"] <= now:
                    key = _key(a, rule.group_by)
                    counts[key] = counts.get(key, 0) + 1
            for (project, subject), n in sorted(counts.items()):
                out.append(Observation(rule, project, subject, float(n), rule.breached(float(n))))
    return out


def _message(o: Observation) -> str:
    rule = o.rule
    if rule.metric:
        what = f"{_LABEL[rule.metric]} {_fmt(rule.metric, o.value)} {rule.op} {_fmt(rule.metric, rule.threshold)}"
    else:
        what = f"{o.value:g} {'/'.join(rule.anomaly)} anomal{'y' if o.value == 1 else 'ies'}"
    return f"{rule.name} for {o.subject}: {what} in the last {rule.window_minutes} min"


def evaluate(observations: list[Observation], open_alerts: list[Row], now: datetime) -> tuple[pa.Table, list[Row], list[Row]]:  # fmt: skip
    """(rows to upsert into alerts, newly firing alerts, newly resolved alerts)."""
    # An alert stored before analytics were per project has no project: it never matches, so resolves.
    by_key = {(r.get("project"), r["rule"], r["subject"]): r for r in open_alerts}
    rows: list[Row] = []
    fired: list[Row] = []
    seen: set[tuple[str, str]] = set()
    for o in observations:
        if not o.breached:
            continue
        key = (o.project, o.rule.name, o.subject)
        seen.add(key)
        current = by_key.get(key)
        if current is not None:
            rows.append({**current, "value": o.value, "message": _message(o), "last_seen_at": now})
            continue
        alert = {
            "alert_id": hashlib.sha256(f"{o.project}|{o.rule.name}|{o.subject}|{now.isoformat()}".encode()).hexdigest()[:24],
            "rule": o.rule.name, "severity": o.rule.severity, "project": o.project, "subject": o.subject,
            "state": "firing",
            "value": o.value, "threshold": o.rule.threshold, "message": _message(o), "fired_at": now,
            "last_seen_at": now, "resolved_at": None,
        }  # fmt: skip
        rows.append(alert)
        fired.append(alert)
    resolved = []
    for key, current in by_key.items():
        if key not in seen:
            row = {**current, "state": "resolved", "resolved_at": now}
            rows.append(row)
            resolved.append(row)
    return pa.Table.from_pylist(rows, schema=ALERT_SCHEMA), fired, resolved
