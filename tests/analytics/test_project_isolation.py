"""Analytics per project: two projects with different traffic through a real collector with keys.

Both projects name their service and agent alike ("agents" / "planner"), so nothing but the
project keeps their rollups, anomalies and alerts apart. Each read key must see only its own
project's figures through the REST API, the SQL sandbox and the dashboard's SQL.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode, use_span

from analytics import anomaly
from analytics.offline import DirectWriter
from analytics.rules import Detection
from analytics.runner import ROLLUP_VERSION, AnalyticsRunner
from bench.synth import Synth, generate
from collector.settings import Settings
from collector.store import SCHEMA_VERSION, Store
from dashboard import agent_queries, queries
from tests.conftest import RunningCollector

INGEST_A = "th_ingest_aaaaaaaaaaaa_" + "A" * 43
INGEST_B = "th_ingest_bbbbbbbbbbbb_" + "B" * 43
READ_A = "th_read_cccccccccccc_" + "C" * 43
READ_B = "th_read_dddddddddddd_" + "D" * 43
S = 10**9


def _send(collector: RunningCollector, key: str, traces: list[dict[str, Any]]) -> None:
    """Agent runs of one project, three minutes ago: (duration_s, failed, input tokens) per trace."""
    exporter = OTLPSpanExporter(endpoint=f"{collector.http_url}/v1/traces", headers={"authorization": f"Bearer {key}"})
    provider = TracerProvider(resource=Resource.create({"service.name": "agents"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("isolation")
    start = time.time_ns() - 180 * S
    for i, t in enumerate(traces):
        begin = start + i * S
        agent = tracer.start_span("invoke_agent planner", start_time=begin, attributes={
            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"})  # fmt: skip
        with use_span(agent, end_on_exit=False):
            tracer.start_span("chat gpt-4.1", start_time=begin + S // 10, attributes={
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4.1",
                "gen_ai.usage.input_tokens": t["tokens"], "gen_ai.usage.output_tokens": 100}).end(begin + S // 5)  # fmt: skip
            tool = tracer.start_span("execute_tool lookup", start_time=begin + S // 5, attributes={
                "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup"})  # fmt: skip
            if t["failed"]:
                tool.set_status(Status(StatusCode.ERROR, "lookup failed"))
                agent.set_status(Status(StatusCode.ERROR, "run failed"))
            tool.end(begin + S // 4)
        agent.end(begin + int(t["seconds"] * S))
    provider.shutdown()


ALPHA = [{"seconds": 40, "failed": False, "tokens": 1000}] + [{"seconds": 2, "failed": False, "tokens": 1000}] * 2
BETA = [{"seconds": 1, "failed": True, "tokens": 50_000}, {"seconds": 1, "failed": False, "tokens": 50_000}]


def _api(collector: RunningCollector, method: str, path: str, key: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, f"{collector.http_url}{path}", headers={"authorization": f"Bearer {key}"},
                         timeout=60, **kwargs)  # fmt: skip


def _sql(collector: RunningCollector, key: str, sql: str) -> list[dict[str, Any]]:
    response = _api(collector, "POST", "/api/sql", key, json={"sql": sql})
    assert response.status_code == 200, response.text
    body = response.json()
    return [dict(zip(body["columns"], row)) for row in body["rows"]]


@pytest.fixture
def two_projects(make_collector: Callable[..., RunningCollector]) -> RunningCollector:
    collector = make_collector(
        ingest_keys=f"alpha={INGEST_A},beta={INGEST_B}", read_keys=f"alpha={READ_A},beta={READ_B}",
        analytics_interval_s=3600.0,
    )
    _send(collector, INGEST_A, ALPHA)
    _send(collector, INGEST_B, BETA)
    return collector


def test_a_project_key_runs_the_analytics_and_sees_only_its_part(two_projects: RunningCollector) -> None:
    collector = two_projects
    run = _api(collector, "POST", "/api/analytics/run", READ_A)
    assert run.status_code == 200, run.text
    report = run.json()
    # The run computed both projects; alpha's key is told about alpha only.
    assert report["project"] == "alpha" and report["spans"] == 9 and report["traces"] == 3
    assert report["llm_spans"] == 3 and report["new_anomalies"] == {"slow_trace": 1}
    assert report["alerts_fired"] == 1 and "watermark" not in report and "steps" not in report
    rows = collector.sql("SELECT project, sum(traces_started), sum(traces_failed) FROM minute_rollup GROUP BY ALL")
    assert sorted(rows) == [("alpha", 3, 0), ("beta", 2, 1)]
    # Nothing new to do, and beta's key hears nothing of alpha.
    again = _api(collector, "POST", "/api/analytics/run", READ_B).json()
    assert again["project"] == "beta" and again["spans"] == 0 and again["new_anomalies"] == {}


def _figures(collector: RunningCollector, key: str) -> dict[str, Any]:
    rollup = _sql(collector, key, "SELECT sum(traces_started) AS traces, sum(traces_failed) AS failed, "
                                  "sum(total_tokens) AS tokens, count(DISTINCT project) AS projects FROM minute_rollup")[0]  # fmt: skip
    return {
        **rollup,
        "errors": _sql(collector, key, "SELECT project, name, sum(errors) AS n FROM error_minutes GROUP BY ALL"),
        "calls": _sql(collector, key, "SELECT project, kind, name, sum(calls) AS n FROM call_minutes "
                                      "GROUP BY ALL ORDER BY kind"),  # fmt: skip
        "anomalies": _sql(collector, key, "SELECT project, kind, service_name, agent_name FROM anomalies"),
        "alerts": _sql(collector, key, "SELECT project, rule, subject, message FROM alerts"),
    }


def test_each_key_sees_only_its_own_rollups_anomalies_and_alerts(two_projects: RunningCollector) -> None:
    collector = two_projects
    assert _api(collector, "POST", "/api/analytics/run", READ_B).status_code == 200
    alpha, beta = _figures(collector, READ_A), _figures(collector, READ_B)

    assert (alpha["traces"], alpha["failed"], alpha["tokens"], alpha["projects"]) == (3, 0, 3 * 1100, 1)
    assert (beta["traces"], beta["failed"], beta["tokens"], beta["projects"]) == (2, 1, 2 * 50_100, 1)
    assert alpha["errors"] == []
    assert sorted((e["project"], e["name"], e["n"]) for e in beta["errors"]) == [
        ("beta", "invoke_agent planner", 1), ("beta", "lookup", 1)]  # fmt: skip
    assert [(c["kind"], c["n"]) for c in alpha["calls"]] == [("agent", 3), ("tool", 3)]
    assert [(c["kind"], c["n"]) for c in beta["calls"]] == [("agent", 2), ("tool", 2)]
    # The slow trace is alpha's: beta, with the same service and agent names, has no anomaly of it.
    assert alpha["anomalies"] == [{"project": "alpha", "kind": "slow_trace", "service_name": "agents",
                                   "agent_name": "planner"}]  # fmt: skip
    assert all(a["project"] == "beta" and a["kind"] != "slow_trace" for a in beta["anomalies"])
    # Alerts: alpha's slow execution, beta's failed run, each told to its own project only.
    assert [(a["project"], a["rule"]) for a in alpha["alerts"]] == [("alpha", "SLOW_EXECUTION")]
    assert [(a["project"], a["rule"]) for a in beta["alerts"]] == [("beta", "EXECUTION_ERROR")]
    assert "1 slow_trace anomaly" in alpha["alerts"][0]["message"]
    assert "failed traces 1" in beta["alerts"][0]["message"]
    # The store holds both, each under its project.
    assert sorted(collector.sql("SELECT project, rule FROM alerts")) == [("alpha", "SLOW_EXECUTION"),
                                                                         ("beta", "EXECUTION_ERROR")]  # fmt: skip

    # The REST overview, from the rollups only.
    over_a = _api(collector, "GET", "/api/analytics/overview", READ_A, params={"window_minutes": 30}).json()
    over_b = _api(collector, "GET", "/api/analytics/overview", READ_B, params={"window_minutes": 30}).json()
    assert (over_a["traces"], over_a["success_rate"], over_a["llm_calls"], over_a["top_errors"]) == (3, 1.0, 3, [])
    assert (over_b["traces"], over_b["success_rate"], over_b["llm_calls"]) == (2, 0.5, 2)
    assert sorted(e["name"] for e in over_b["top_errors"]) == ["invoke_agent planner", "lookup"]
    assert over_a["tokens_today"] == 3300 and over_b["tokens_today"] == 100_200
    assert over_a["cost_today_usd"] == pytest.approx(3 * (1000 * 2 + 100 * 8) / 1e6)


def test_the_dashboard_sql_reads_each_projects_rollups(two_projects: RunningCollector) -> None:
    collector = two_projects
    assert _api(collector, "POST", "/api/analytics/run", READ_A).status_code == 200
    now = datetime.now(UTC).replace(tzinfo=None)
    window = queries.Filters(now - timedelta(minutes=30), now)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    seen: dict[str, Any] = {}
    for key in (READ_A, READ_B):
        state = _sql(collector, key, queries.rollup_state())[0]
        cut = queries.rollup_cut(state["watermark"] and datetime.fromisoformat(state["watermark"]), None, now)
        assert cut is not None  # the rollups are complete for this project: the pages read them
        rolled, _ = queries.split(window, cut)
        assert rolled is not None and rolled.start <= now - timedelta(minutes=3)
        seen[key] = {
            "tokens": _sql(collector, key, queries.tokens_since(window, midnight, now, cut))[0]["tokens"],
            "cost": _sql(collector, key, queries.cost_since(window, midnight, now, cut))[0]["cost_usd"],
            "errors": sorted(e["error"] for e in _sql(collector, key, queries.top_errors_split(window, cut))),
            "agents": {r["agent"]: r["calls"] for r in _sql(collector, key, agent_queries._calls(window, cut, "agent") or "")},
            "alerts": [r["rule"] for r in _sql(collector, key, queries.recent_rows("alerts", "fired_at",
                                                                                queries.Filters(now - timedelta(hours=1), now + timedelta(hours=1))))],  # fmt: skip
        }
    assert seen[READ_A]["tokens"] == 3300 and seen[READ_B]["tokens"] == 100_200
    assert seen[READ_A]["cost"] == pytest.approx(0.0084) and seen[READ_B]["cost"] == pytest.approx(2 * 0.1008)
    assert seen[READ_A]["errors"] == [] and seen[READ_B]["errors"] == ["lookup failed", "run failed"]
    assert seen[READ_A]["agents"] == {"planner": 3} and seen[READ_B]["agents"] == {"planner": 2}
    assert seen[READ_A]["alerts"] == ["SLOW_EXECUTION"] and seen[READ_B]["alerts"] == ["EXECUTION_ERROR"]


def test_a_projects_analytics_progress_is_its_own(two_projects: RunningCollector) -> None:
    """A scoped reader's analytics_state shows the newest of its own spans the jobs processed, not
    the global watermark (which would tell when another project's spans arrived)."""
    collector = two_projects
    assert _api(collector, "POST", "/api/analytics/run", READ_A).status_code == 200
    newest = dict(collector.sql("SELECT project, max(received_at) FROM spans GROUP BY ALL"))
    assert newest["beta"] > newest["alpha"]  # beta sent last
    seen = _sql(collector, READ_A, "SELECT job, watermark FROM analytics_state")
    assert seen == [{"job": "spans", "watermark": newest["alpha"].isoformat() + "Z"}]
    assert _sql(collector, READ_B, "SELECT watermark FROM analytics_state")[0]["watermark"] == newest["beta"].isoformat() + "Z"


def test_a_file_from_before_per_project_analytics_is_brought_over(tmp_path: Path) -> None:
    """Schema 5 → 6: rollups are recomputed per project, trace anomalies take their trace's project,
    per-service anomalies are judged again, and a single project's alerts stay its own."""
    path = tmp_path / "old.duckdb"
    store = Store(path)
    generate(store.write_connection, Synth(traces=400, minutes=60, salt=3, base_error_rate=0.2))
    runner = AnalyticsRunner(store, DirectWriter(store), Settings.from_env({}))
    runner.run_now(now=datetime(2026, 1, 5, 1, 5))
    tables = ("minute_rollup", "error_minutes", "call_minutes", "anomalies", "alerts")

    def snapshot() -> dict[str, list[tuple[Any, ...]]]:
        cur = store.cursor()
        try:
            return {t: cur.execute(f"SELECT project, count(*) FROM {t} GROUP BY ALL ORDER BY ALL").fetchall()
                    for t in tables}  # fmt: skip
        finally:
            cur.close()

    before = snapshot()
    assert all(before[t] and before[t][0][0] == "default" for t in tables), before
    con = store.write_connection  # make it look like a file written by schema 5
    for table in tables:
        con.execute(f"UPDATE {table} SET project = NULL")
    con.execute(f"UPDATE analytics_state SET fingerprint = replace(fingerprint, 'rollups-{ROLLUP_VERSION}', 'rollups-2')")
    con.execute("DELETE FROM schema_version")
    con.execute("INSERT INTO schema_version (version) VALUES (5)")
    runner.stop()
    store.close()

    store = Store(path)
    cur = store.cursor()
    assert cur.execute("SELECT count(*) FROM minute_rollup").fetchone()[0] == 0  # to be recomputed
    assert cur.execute("SELECT count(*) FROM anomalies WHERE project IS NULL").fetchone()[0] == 0
    kept = cur.execute("SELECT count(*) FROM anomalies").fetchone()[0]
    assert 0 < kept == cur.execute("SELECT count(*) FROM anomalies WHERE trace_id IS NOT NULL").fetchone()[0]
    assert cur.execute("SELECT count(*) FROM alerts WHERE project = 'default'").fetchone()[0] == before["alerts"][0][1]
    assert cur.execute("SELECT max(version) FROM schema_version").fetchone()[0] == SCHEMA_VERSION
    cur.close()
    runner = AnalyticsRunner(store, DirectWriter(store), Settings.from_env({}))
    assert runner.run_now(now=datetime(2026, 1, 5, 1, 5)).backfill
    assert snapshot() == before
    runner.stop()
    store.close()


@pytest.mark.parametrize("key, tokens, success, alerts, anomalies", [
    (READ_A, "3,300", "100.0%", "1", "1"), (READ_B, "100.2k", "50.0%", "1", "0")])  # fmt: skip
def test_the_dashboard_pages_show_each_project_its_own_figures(
    two_projects: RunningCollector, monkeypatch: pytest.MonkeyPatch,
    key: str, tokens: str, success: str, alerts: str, anomalies: str,
) -> None:  # fmt: skip
    from streamlit.testing.v1 import AppTest

    from tests.dashboard.conftest import APP

    collector = two_projects
    assert _api(collector, "POST", "/api/analytics/run", key).status_code == 200
    monkeypatch.setenv("TRACEHOUSE_API_URL", collector.http_url)
    monkeypatch.setenv("TRACEHOUSE_API_KEY", key)
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    shown = {m.label: m.value for m in at.metric}
    assert (shown["Tokens today"], shown["Success rate"]) == (tokens, success), shown
    at.switch_page("views/anomalies.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    shown = {m.label: m.value for m in at.metric}
    assert (shown["Alerts firing"], shown["Anomalies"]) == (alerts, anomalies), shown


def _features(project: str, n: int, duration_ms: float, first: int = 0) -> list[dict[str, object]]:
    start = datetime(2026, 1, 1)
    rows = [{"trace_id": f"{project}-{first + i}", "project": project, "service_name": "agents", "agent_name": "planner",
             "workflow_name": "support", "start_time": start, "end_time": start,
             "duration_ms": duration_ms * (1 + 0.05 * (i % 5)), "cost_usd": 0.01, "total_tokens": 1000,
             "llm_calls": 2, "max_repeated_tool_calls": 1, "tool_calls": 1, "errors": 0, "handoffs": 0}
            for i in range(n)]  # fmt: skip
    return rows


def test_a_trace_is_judged_against_its_own_projects_baseline() -> None:
    """alpha's agents take 60 s, beta's (same workflow and agent names) 1 s: a 60 s trace is normal
    for alpha; judged against beta's traffic it would be a 60x latency outlier."""
    alpha, beta = _features("alpha", 80, 60_000.0), _features("beta", 80, 1_000.0)
    candidate = _features("alpha", 1, 60_000.0, first=1000)
    baseline = pa.Table.from_pylist(alpha + beta)
    found = anomaly.trace_outliers(pa.Table.from_pylist(candidate), baseline, Detection(), datetime(2026, 1, 2))
    assert found.num_rows == 0, found.select(["project", "kind", "reason"]).to_pylist()
    moved = [{**row, "project": "beta"} for row in candidate]
    mixed = anomaly.trace_outliers(pa.Table.from_pylist(moved), baseline, Detection(), datetime(2026, 1, 2))
    assert mixed["kind"].to_pylist() == ["latency_outlier"] and mixed["project"].to_pylist() == ["beta"]
