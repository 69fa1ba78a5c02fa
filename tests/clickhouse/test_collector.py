"""A collector on ClickHouse (chdb): the official OTel exporters, exactly-once after re-sends,
agent attribution across batches and collectors, and two collectors sharing one store."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.collector.otlp_payloads import spans_request
from tests.collector.test_agent_attribution_fixtures import FIXTURES, expected_agents, one_span_requests
from tests.collector.test_exactly_once import send, trace_of
from tests.collector.test_otel_exporters import emit_trace, make_exporter
from tests.conftest import RunningCollector


def rows(collector: RunningCollector, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """Read the collector's ClickHouse store directly."""
    return collector.server.store.rows(sql, params)


@pytest.fixture
def ch_collector(make_collector: Callable[..., RunningCollector], chdb_url: str) -> RunningCollector:
    return make_collector(store=chdb_url)


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_official_exporters_store_spans_in_clickhouse(ch_collector: RunningCollector, protocol: str) -> None:
    trace_id, count = emit_trace(make_exporter(protocol, ch_collector), f"svc-{protocol}")
    stored = rows(
        ch_collector,
        "SELECT name, parent_span_id IS NULL, status, status_message, service_name FROM spans "
        "WHERE trace_id = {t:String} ORDER BY start_time",
        t=trace_id,
    )
    assert len(stored) == count
    assert stored[0] == ("workflow", True, "unset", None, f"svc-{protocol}")
    assert ("tool", False, "error", "tool failed", f"svc-{protocol}") in stored
    trace = httpx.get(f"{ch_collector.http_url}/api/traces/{trace_id}").json()
    assert [s["name"] for s in trace["spans"]][0] == "workflow"
    listed = httpx.get(f"{ch_collector.http_url}/api/traces").json()
    assert listed["total"] == 1 and listed["traces"][0]["span_count"] == 3


def test_banner_names_the_store_without_password(make_collector: Callable[..., RunningCollector], chdb_url: str) -> None:
    collector = make_collector(store=chdb_url)
    assert "store chdb " in collector.server.banner()
    assert "database t_" in collector.server.banner()


@pytest.mark.parametrize("first, second", [("grpc", "grpc"), ("http", "http"), ("grpc", "http")])
def test_resent_request_is_stored_once(ch_collector: RunningCollector, first: str, second: str) -> None:
    request = spans_request(10)
    send(ch_collector, request, first)
    send(ch_collector, request, second)
    trace = trace_of(request)
    assert rows(ch_collector, "SELECT count(), uniqExact(span_id) FROM spans WHERE trace_id = {t:String}", t=trace) == [
        (10, 10)
    ]
    # Both copies are in the table until a merge collapses them; the view never shows two.
    assert rows(ch_collector, "SELECT count() FROM span_store WHERE trace_id = {t:String}", t=trace) == [(20,)]
    listed = httpx.get(f"{ch_collector.http_url}/api/traces/{trace}").json()
    assert len(listed["spans"]) == 10
    ch_collector.server.store.command("OPTIMIZE TABLE span_store FINAL")
    assert rows(ch_collector, "SELECT count() FROM span_store WHERE trace_id = {t:String}", t=trace) == [(10,)]


def test_concurrent_resends_in_one_group_commit_are_stored_once(
    make_collector: Callable[..., RunningCollector], chdb_url: str
) -> None:
    collector = make_collector(store=chdb_url, batch_interval_ms=200.0)
    request = spans_request(20)
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda p: send(collector, request, p), ["grpc", "http"] * 3))
    assert rows(collector, "SELECT count() FROM spans WHERE trace_id = {t:String}", t=trace_of(request)) == [(20,)]
    summary = httpx.get(f"{collector.http_url}/api/traces").json()["traces"]
    assert [t["span_count"] for t in summary] == [20]


