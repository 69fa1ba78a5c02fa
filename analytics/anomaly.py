"""Anomaly detection over trace summaries and per-minute series. Pure: Arrow tables in, out.

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

The forests are fitted in a short-lived child process (analytics.forest): scikit-learn never
loads into the collector. If that process fails, the robust-z detections still are reported.

``score`` is the robust z (or, for rules, the value over the threshold). Every detector works
within one project: a trace is compared with its own project's baseline, a series is one
project's service, and each anomaly carries its ``project``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from analytics import forest
from analytics.rules import Detection

ANOMALY_COLUMNS = (
    "anomaly_id", "detected_at", "kind", "detector", "project", "trace_id", "service_name", "agent_name",
    "score", "reason", "window_start", "window_end",
)  # fmt: skip
ANOMALY_SCHEMA = pa.schema([
    ("anomaly_id", pa.string()), ("detected_at", pa.timestamp("us")), ("kind", pa.string()),
    ("detector", pa.string()), ("project", pa.string()), ("trace_id", pa.string()), ("service_name", pa.string()),
    ("agent_name", pa.string()), ("score", pa.float64()), ("reason", pa.string()),
    ("window_start", pa.timestamp("us")), ("window_end", pa.timestamp("us")),
])  # fmt: skip
DEFAULT_PROJECT = "default"  # the project of rows from tables without one (spans' default)
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


Row = dict[str, Any]
Scorer = Callable[[list[forest.Group]], list[forest.Scores] | None]


def projects(rows: pa.Table) -> list[str]:
    """Each row's project: detection never compares or mixes two projects' traffic."""
    if "project" not in rows.column_names:
        return [DEFAULT_PROJECT] * rows.num_rows
    return [DEFAULT_PROJECT if p is None else p for p in rows["project"].to_pylist()]


def group_key(rows: pa.Table) -> list[str]:
    """Traces are compared within their workflow and first agent (else their service)."""
    workflows, services, agents = (rows[c].to_pylist() for c in ("workflow_name", "service_name", "agent_name"))
    return [
        f"{w if w is not None else s if s is not None else 'default'}/{a if a is not None else '-'}"
        for w, s, a in zip(workflows, services, agents, strict=True)
    ]


def _groups(keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], list[int]]:
    """Row positions per key, in row order."""
    out: dict[tuple[str, str], list[int]] = {}
    for pos, key in enumerate(keys):
        out.setdefault(key, []).append(pos)
    return out


def _subject(value: str | None) -> str:
    """A service in an anomaly id: a NULL one is hashed as "nan", as ids were first made from
    pandas frames (NULL strings were NaN there); ids of stored anomalies must not change."""
    return "nan" if value is None else value


def _row(kind: str, detector: str, t: Row | None, score: float, reason: str, start: datetime,
         end: datetime, detected_at: datetime, service: str | None = None, agent: str | None = None,
         subject: object = None, project: str | None = None) -> Row:  # fmt: skip
    trace_id = None if t is None else t["trace_id"]
    if t is not None:
        project = t.get("project")
    project = DEFAULT_PROJECT if project is None else str(project)
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


def _table(rows: list[Row]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=ANOMALY_SCHEMA)


def first_per_id(found: pa.Table) -> pa.Table:
    """The first row of each anomaly_id (a detector may name one anomaly twice)."""
    seen: set[str] = set()
    keep = [i for i, a in enumerate(found["anomaly_id"].to_pylist()) if not (a in seen or seen.add(a))]
    return found if len(keep) == found.num_rows else found.take(keep)


def _where(rows: pa.Table, mask: pa.ChunkedArray) -> list[Row]:
    return rows.filter(pc.fill_null(mask, False)).to_pylist()


def trace_rules(traces: pa.Table, cfg: Detection, detected_at: datetime) -> pa.Table:
    """slow_trace, high_cost and loop for each trace."""
    rows = []
    for t in _where(traces, pc.greater(traces["duration_ms"], cfg.slow_trace_ms)):
        ratio = t["duration_ms"] / cfg.slow_trace_ms
        rows.append(_row("slow_trace", "rule", t, ratio,
                         f"trace took {_fmt(t['duration_ms'], 'ms')}, over the {_fmt(cfg.slow_trace_ms, 'ms')} "
                         f"limit ({ratio:.1f}x)", t["start_time"], t["end_time"], detected_at))  # fmt: skip
    for t in _where(traces, pc.greater(pc.fill_null(traces["cost_usd"], 0.0), cfg.high_cost_usd)):
        ratio = t["cost_usd"] / cfg.high_cost_usd
        rows.append(_row("high_cost", "rule", t, ratio,
                         f"trace cost {_fmt(t['cost_usd'], 'usd')}, over the {_fmt(cfg.high_cost_usd, 'usd')} "
                         f"limit ({ratio:.1f}x)", t["start_time"], t["end_time"], detected_at))  # fmt: skip
    for t in _where(traces, pc.greater_equal(traces["max_repeated_tool_calls"], cfg.loop_min_repeats)):
        repeats = int(t["max_repeated_tool_calls"])
        rows.append(_row("loop", "rule", t, repeats / cfg.loop_min_repeats,
                         f"tool {t['repeated_tool']!r} was called {repeats} times with identical arguments "
                         f"(loop limit {cfg.loop_min_repeats})", t["start_time"], t["end_time"], detected_at))  # fmt: skip
    return _table(rows)


def _floats(rows: pa.Table, name: str) -> np.ndarray:
    """A column as float64, NULL as NaN."""
    return np.asarray(pc.cast(rows[name], pa.float64()).to_numpy(zero_copy_only=False), dtype="float64")


def _feature(rows: pa.Table, name: str) -> np.ndarray:
    """One feature's values (NaN where unknown); tokens_per_call is derived: a blow-up of one call."""
    if name == "tokens_per_call":
        return _floats(rows, "total_tokens") / np.clip(_floats(rows, "llm_calls"), 1, None)
    return _floats(rows, name)


