"""Anomaly detection benchmark: precision and recall per injected kind, and the job's time.

Builds a labelled synthetic set (bench/synth.py: latency spikes, cost blow-ups, loops among normal
traffic, plus error bursts) in a fresh DuckDB file, runs the analytics jobs offline over it and
compares what they report with the labels:

* latency: traces reported as ``latency_outlier`` or ``slow_trace``;
* cost: ``cost_outlier`` or ``high_cost``;
* loop: ``loop`` or ``loop_outlier``;
* error_burst: (service, 5-minute window) pairs reported as ``error_rate``.

Usage: python -m bench.anomaly [--spans 1000000] [--db PATH]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pandas as pd

from analytics.anomaly import SERIES
from analytics.offline import DirectWriter
from analytics.runner import AnalyticsRunner
from bench.synth import Synth, generate, labels
from collector.settings import Settings
from collector.store import Store

TRACE_KINDS = {
    "latency": ("latency_outlier", "slow_trace"),
    "cost": ("cost_outlier", "high_cost"),
    "loop": ("loop", "loop_outlier"),
}
SPANS_PER_TRACE = 5.75  # the synthetic mix's average


def score(found: pd.DataFrame, truth: pd.DataFrame) -> list[dict[str, object]]:
    """Precision and recall per kind; ``found`` = anomalies rows, ``truth`` = synth labels."""
    out = []
    for label, kinds in TRACE_KINDS.items():
        predicted = set(found.loc[found["kind"].isin(kinds), "trace_id"])
        actual = set(truth.loc[truth["label"] == label, "trace_id"])
        out.append(_pr(label, predicted, actual))
    bursts = truth[truth["in_burst"]]
    actual_w = {
        (s, pd.Timestamp(w)) for s, w in zip(bursts["service_name"], bursts["window_start"])
    }
    rate = found[found["kind"] == "error_rate"]
    predicted_w = {(s, pd.Timestamp(w)) for s, w in zip(rate["service_name"], rate["window_start"])}
    out.append(_pr("error_burst", predicted_w, actual_w))
    return out


def _pr(kind: str, predicted: set[object], actual: set[object]) -> dict[str, object]:
    hit = len(predicted & actual)
    return {
        "kind": kind,
        "injected": len(actual),
        "reported": len(predicted),
        "precision": hit / len(predicted) if predicted else float("nan"),
        "recall": hit / len(actual) if actual else float("nan"),
    }


def run(spans: int, db: Path, latency_factor: float = 20.0, cost_factor: float = 30.0,
        loop_calls: int = 12) -> dict[str, object]:  # fmt: skip
    traces = int(spans / SPANS_PER_TRACE)
    config = Synth(traces=traces, minutes=max(600, traces // 60),  # about 60 traces a minute
                   latency_factor=latency_factor, cost_factor=cost_factor, loop_calls=loop_calls)  # fmt: skip
    store = Store(db)
    try:
        t0 = time.perf_counter()
        n = generate(store.write_connection, config)
        generated = time.perf_counter() - t0
        runner = AnalyticsRunner(store, DirectWriter(store), Settings.from_env())  # honours TRACEHOUSE_RULES_FILE
        t0 = time.perf_counter()
        report = runner.run_now(now=config.end + timedelta(minutes=10))
        job = time.perf_counter() - t0
        cur = store.cursor()
        found = cur.execute("SELECT * FROM anomalies").df()
        truth = labels(cur, config)
        series = found[found["kind"].isin(list(SERIES))]["kind"].value_counts().to_dict()
        return {"spans": n, "traces": traces, "generate_s": generated, "job_s": job, "report": report,
                "scores": score(found, truth), "series_spikes": series}  # fmt: skip
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument(
        "--db", type=Path, default=None, help="DuckDB file to build (default: a temp file)"
    )
    parser.add_argument(
        "--latency-factor", type=float, default=20.0, help="how much slower a latency spike is"
    )
    parser.add_argument(
        "--cost-factor", type=float, default=30.0, help="how many times the tokens a blow-up uses"
    )
    parser.add_argument("--loop-calls", type=int, default=12, help="identical tool calls in a loop")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = run(args.spans, args.db or Path(tmp) / "anomaly.duckdb", args.latency_factor, args.cost_factor,
                     args.loop_calls)  # fmt: skip
    print(f"{result['spans']:,} spans, {result['traces']:,} traces; generated in {result['generate_s']:.1f} s; "
          f"analytics job (costs, rollups, anomalies, alerts) {result['job_s']:.1f} s")  # fmt: skip
    print(f"{'kind':<12} {'injected':>8} {'reported':>8} {'precision':>9} {'recall':>7}")
    for row in result["scores"]:  # type: ignore[union-attr]
        print(
            f"{row['kind']:<12} {row['injected']:>8} {row['reported']:>8} {row['precision']:>9.3f} {row['recall']:>7.3f}"
        )
    print(f"per-minute series spikes (informational): {result['series_spikes']}")
    print(f"job steps (s): {result['report'].steps}")  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
