"""The analytics run: incremental, idempotent, price changes recompute the past, rollups add up."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from analytics.rollups import overview
from analytics import runner as runner_module
from analytics.runner import AnalyticsRunner
from bench.synth import Synth, generate
from collector.rollup import catch_up
from collector.store import Store

FIRST = Synth(traces=600, start=datetime(2026, 1, 5, 9), minutes=60, salt=1)
# Late and new traffic: same hour (so old minutes must be recomputed) plus the next one.
SECOND = Synth(traces=600, start=datetime(2026, 1, 5, 9, 30), minutes=60, salt=2,
               received_at=datetime(2026, 1, 5, 11))  # fmt: skip
NOW = datetime(2026, 1, 5, 11, 5)
TABLES = {
    "span_costs": "trace_id, span_id",
    "trace_features": "trace_id",
    "minute_rollup": "minute, service_name, agent_name",
    "error_minutes": "minute, service_name, agent_name, kind, name",
}


def _rounded(value: object) -> object:
    """Sums of floats differ in the last bits with the order rows are summed in."""
    return round(value, 6) if isinstance(value, float) else value


def _snapshot(store: Store) -> dict[str, list[tuple[object, ...]]]:
    cur = store.cursor()
    return {
        t: [
            tuple(map(_rounded, row))
            for row in cur.execute(f"SELECT * FROM {t} ORDER BY {keys}").fetchall()
        ]
        for t, keys in TABLES.items()
    }


def test_incremental_runs_equal_one_full_run_and_reruns_change_nothing(
    tmp_path: Path, analytics_store: Store, make_runner: Callable[..., AnalyticsRunner]
) -> None:
    generate(analytics_store.write_connection, FIRST)
    runner = make_runner()
    first = runner.run_now(now=NOW)
    assert first.spans > 0 and first.traces == FIRST.traces and first.backfill
    generate(analytics_store.write_connection, SECOND)
    second = runner.run_now(now=NOW)
    n_second = analytics_store.cursor().execute(
        "SELECT count(*) FROM spans WHERE received_at = ?", [SECOND.received_at]).fetchone()[0]  # fmt: skip
    assert second.spans == n_second and second.traces == SECOND.traces and not second.backfill
    incremental = _snapshot(analytics_store)
    # Per-trace rules judge the finished trace, whatever the order spans arrived in. (Learned detectors
    # depend on the baseline at the time they ran, so they are not compared.)
    rules_sql = "SELECT kind, trace_id FROM anomalies WHERE kind IN ('slow_trace', 'high_cost', 'loop') ORDER BY ALL"
    rule_hits = analytics_store.cursor().execute(rules_sql).fetchall()
    assert rule_hits

    again = runner.run_now(now=NOW)
    assert (again.spans, again.anomalies, again.alerts_fired) == (0, 0, 0)
    assert _snapshot(analytics_store) == incremental

    full_store = Store(tmp_path / "full.duckdb")
    try:
        generate(full_store.write_connection, FIRST)
        generate(full_store.write_connection, SECOND)
        make_runner(full_store).run_now(now=NOW)
        assert _snapshot(full_store) == incremental
        assert full_store.cursor().execute(rules_sql).fetchall() == rule_hits
    finally:
        full_store.close()


def test_rollups_agree_with_the_spans(
    analytics_store: Store, make_runner: Callable[..., AnalyticsRunner]
) -> None:
    generate(analytics_store.write_connection, FIRST)
    make_runner().run_now(now=NOW)
    cur = analytics_store.cursor()
    by_span = cur.execute(
        "SELECT count(*) FILTER (WHERE kind = 'llm'), count(*) FILTER (WHERE status = 'error'), "
        "sum(input_tokens) + sum(output_tokens) FROM spans").fetchone()  # fmt: skip
    rolled = cur.execute(
        "SELECT sum(llm_calls), sum(errors), sum(total_tokens) FROM minute_rollup"
    ).fetchone()
    assert rolled == by_span
    costs = cur.execute("SELECT sum(cost_usd) FROM span_costs").fetchone()[0]
    assert cur.execute("SELECT count(*) FROM spans s JOIN span_costs c USING (trace_id, span_id) "
                       "WHERE s.cost_usd IS DISTINCT FROM c.cost_usd").fetchone()[0] == 0  # fmt: skip
    assert cur.execute("SELECT sum(cost_usd) FROM minute_rollup").fetchone()[0] == pytest.approx(
        costs
    )
    assert cur.execute("SELECT sum(cost_usd) FROM cost_by_day").fetchone()[0] == pytest.approx(
        costs
    )
    assert cur.execute("SELECT sum(cost_usd) FROM trace_features").fetchone()[0] == pytest.approx(
        costs
    )
    # The unpriced model is listed with its calls and never contributes $0 rows.
    unpriced = cur.execute("SELECT model, calls FROM unpriced_models").fetchall()
    llama = cur.execute("SELECT count(*) FROM spans WHERE model = 'llama-3.3-70b'").fetchone()[0]
    assert unpriced == [("llama-3.3-70b", llama)]
    assert cur.execute("SELECT count(*) FROM span_costs WHERE cost_usd = 0").fetchone()[0] == 0


def test_overview_numbers_come_from_the_rollup(analytics_store: Store,
                                               make_runner: Callable[..., AnalyticsRunner]) -> None:  # fmt: skip
    generate(analytics_store.write_connection, FIRST)
    make_runner().run_now(now=NOW)
    cur = analytics_store.cursor()
    at = datetime(2026, 1, 5, 10, 0)
    view = overview(cur, at, window_minutes=30)
    traces, failed, avg, p95 = cur.execute(
        "SELECT count(*), count(*) FILTER (WHERE status = 'error'), avg(duration_ms), quantile_cont(duration_ms, 0.95) "
        "FROM trace_features WHERE start_time >= ? AND start_time < ?", [at - timedelta(minutes=30), at]).fetchone()  # fmt: skip
    assert view["traces"] == traces and view["requests_per_minute"] == pytest.approx(traces / 30)
    assert view["success_rate"] == pytest.approx(1 - failed / traces)
    assert view["avg_response_ms"] == pytest.approx(avg)
    assert view["p95_response_ms"] == pytest.approx(
        p95, rel=0.06
    )  # log-bucket histogram: within 5 %
    assert view["active_agents"] == len(FIRST.agents)
    cost_today = cur.execute(
        "SELECT sum(cost_usd) FROM span_costs WHERE start_time < ?", [at]
    ).fetchone()[0]
    assert view["cost_today_usd"] == pytest.approx(cost_today)
    top = view["top_errors"][0]
    n = cur.execute("SELECT count(*) FROM spans WHERE status = 'error' AND coalesce(tool_name, name) = ? "
                    "AND kind = ? AND start_time < ?", [top["name"], top["kind"], at]).fetchone()[0]  # fmt: skip
    assert top["count"] == n > 0


def test_a_price_change_recomputes_past_costs(tmp_path: Path, analytics_store: Store,
                                              make_runner: Callable[..., AnalyticsRunner]) -> None:  # fmt: skip
    generate(analytics_store.write_connection, FIRST)
    catch_up(analytics_store)
    make_runner().run_now(now=NOW)
    cur = analytics_store.cursor()
    gpt41 = "SELECT sum(cost_usd) FROM span_costs WHERE model LIKE 'gpt-4.1-2025%'"
    before = cur.execute(gpt41).fetchone()[0]
    llama_calls = cur.execute("SELECT calls FROM unpriced_models").fetchone()[0]
    prices = tmp_path / "prices.csv"
    prices.write_text(
        "provider,model,pattern,input,cached_input,cache_write,output,reasoning,effective_from,accounting\n"
        "openai,gpt-4.1,gpt-4\\.1,4.00,1.00,,16.00,,2025-04-14,\n"  # every rate doubled
        "meta,llama-3.3-70b,llama-3\\.3-70b,0.60,,,0.60,,2024-12-06,\n"
    )
    report = make_runner(prices_file=str(prices)).run_now(now=NOW)
    assert report.backfill
    assert cur.execute(gpt41).fetchone()[0] == pytest.approx(2 * before)
    assert cur.execute("SELECT count(*) FROM unpriced_models").fetchone()[0] == 0
    assert cur.execute("SELECT count(*) FROM span_costs WHERE model = 'llama-3.3-70b' AND cost_usd > 0"
                       ).fetchone()[0] == llama_calls  # fmt: skip
    total = cur.execute("SELECT sum(cost_usd) FROM span_costs").fetchone()[0]
    assert cur.execute("SELECT sum(cost_usd) FROM minute_rollup").fetchone()[0] == pytest.approx(
        total
    )
    # The spans themselves and the `traces` view (summarized before the change) follow too.
    assert cur.execute("SELECT sum(cost_usd) FROM spans").fetchone()[0] == pytest.approx(total)
    assert cur.execute("SELECT sum(cost_usd) FROM traces").fetchone()[0] == pytest.approx(total)


def test_an_edited_price_file_is_picked_up_by_the_running_jobs(
    tmp_path: Path, analytics_store: Store, make_runner: Callable[..., AnalyticsRunner]
) -> None:
    header = "provider,model,pattern,input,cached_input,cache_write,output,reasoning,effective_from,accounting\n"
    prices = tmp_path / "prices.csv"
    prices.write_text(header + "meta,llama-3.3-70b,llama-3\\.3-70b,0.60,,,0.60,,2024-12-06,\n")
    generate(analytics_store.write_connection, FIRST)
    runner = make_runner(prices_file=str(prices))
    runner.run_now(now=NOW)
    cur = analytics_store.cursor()
    llama = "SELECT sum(cost_usd) FROM span_costs WHERE model = 'llama-3.3-70b'"
    before = cur.execute(llama).fetchone()[0]

    prices.write_text(
        header + "meta,llama-3.3-70b,llama-3\\.3-70b,not-a-price,,,0.60,,2024-12-06,\n"
    )
    os.utime(prices, (time.time() + 5, time.time() + 5))
    assert not runner.run_now(now=NOW).backfill  # a broken edit is refused; old prices kept
    assert cur.execute(llama).fetchone()[0] == pytest.approx(before)

    prices.write_text(header + "meta,llama-3.3-70b,llama-3\\.3-70b,1.20,,,1.20,,2024-12-06,\n")
    os.utime(prices, (time.time() + 10, time.time() + 10))
    assert runner.run_now(now=NOW).backfill  # no restart needed
    assert cur.execute(llama).fetchone()[0] == pytest.approx(2 * before)


def test_interval_zero_leaves_the_jobs_to_explicit_runs(
    analytics_store: Store, make_runner: Callable[..., AnalyticsRunner]
) -> None:
    """TRACEHOUSE_ANALYTICS_INTERVAL_S=0: no timer (a fleet leaves the jobs to one collector), run_now works."""
    generate(analytics_store.write_connection, FIRST)
    idle = make_runner(analytics_interval_s=0)
    idle.start()
    assert idle._thread is None
    assert idle.run_now(now=NOW).spans > 0
    ticking = make_runner(analytics_interval_s=3600)
    ticking.start()
    assert ticking._thread is not None and ticking._thread.is_alive()


def test_every_call_group_keeps_its_latency_histogram(
    analytics_store: Store, make_runner: Callable[..., AnalyticsRunner]
) -> None:
    """call_minutes groups whose keys hold NULLs (no handoff target, tools without a service...)
    keep their histogram and failed runs: the agents page's p95 comes from it."""
    generate(analytics_store.write_connection, FIRST)
    make_runner().run_now(now=NOW)
    cur = analytics_store.cursor()
    by_kind = cur.execute(
        "SELECT kind, count(*), count(*) FILTER (WHERE latency_hist IS NULL), "
        "count(*) FILTER (WHERE calls <> (SELECT sum(e.n) FROM (SELECT unnest(latency_hist) AS e))) "
        "FROM call_minutes GROUP BY kind ORDER BY kind"
    ).fetchall()
    assert {kind for kind, *_ in by_kind} >= {"agent", "tool", "handoff"}
    for kind, rows, without, miscounted in by_kind:
        assert rows > 0 and without == 0 and miscounted == 0, kind