def _transform(rows: pa.Table, cost_fill: float) -> np.ndarray:
    """Feature matrix. An unpriced trace's NULL cost is taken as the baseline's median cost: unknown
    is not $0, and its tokens still show any blow-up."""
    cols = []
    for name, (_, log, _, _) in FEATURES.items():
        values = _feature(rows, name)
        values = np.clip(np.where(np.isnan(values), cost_fill if name == "cost_usd" else 0.0, values), 0, None)
        values = values * _UNIT.get(name, 1.0)
        cols.append(np.log1p(values) if log else values)
    return np.column_stack(cols)


def _median_cost(base: pa.Table) -> float:
    costs = _floats(base, "cost_usd")
    known = costs[~np.isnan(costs)]
    return float(np.median(known)) if len(known) else 0.0


def trace_outliers(candidates: pa.Table, baseline: pa.Table, cfg: Detection, detected_at: datetime,
                   scorer: Scorer = forest.score) -> pa.Table:  # fmt: skip
    """IsolationForest per workflow over the trace features, explained by robust z-scores.

    ``scorer`` fits and scores the forests (default: in a child process); when it returns None,
    only the features far enough off by themselves (``trace_z_alone``) are reported.
    """
    if candidates.num_rows == 0:
        return _table([])
    base_groups = _groups(zip(projects(baseline), group_key(baseline), strict=True))
    trace_ids = baseline["trace_id"].to_pylist() if baseline.num_rows else []
    work: list[tuple[tuple[str, str], list[int], np.ndarray, np.ndarray]] = []
    for key, cand_pos in sorted(_groups(zip(projects(candidates), group_key(candidates), strict=True)).items()):
        # In trace id order: the forest then depends on the baseline's rows, not on the order a
        # database returned them in (parallel scans; DuckDB and ClickHouse agree).
        base_pos = sorted(base_groups.get(key, []), key=trace_ids.__getitem__)
        if len(base_pos) < cfg.min_baseline_traces:
            continue
        if len(base_pos) > cfg.max_baseline_traces:  # deterministic sample: by trace id order
            base_pos = base_pos[:: -(-len(base_pos) // cfg.max_baseline_traces)]
        base = baseline.take(base_pos)
        cost_fill = _median_cost(base)
        work.append((key, cand_pos, _transform(base, cost_fill), _transform(candidates.take(cand_pos), cost_fill)))
    if not work:
        return _table([])
    fitted = scorer([forest.Group(x_base, x_cand, cfg.isolation_forest_trees) for _, _, x_base, x_cand in work])
    rows: list[Row] = []
    for i, ((_, group), cand_pos, x_base, x_cand) in enumerate(work):
        rows += _explain(group, candidates.take(cand_pos), x_base, x_cand, None if fitted is None else fitted[i],
                         cfg, detected_at)  # fmt: skip
    return _table(rows)


def _explain(group: str, cand: pa.Table, x_base: np.ndarray, x_cand: np.ndarray, fitted: forest.Scores | None,
             cfg: Detection, detected_at: datetime) -> list[Row]:  # fmt: skip
    """The reported traces of one group, each named by its most unusual feature."""
    log_flags = np.array([log for _, log, _, _ in FEATURES.values()])
    min_scale = np.where(log_flags, _MIN_SCALE[True], _MIN_SCALE[False])
    median = np.median(x_base, axis=0)
    scale = np.maximum(1.4826 * np.median(np.abs(x_base - median), axis=0), min_scale)
    z = (x_cand - median) / scale
    tops = np.argmax(z, axis=1)
    top_z = z[np.arange(len(z)), tops]
    isolated = np.zeros(len(z), dtype=bool) if fitted is None else fitted.scores < fitted.offset
    report = (isolated & (top_z >= cfg.trace_z)) | (top_z >= cfg.trace_z_alone)
    picked = np.flatnonzero(report)
    rows = []
    for pos, t in zip(picked, cand.take(picked).to_pylist(), strict=True):
        top = int(tops[pos])
        name = list(FEATURES)[top]
        kind, log, label, unit = FEATURES[name]
        normal = float(np.expm1(median[top]) / _UNIT.get(name, 1.0) if log else median[top])
        raw = _feature(cand.slice(int(pos), 1), name)[0]
        value = 0.0 if np.isnan(raw) else float(raw)
        how = f"{value / normal:.1f}x" if log and normal > 0 else f"{value - normal:+g} vs"
        forest_part = (
            "" if fitted is None
            else f"; IsolationForest score {fitted.scores[pos]:.2f}{', isolated' if isolated[pos] else ''}"
        )  # fmt: skip
        reason = (
            f"{label} {_fmt(value, unit)} is {how} the {group!r} median of {_fmt(normal, unit)} "
            f"({z[pos, top]:.1f} robust SDs{forest_part})"
        )
        detector = "isolation_forest" if isolated[pos] else "robust_z"
        rows.append(_row(kind, detector, t, z[pos, top], reason, t["start_time"], t["end_time"], detected_at))
    return rows


def error_rate_windows(windows: pa.Table, cfg: Detection, detected_at: datetime) -> pa.Table:
    """``windows``: service_name, window_start, traces, failed (one tumbling window each)."""
    rows = []
    width = timedelta(minutes=cfg.error_rate_window_minutes)
    for w in windows.to_pylist():
        traces, failed = float(w["traces"]), float(w["failed"])
        if traces < cfg.error_rate_min_traces:
            continue
        rate = failed / traces
        if rate > cfg.error_rate_threshold:
            start = w["window_start"]
            rows.append(_row("error_rate", "rule", None, rate / cfg.error_rate_threshold,
                             f"{int(failed)} of {int(traces)} traces failed ({rate:.1%}), over the "
                             f"{cfg.error_rate_threshold:.0%} limit for {cfg.error_rate_window_minutes} min",
                             start, start + width, detected_at, service=w["service_name"],
                             subject=_subject(w["service_name"]), project=w.get("project")))  # fmt: skip
    return _table(rows)


# series kind → (value column, log-scaled?, label, unit, smallest scale)
SERIES = {
    "latency_spike": ("typical_latency_ms", True, "median trace duration", "ms", 0.1),
    "error_rate_spike": ("error_rate", False, "error rate", "%", 0.05),
    "cost_spike": ("cost_usd", True, "cost per minute", "usd", 0.1),
    "token_spike": ("tokens", True, "tokens per minute", "", 0.1),
}


def _rolling(past: list[float], q: float) -> float:
    """Quantile of a sorted window, interpolated as pandas' rolling quantile/median does (the
    stored scores stay what they were when this ran on pandas)."""
    n = len(past)
    if q == 0.5:
        mid = n // 2
        return past[mid] if n % 2 else (past[mid] + past[mid - 1]) / 2
    at = q * (n - 1)
    i = int(at)
    if n == 1 or at == i:
        return past[i]
    return past[i] + (past[i + 1] - past[i]) * (at - i)


def _sort_key(key: tuple[str, str | None]) -> tuple[str, bool, str]:
    return key[0], key[1] is None, key[1] or ""


def series_spikes(series: pa.Table, judge_from: datetime, judge_to: datetime, cfg: Detection,
                  detected_at: datetime) -> pa.Table:  # fmt: skip
    """Robust z of each minute in [judge_from, judge_to) against the trailing baseline minutes.

    ``series``: service_name, minute, traces, typical_latency_ms, error_rate, cost_usd, tokens, with the
    baseline minutes before ``judge_from`` included. Minutes with too few traces are neither judged
    nor part of a baseline. The baseline of a minute is the ``series_baseline_minutes`` judged
    minutes before it (at least half of them, and 10, with a value).
    """
    judged = series.filter(pc.fill_null(pc.greater_equal(series["traces"], cfg.series_min_traces), False))
    keys = zip(projects(judged), judged["service_name"].to_pylist(), strict=True)
    rows: list[Row] = []
    for (project, service), positions in sorted(_groups(keys).items(), key=lambda kv: _sort_key(kv[0])):
        s = judged.take(positions)
        s = s.take(pc.sort_indices(s, [("minute", "ascending")]))
        minutes = s["minute"].to_pylist()
        judge = [i for i, m in enumerate(minutes) if judge_from <= m < judge_to]
        for kind, (col, log, label, unit, floor) in SERIES.items() if judge else ():
            values = _floats(s, col)
            for i, score, median in _spikes(np.log1p(values) if log else values, judge, floor, cfg):
                normal = float(np.expm1(median) if log else median)
                value = float(values[i])
                shown = (
                    (f"{value:.1%}", f"{normal:.1%}")
                    if unit == "%"
                    else (_fmt(value, unit), _fmt(normal, unit))
                )
                rows.append(_row(kind, "robust_z", None, score,
                                 f"{label} {shown[0]} in this minute vs a trailing median of {shown[1]} "
                                 f"({score:.1f} robust SDs)", minutes[i], minutes[i] + timedelta(minutes=1),
                                 detected_at, service=service, subject=_subject(service), project=project))  # fmt: skip
    return _table(rows)


def _spikes(x: np.ndarray, judge: list[int], floor: float, cfg: Detection) -> Iterator[tuple[int, float, float]]:
    """(position, robust z, baseline median) of each judged position that is a spike."""
    need = max(10, cfg.series_baseline_minutes // 2)
    for i in judge:
        past = sorted(float(v) for v in x[max(0, i - cfg.series_baseline_minutes):i] if not np.isnan(v))
        if len(past) < need:
            continue
        median = _rolling(past, 0.5)
        iqr = _rolling(past, 0.75) - _rolling(past, 0.25)
        score = (x[i] - median) / np.maximum(iqr / 1.349, floor)
        if score >= cfg.series_z:
            yield i, score, median
