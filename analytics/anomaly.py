"""Anomaly detection over trace summaries and per-minute series. Pure: frames in, frames out.

Three detectors, each explaining itself in ``reason``:

* rules from the playbook (``detector='rule'``): ``slow_trace``, ``high_cost``, ``loop`` per trace,
  ``error_rate`` per service and tumbling window;
* per workflow/agent IsolationForest (``detector='isolation_forest'``), trained on the group's
  rolling baseline with a fixed random state. A trace it isolates is reported when its most unusual
  feature is also at least ``trace_z`` robust standard deviations (1.4826·MAD) from the baseline
  median; the kind names that feature (``latency_outlier``, ``cost_outlier``, ``loop_outlier``, ...).
  Requiring both keeps the forest's false alarms on ordinary traffic out. A forest scores extremes
  of a single feature weakly when the other features vary (a 20x slower trace often scores like the
  noisiest ordinary ones), so a feature at least ``trace_z_alone`` robust SDs off is reported
  without the forest (``detector='robust_z'``);
* robust z-scores of each minute against the trailing baseline (``detector='robust_z'``):
  ``latency_spike``, ``error_rate_spike``, ``cost_spike``, ``token_spike`` per service.

``score`` is the robust z (or, for rules, the value over the threshold). Every detector works
within one project: a trace is compared with its own project's baseline, a series is one
project's service, and each anomaly carries its ``project``.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from analytics.rules import Detection

ANOMALY_COLUMNS = (
    "anomaly_id", "detected_at", "kind", "detector", "project", "trace_id", "service_name", "agent_name",
    "score", "reason", "window_start", "window_end",
)  # fmt: skip
DEFAULT_PROJECT = "default"  # the project of rows from frames without one (spans' default)
# feature → (kind of anomaly it names, log-scaled?, label, unit)
FEATURES: dict[str, tuple[str, bool, str, str]] = {
    "duration_ms": ("latency_outlier", True, "duration", "ms"),
    "cost_usd": ("cost_outlier", True, "cost", "usd"),
    "total_tokens": ("cost_outlier", True, "tokens", ""),
    "tokens_per_call": (
        "cost_outlier",
        True,
        "tokens per LLM call",
        "",
    ),  # derived: a blow-up of one call
    "llm_calls": ("cost_outlier", False, "LLM calls", ""),
    # before tool_calls: a loop raises both equally, and the first of equal deviations names the kind
    "max_repeated_tool_calls": ("loop_outlier", False, "identical tool calls", ""),
    "tool_calls": ("tool_calls_outlier", False, "tool calls", ""),
    "errors": ("errors_outlier", False, "errors", ""),
    "handoffs": ("handoffs_outlier", False, "handoffs", ""),
}
# Log-scaled features are taken in units where ordinary values are well above 1 (cost in µ$).
_UNIT = {"cost_usd": 1e6}
# Smallest scale a feature's deviation is measured in: log features 0.1 (about 10 %), counts 1.
_MIN_SCALE = {True: 0.1, False: 1.0}


def anomaly_id(kind: str, *subject: object) -> str:
    return hashlib.sha256("|".join([kind, *map(str, subject)]).encode()).hexdigest()[:24]


def _fmt(value: float, unit: str) -> str:
    if unit == "ms":
        return f"{value / 1000:.1f} s" if value >= 1000 else f"{value:.0f} ms"
    if unit == "usd":
        return f"${value:.4g}"
    return f"{value:.0f}"


def projects(df: pd.DataFrame) -> pd.Series:
    """Each row's project: detection never compares or mixes two projects' traffic."""
    if "project" not in df:
        return pd.Series(DEFAULT_PROJECT, index=df.index, dtype="object")
    return df["project"].fillna(DEFAULT_PROJECT).astype("object")


def group_key(df: pd.DataFrame) -> pd.Series:
    """Traces are compared within their workflow and first agent (else their service)."""
    workflow = df["workflow_name"].fillna(df["service_name"]).fillna("default").astype(str)
    return workflow + "/" + df["agent_name"].fillna("-").astype(str)


def _row(kind: str, detector: str, t: pd.Series | None, score: float, reason: str, start: datetime,
         end: datetime, detected_at: datetime, service: str | None = None, agent: str | None = None,
         subject: object = None, project: str | None = None) -> dict[str, object]:  # fmt: skip
    trace_id = None if t is None else t["trace_id"]
    if t is not None:
        project = t.get("project")
    project = DEFAULT_PROJECT if project is None or pd.isna(project) else str(project)
    return {
        # A trace id names one trace; a service name is only unique within its project.
        "anomaly_id": anomaly_id(kind, trace_id, "") if trace_id else anomaly_id(kind, project, subject, start),
        "detected_at": detected_at,
        "kind": kind,
        "detector": detector,
        "project": project,
        "trace_id": trace_id,
        "service_name": service if t is None else t["service_name"],
        "agent_name": agent if t is None else t["agent_name"],
        "score": float(score),
        "reason": reason,
        "window_start": start,
        "window_end": end,
    }


def _frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(ANOMALY_COLUMNS))


def trace_rules(traces: pd.DataFrame, cfg: Detection, detected_at: datetime) -> pd.DataFrame:
    """slow_trace, high_cost and loop for each trace."""
    rows = []
    for _, t in traces[traces["duration_ms"] > cfg.slow_trace_ms].iterrows():
        ratio = t["duration_ms"] / cfg.slow_trace_ms
        rows.append(_row("slow_trace", "rule", t, ratio,
                         f"trace took {_fmt(t['duration_ms'], 'ms')}, over the {_fmt(cfg.slow_trace_ms, 'ms')} "
                         f"limit ({ratio:.1f}x)", t["start_time"], t["end_time"], detected_at))  # fmt: skip
    for _, t in traces[traces["cost_usd"].fillna(0) > cfg.high_cost_usd].iterrows():
        ratio = t["cost_usd"] / cfg.high_cost_usd
        rows.append(_row("high_cost", "rule", t, ratio,
                         f"trace cost {_fmt(t['cost_usd'], 'usd')}, over the {_fmt(cfg.high_cost_usd, 'usd')} "
                         f"limit ({ratio:.1f}x)", t["start_time"], t["end_time"], detected_at))  # fmt: skip
    for _, t in traces[traces["max_repeated_tool_calls"] >= cfg.loop_min_repeats].iterrows():
        repeats = int(t["max_repeated_tool_calls"])
        rows.append(_row("loop", "rule", t, repeats / cfg.loop_min_repeats,
                         f"tool {t['repeated_tool']!r} was called {repeats} times with identical arguments "
                         f"(loop limit {cfg.loop_min_repeats})", t["start_time"], t["end_time"], detected_at))  # fmt: skip
    return _frame(rows)


def _with_derived(df: pd.DataFrame) -> pd.DataFrame:
    calls = df["llm_calls"].astype("float64").clip(lower=1)
    return df.assign(tokens_per_call=df["total_tokens"].astype("float64") / calls)


def _transform(df: pd.DataFrame, cost_fill: float) -> np.ndarray:
    """Feature matrix. An unpriced trace's NULL cost is taken as the baseline's median cost: unknown
    is not $0, and its tokens still show any blow-up."""
    df = _with_derived(df)
    cols = []
    for name, (_, log, _, _) in FEATURES.items():
        fill = cost_fill if name == "cost_usd" else 0.0
        values = df[name].astype("float64").fillna(fill).clip(lower=0).to_numpy() * _UNIT.get(
            name, 1.0
        )
        cols.append(np.log1p(values) if log else values)
    return np.column_stack(cols)


def trace_outliers(candidates: pd.DataFrame, baseline: pd.DataFrame, cfg: Detection,
                   detected_at: datetime) -> pd.DataFrame:  # fmt: skip
    """IsolationForest per workflow over the trace features, explained by robust z-scores."""
    if candidates.empty:
        return _frame([])
    # Imported here: scikit-learn adds ~85 MB to the collector's RSS, paid only once traces exist.
    from sklearn.ensemble import IsolationForest
    rows = []
    cand_groups, base_groups = group_key(candidates), group_key(baseline)
    cand_projects, base_projects = projects(candidates), projects(baseline)
    log_flags = np.array([log for _, log, _, _ in FEATURES.values()])
    min_scale = np.where(log_flags, _MIN_SCALE[True], _MIN_SCALE[False])
    for (project, group), cand in _with_derived(candidates).groupby([cand_projects, cand_groups]):
        # In trace id order: the forest then depends on the baseline's rows, not on the order a
        # database returned them in (parallel scans; DuckDB and ClickHouse agree).
        base = baseline[(base_projects == project) & (base_groups == group)].sort_values("trace_id")
        if len(base) < cfg.min_baseline_traces:
            continue
        if len(base) > cfg.max_baseline_traces:  # deterministic sample: by trace id order
            base = base.iloc[:: -(-len(base) // cfg.max_baseline_traces)]
        cost_fill = float(base["cost_usd"].median()) if base["cost_usd"].notna().any() else 0.0
        x_base, x_cand = _transform(base, cost_fill), _transform(cand, cost_fill)
        forest = IsolationForest(n_estimators=cfg.isolation_forest_trees, random_state=0).fit(
            x_base
        )
        scores = forest.score_samples(x_cand)
        isolated = scores < forest.offset_  # decision_function < 0
        median = np.median(x_base, axis=0)
        scale = np.maximum(1.4826 * np.median(np.abs(x_base - median), axis=0), min_scale)
        z = (x_cand - median) / scale
        tops = np.argmax(z, axis=1)
        top_z = z[np.arange(len(z)), tops]
        report = (isolated & (top_z >= cfg.trace_z)) | (top_z >= cfg.trace_z_alone)
        for pos in np.flatnonzero(report):
            top = int(tops[pos])
            name = list(FEATURES)[top]
            kind, log, label, unit = FEATURES[name]
            t = cand.iloc[pos]
            normal = float(np.expm1(median[top]) / _UNIT.get(name, 1.0) if log else median[top])
            value = float(t[name]) if pd.notna(t[name]) else 0.0
            how = f"{value / normal:.1f}x" if log and normal > 0 else f"{value - normal:+g} vs"
            reason = (
                f"{label} {_fmt(value, unit)} is {how} the {group!r} median of {_fmt(normal, unit)} "
                f"({z[pos, top]:.1f} robust SDs; IsolationForest score {scores[pos]:.2f}"
                f"{', isolated' if isolated[pos] else ''})"
            )
            detector = "isolation_forest" if isolated[pos] else "robust_z"
            rows.append(_row(kind, detector, t, z[pos, top], reason, t["start_time"], t["end_time"],
                             detected_at))  # fmt: skip
    return _frame(rows)


def error_rate_windows(
    windows: pd.DataFrame, cfg: Detection, detected_at: datetime
) -> pd.DataFrame:
    """``windows``: service_name, window_start, traces, failed (one tumbling window each)."""
    rows = []
    width = timedelta(minutes=cfg.error_rate_window_minutes)
    for _, w in windows.iterrows():
        if w["traces"] < cfg.error_rate_min_traces:
            continue
        rate = w["failed"] / w["traces"]
        if rate > cfg.error_rate_threshold:
            start = pd.Timestamp(w["window_start"]).to_pydatetime()
            rows.append(_row("error_rate", "rule", None, rate / cfg.error_rate_threshold,
                             f"{int(w['failed'])} of {int(w['traces'])} traces failed ({rate:.1%}), over the "
                             f"{cfg.error_rate_threshold:.0%} limit for {cfg.error_rate_window_minutes} min",
                             start, start + width, detected_at, service=w["service_name"],
                             subject=w["service_name"], project=w.get("project")))  # fmt: skip
    return _frame(rows)


# series kind → (value column, log-scaled?, label, unit, smallest scale)
SERIES = {
    "latency_spike": ("typical_latency_ms", True, "median trace duration", "ms", 0.1),
    "error_rate_spike": ("error_rate", False, "error rate", "%", 0.05),
    "cost_spike": ("cost_usd", True, "cost per minute", "usd", 0.1),
    "token_spike": ("tokens", True, "tokens per minute", "", 0.1),
}


def series_spikes(series: pd.DataFrame, judge_from: datetime, judge_to: datetime, cfg: Detection,
                  detected_at: datetime) -> pd.DataFrame:  # fmt: skip
    """Robust z of each minute in [judge_from, judge_to) against the trailing baseline minutes.

    ``series``: service_name, minute, traces, typical_latency_ms, error_rate, cost_usd, tokens, with the
    baseline minutes before ``judge_from`` included. Minutes with too few traces are neither judged
    nor part of a baseline.
    """
    rows = []
    need = max(10, cfg.series_baseline_minutes // 2)
    judged = series[series["traces"] >= cfg.series_min_traces]
    for (project, service), s in judged.groupby([projects(judged), judged["service_name"]], dropna=False):
        s = s.sort_values("minute").set_index("minute")
        for kind, (col, log, label, unit, floor) in SERIES.items():
            values = s[col].astype("float64")
            x = np.log1p(values) if log else values
            past = x.shift(1).rolling(cfg.series_baseline_minutes, min_periods=need)
            median = past.median()
            iqr = past.quantile(0.75) - past.quantile(0.25)
            z = (x - median) / np.maximum(iqr / 1.349, floor)
            hits = z[(z >= cfg.series_z) & (s.index >= judge_from) & (s.index < judge_to)]
            for minute, score in hits.items():
                normal = float(np.expm1(median[minute]) if log else median[minute])
                value = float(values[minute])
                shown = (
                    (f"{value:.1%}", f"{normal:.1%}")
                    if unit == "%"
                    else (_fmt(value, unit), _fmt(normal, unit))
                )
                start = pd.Timestamp(minute).to_pydatetime()
                rows.append(_row(kind, "robust_z", None, score,
                                 f"{label} {shown[0]} in this minute vs a trailing median of {shown[1]} "
                                 f"({score:.1f} robust SDs)", start, start + timedelta(minutes=1), detected_at,
                                 service=service, subject=service, project=project))  # fmt: skip
    return _frame(rows)
