"""Anomaly jobs on seeded traffic find what was injected, and stay quiet on clean traffic."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from analytics import anomaly, forest
from analytics.queries import GROUP_KEY_SQL
from analytics.rules import Detection, RulesFileError, load_rules
from analytics.runner import AnalyticsRunner
from bench.anomaly import score
from bench.synth import Synth, generate, labels
from collector.store import Store

SEEDED = Synth(
    traces=6000,
    minutes=120,
    p_latency=0.01,
    p_cost=0.01,
    p_loop=0.01,
    burst_every_minutes=60,
    salt=3,
)
CLEAN = Synth(
    traces=6000, minutes=120, p_latency=0, p_cost=0, p_loop=0, burst_error_rate=0.005, salt=4
)


def _run(store: Store, make_runner: Callable[..., AnalyticsRunner], config: Synth) -> pd.DataFrame:
    generate(store.write_connection, config)
    # The collector's way: the forests are fitted in a child process.
    make_runner(scorer=forest.score).run_now(now=config.end + timedelta(minutes=5))
    return store.cursor().execute("SELECT * FROM anomalies").df()


def test_injected_anomalies_are_found_with_reasons(analytics_store: Store,
                                                   make_runner: Callable[..., AnalyticsRunner]) -> None:  # fmt: skip
    found = _run(analytics_store, make_runner, SEEDED)
    for result in score(found, labels(analytics_store.cursor(), SEEDED)):
        assert result["injected"] > 0
        assert result["precision"] >= 0.9 and result["recall"] >= 0.9, result
    loop = found[found["kind"] == "loop"].iloc[0]
    assert (
        loop["reason"]
        == "tool 'search' was called 12 times with identical arguments (loop limit 5)"
    )
    assert loop["trace_id"] and loop["agent_name"] and loop["window_start"] < loop["window_end"]
    outlier = found[found["kind"] == "cost_outlier"].iloc[0]["reason"]
    assert "median" in outlier and "robust SDs" in outlier and "IsolationForest score" in outlier
    burst = found[found["kind"] == "error_rate"].iloc[0]
    assert pd.isna(burst["trace_id"]) and burst["window_end"] - burst["window_start"] == timedelta(
        minutes=5
    )
    assert "traces failed" in burst["reason"] and "over the 5% limit" in burst["reason"]


def test_clean_traffic_raises_nothing(
    analytics_store: Store, make_runner: Callable[..., AnalyticsRunner]
) -> None:
    found = _run(analytics_store, make_runner, CLEAN)
    assert found.empty, found[["kind", "reason"]].to_string()


def _trace(**values: object) -> dict[str, object]:
    base = {"trace_id": "t1", "service_name": "svc", "agent_name": "a", "workflow_name": "w",
            "start_time": datetime(2026, 1, 1), "end_time": datetime(2026, 1, 1, 0, 1), "duration_ms": 1000.0,
            "cost_usd": 0.01, "max_repeated_tool_calls": 1, "repeated_tool": None}  # fmt: skip
    return {**base, **values}


def test_rules_use_the_configured_thresholds(tmp_path: Path) -> None:
    user = tmp_path / "rules.toml"
    user.write_text("[detection]\nslow_trace_ms = 5000\nhigh_cost_usd = 1\nloop_min_repeats = 3\n")
    cfg = load_rules(user).detection
    traces = pa.Table.from_pylist([
        _trace(trace_id="slow", duration_ms=6000.0),
        _trace(trace_id="pricey", cost_usd=2.5),
        _trace(trace_id="loopy", max_repeated_tool_calls=3, repeated_tool="search"),
        _trace(trace_id="fine", cost_usd=None),
    ])  # fmt: skip
    found = anomaly.trace_rules(traces, cfg, datetime(2026, 1, 2)).to_pydict()
    assert sorted(zip(found["trace_id"], found["kind"])) == [("loopy", "loop"), ("pricey", "high_cost"),
                                                             ("slow", "slow_trace")]  # fmt: skip
    reasons = dict(zip(found["kind"], found["reason"]))
    assert reasons["slow_trace"] == "trace took 6.0 s, over the 5.0 s limit (1.2x)"
    assert reasons["high_cost"] == "trace cost $2.5, over the $1 limit (2.5x)"
    # Same inputs, same ids: a re-run cannot duplicate an anomaly.
    again = anomaly.trace_rules(traces, cfg, datetime(2026, 1, 3))
    assert again["anomaly_id"].to_pylist() == found["anomaly_id"]


def test_error_rate_needs_enough_traces() -> None:
    windows = pa.table({"service_name": ["a", "b", "c"], "window_start": [datetime(2026, 1, 1)] * 3,
                        "traces": [100, 10, 100], "failed": [6, 5, 5]})  # fmt: skip
    found = anomaly.error_rate_windows(windows, Detection(), datetime(2026, 1, 2))
    assert found["service_name"].to_pylist() == [
        "a"
    ]  # b: too few traces; c: exactly 5 % is not above 5 %


def test_bad_rules_files_are_one_line_per_problem(tmp_path: Path) -> None:
    user = tmp_path / "rules.toml"
    user.write_text(
        "[detection]\nslow_trace_ms = 'fast'\nnope = 1\n"
        "[[alert]]\nname = 'X'\nmetric = 'latency'\nthreshold = 1\nwindow_minutes = 5\nseverity = 'loud'\n"
    )
    with pytest.raises(RulesFileError) as excinfo:
        load_rules(user)
    lines = str(excinfo.value).splitlines()
    assert len(lines) == 4
    assert any("slow_trace_ms='fast': must be float" in line for line in lines)
    assert any("unknown key 'nope'" in line for line in lines)
    assert any("metric 'latency' must be one of" in line for line in lines)
    assert any("severity 'loud'" in line for line in lines)
    user.write_text("[detection\n")
    with pytest.raises(RulesFileError, match="not valid TOML"):
        load_rules(user)


def test_sql_and_python_group_traces_alike(
    analytics_store: Store, make_runner: Callable[..., AnalyticsRunner]
) -> None:
    generate(analytics_store.write_connection, Synth(traces=300, minutes=30, salt=9))
    make_runner().run_now(now=datetime(2026, 1, 6))
    cur = analytics_store.cursor()
    rows = cur.sql("SELECT * FROM trace_features").to_arrow_table().to_pylist()
    for i, row in enumerate(rows):  # exercise the fallbacks
        row["workflow_name"] = None if i % 7 == 0 else row["workflow_name"]
        row["agent_name"] = None if i % 11 == 0 else row["agent_name"]
    table = pa.Table.from_pylist(rows)
    cur.register("_rows", table)
    keys = [k for (k,) in cur.execute(f"SELECT {GROUP_KEY_SQL} FROM _rows").fetchall()]
    assert keys == anomaly.group_key(table)


def test_series_spikes_judge_minutes_against_their_trailing_baseline() -> None:
    start = datetime(2026, 1, 1, 10)
    minutes = [start + timedelta(minutes=i) for i in range(90)]
    typical = [2000.0 + 100 * (i % 5) for i in range(90)]  # ordinary wobble: 2.0-2.4 s
    typical[70] = 9000.0  # the service slows down 4x for one minute
    typical[80] = 2600.0  # a little slower: within normal
    rates = [0.0] * 90
    rates[85] = 0.6
    def series(error_rate: list[float]) -> pa.Table:
        return pa.table({"service_name": ["svc"] * 90, "minute": minutes, "traces": [20] * 90,
                         "typical_latency_ms": typical, "error_rate": error_rate,
                         "cost_usd": [0.5] * 90, "tokens": [50_000] * 90})  # fmt: skip

    judged_from = start + timedelta(minutes=60)
    found = anomaly.series_spikes(series(rates), judged_from, start + timedelta(minutes=90), Detection(),
                                  datetime(2026, 1, 2)).to_pydict()  # fmt: skip
    hits = sorted(zip(found["kind"], found["window_start"]))
    assert hits == [("error_rate_spike", minutes[85]), ("latency_spike", minutes[70])]
    reason = dict(zip(found["kind"], found["reason"]))["latency_spike"]
    assert reason.startswith(
        "median trace duration 9.0 s in this minute vs a trailing median of 2.2 s"
    )
    # Minutes before judged_from are baseline only, never reported.
    early = anomaly.series_spikes(series([0.6] + rates[1:]), judged_from,
                                  start + timedelta(minutes=90), Detection(), datetime(2026, 1, 2))  # fmt: skip
    assert minutes[0] not in set(early["window_start"].to_pylist())
