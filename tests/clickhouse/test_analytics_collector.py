"""Analytics in a real collector on ClickHouse (chdb): spans sent with the OpenTelemetry SDK's OTLP
exporter are priced, rolled up and summed into the traces, as on DuckDB; the API's overview reads
ClickHouse's rollups."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from analytics.clickhouse_runner import ClickHouseAnalyticsRunner
from collector.jsonvalues import jsonable
from collector.serve import CollectorServer
from dashboard import queries
from tests.analytics.test_collector_e2e import _send_agent_runs
from tests.collector.test_access import INGEST_A, INGEST_B, READ_A, READ_B, api, claiming, post
from tests.conftest import RunningCollector, collector_settings


def test_costs_and_rollups_through_a_clickhouse_collector(
    make_collector: Callable[..., RunningCollector], chdb_url: str
) -> None:
    collector = make_collector(store=chdb_url, analytics_interval_s=3600.0)
    assert isinstance(collector.server.analytics, ClickHouseAnalyticsRunner)
    _send_agent_runs(collector.grpc_endpoint)
    store = collector.server.store

    # The collector's runner leaves spans younger than its settle time to the next run: this one,
    # on the same store, takes them now.
    runner = ClickHouseAnalyticsRunner(store.client, collector.settings, settle_s=0)
    report = runner.run_now()
    assert report.spans == 6 and report.llm_spans == 3
    costs = dict(store.rows("SELECT model, cost_usd FROM span_costs"))
    assert costs["gpt-4.1"] == pytest.approx(0.030)
    assert costs["claude-sonnet-4-5-20250929"] == pytest.approx(0.1755)
    assert costs["mystery-model-7b"] is None
    assert store.rows("SELECT model, calls FROM unpriced_models") == [("mystery-model-7b", 1)]
    assert store.rows("SELECT sum(cost_usd) FROM spans")[0][0] == pytest.approx(0.2055)
    traces = httpx.get(f"{collector.http_url}/api/traces").json()["traces"]
    assert sum(t["cost_usd"] or 0 for t in traces) == pytest.approx(0.2055)
    rolled = store.rows("SELECT sum(llm_calls), sum(tool_calls), sum(traces_started), sum(traces_failed) FROM minute_rollup")
    assert rolled == [(3, 1, 2, 1)]

    again = runner.run_now()
    assert (again.spans, again.anomalies) == (0, 0)
    assert store.rows("SELECT count() FROM span_costs") == [(3,)]

    overview = httpx.get(f"{collector.http_url}/api/analytics/overview", params={"window_minutes": 60}).json()
    assert overview["traces"] == 2 and overview["llm_calls"] == 3
    assert overview["cost_today_usd"] == pytest.approx(0.2055)
    assert [e["name"] for e in overview["top_errors"]][:1] == ["deploy"]


def test_overview_of_a_project_key_counts_its_project_only(tmp_path: Path, chdb_url: str) -> None:
    settings = collector_settings(tmp_path / "unused.duckdb", store=chdb_url, analytics_interval_s=3600.0,
                                  ingest_keys=f"alpha={INGEST_A},beta={INGEST_B}",
                                  read_keys=f"alpha={READ_A},beta={READ_B}")  # fmt: skip
    collector = RunningCollector(CollectorServer(settings).start(), tmp_path / "unused.duckdb")
    try:
        for key, count in ((INGEST_A, 3), (INGEST_B, 4)):
            for _ in range(count):
                assert post(collector, claiming("x", 2), authorization=f"Bearer {key}").status_code == 200
        ClickHouseAnalyticsRunner(collector.server.store.client, settings, settle_s=0).run_now()
        seen = {key: api(collector, "GET", "/api/analytics/overview", key).json()["traces"] for key in (READ_A, READ_B)}
        assert seen == {READ_A: 3, READ_B: 4}
        # The dashboard's own reads with a project's key: how far the rollups are, in its own terms.
        state = api(collector, "POST", "/api/sql", READ_A, json={"sql": queries.rollup_state(), "dialect": "duckdb"})
        assert state.status_code == 200, state.text
        newest_a = collector.server.store.rows("SELECT max(received_at) FROM spans WHERE project = 'alpha'")[0][0]
        assert state.json()["rows"][0][0] == jsonable(newest_a.replace(tzinfo=None))
    finally:
        collector.stop()