def test_a_stopped_runner_ends_its_run_at_a_chunk_boundary(
    tmp_path: Path, analytics_store: Store, make_runner: Callable[..., AnalyticsRunner],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At shutdown the collector stops the runner, then closes the database: a long run must end
    first. It ends after its current chunk, and the next run carries on to the one-pass result."""
    generate(analytics_store.write_connection, FIRST)
    monkeypatch.setattr(runner_module, "CHUNK_SPANS", 2_000)  # 2 chunks
    runner = make_runner()
    finish = runner._finish

    def finish_then_stop(*args: object) -> dict[tuple[str, str], int]:
        done = finish(*args)  # type: ignore[arg-type]
        runner.stop()  # as the collector's shutdown does, from another thread, while the run goes on
        return done

    monkeypatch.setattr(runner, "_finish", finish_then_stop)
    total = analytics_store.cursor().execute("SELECT count(*) FROM spans").fetchone()[0]
    stopped = runner.run_now(now=NOW)
    assert stopped.stopped and 0 < stopped.spans < total
    watermark = analytics_store.cursor().execute(
        "SELECT watermark FROM analytics_state WHERE job = 'spans'").fetchone()[0]  # fmt: skip
    assert stopped.watermark == watermark.isoformat()

    rest = make_runner().run_now(now=NOW)  # the next collector's run
    assert not rest.stopped and stopped.spans + rest.spans == total
    full_store = Store(tmp_path / "full.duckdb")
    try:
        generate(full_store.write_connection, FIRST)
        make_runner(full_store).run_now(now=NOW)
        assert _snapshot(full_store) == _snapshot(analytics_store)
    finally:
        full_store.close()