def test_two_collectors_on_one_store_are_one_store(
    make_collector: Callable[..., RunningCollector], chdb_url: str
) -> None:
    """Stateless collectors: two of them ingest concurrently, overlapping re-sends included."""
    a, b = make_collector(store=chdb_url), make_collector(store=chdb_url)
    requests = [spans_request(25, service=f"svc-{i % 3}") for i in range(12)]

    def ingest(collector: RunningCollector, protocol: str) -> None:
        for request in requests:  # each collector gets every request: every span arrives twice
            send(collector, request, protocol)

    threads = [threading.Thread(target=ingest, args=(c, p)) for c, p in ((a, "grpc"), (b, "http"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert rows(a, "SELECT count(), uniqExact(trace_id, span_id) FROM spans") == [(300, 300)]
    for collector in (a, b):
        body = httpx.get(f"{collector.http_url}/api/traces", params={"limit": 100}).json()
        assert body["total"] == 12
        assert sorted(t["span_count"] for t in body["traces"]) == [25] * 12
    assert a.server.writer.stats.stored + b.server.writer.stats.stored == 600  # both inserted all


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f"{p.parent.name}/{p.stem}" for p in FIXTURES])
def test_agents_are_attributed_across_collectors(
    make_collector: Callable[..., RunningCollector], chdb_url: str, fixture: Path
) -> None:
    """Spans of one trace, one per request, alternately to two collectors: children arrive
    before their agent, often at the other collector; every span still gets its nearest agent."""
    collectors = [make_collector(store=chdb_url), make_collector(store=chdb_url)]
    body = fixture.read_bytes()
    expected = expected_agents(body)
    for i, request in enumerate(one_span_requests(json.loads(body))):
        response = httpx.post(
            f"{collectors[i % 2].http_url}/v1/traces", content=request, headers={"Content-Type": "application/json"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
    stored = dict(rows(collectors[0], "SELECT span_id, agent_name FROM spans"))
    assert stored == expected
    assert len({name for name in expected.values() if name}) >= 2


def test_agent_fill_wins_over_a_row_stamped_by_a_clock_running_ahead(chdb_url: str) -> None:
    """Another collector's clock may be ahead: the filled row must still be the newer version."""
    from datetime import datetime, timedelta

    from collector.clickhouse.store import ClickHouseStore
    from collector.clickhouse.writer import ClickHouseWriter
    from collector.settings import Settings
    from tests.collector.rows import span_row

    store = ClickHouseStore(chdb_url)
    ahead, ours = ClickHouseWriter(store, Settings.from_env({})), ClickHouseWriter(store, Settings.from_env({}))
    ahead._last_stamp = datetime.now() + timedelta(hours=1)  # its next stamps are an hour ahead
    trace = "ab" * 16
    ahead.submit([span_row(trace, "c" * 16, parent="a" * 16, kind="llm")]).result(10)
    ours.submit([span_row(trace, "a" * 16, kind="agent", agent="planner")]).result(10)
    assert store.rows("SELECT span_id, agent_name FROM spans ORDER BY span_id") == [("a" * 16, "planner"), ("c" * 16, "planner")]
    ahead.close()
    ours.close()


def test_key_api_on_clickhouse_lists_environment_keys_and_refuses_stored_ones(
    make_collector: Callable[..., RunningCollector], chdb_url: str
) -> None:
    from collector import keys

    admin, read = keys.generate("admin"), keys.generate("read")
    collector = make_collector(store=chdb_url, admin_keys=admin, read_keys=f"shop={read}")
    headers = {"authorization": f"Bearer {admin}"}
    listed = httpx.get(f"{collector.http_url}/api/keys", headers=headers)
    assert listed.status_code == 200
    assert {(k["kind"], k["project"]) for k in listed.json()["keys"]} == {("admin", None), ("read", "shop")}
    for method, path, body in (("POST", "", {"kind": "read", "project": "shop"}),
                               ("DELETE", f"/{keys.key_id_of(read)}", None)):
        refused = httpx.request(method, f"{collector.http_url}/api/keys{path}", headers=headers, json=body)
        assert refused.status_code == 501 and "TRACEHOUSE_READ_KEYS" in refused.json()["detail"]
    # The read key still works: nothing was revoked.
    assert httpx.get(f"{collector.http_url}/api/traces", headers={"authorization": f"Bearer {read}"}).status_code == 200
