"""One scenario on both backends: the query API answers the same on DuckDB and on ClickHouse.

The six agent traces of tests/collector/query_data.py go through each backend's own writer;
every /api read (trace list with each filter, sort and page, one trace as a tree, sessions,
one session, the export count) is then asked of both apps and the answers compared whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from collector.api import create_app
from collector.backend import DuckDBBackend
from collector.clickhouse.backend import ClickHouseBackend
from collector.clickhouse.store import ClickHouseStore
from collector.settings import Settings
from collector.store import Store
from tests.collector.query_data import standard_traces, trace_id


def _serve(backend: Any, settings: Settings) -> TestClient:
    writer = backend.open_writer(settings)
    try:
        for rows in standard_traces():
            writer.submit(rows).result(timeout=30)
        # A re-sent trace changes nothing on either backend.
        writer.submit(standard_traces()[0]).result(timeout=30)
    finally:
        writer.close()
    return TestClient(create_app(settings, backend.store, writer, backend=backend))


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory, chdb_dir: Path) -> Iterator[tuple[TestClient, TestClient]]:
    tmp = tmp_path_factory.mktemp("parity")
    duck = DuckDBBackend(Store(tmp / "parity.duckdb"))
    house = ClickHouseBackend(ClickHouseStore(f"chdb://{chdb_dir}?database=t_parity"))
    settings = Settings.from_env({}, db=str(tmp / "parity.duckdb"))
    with _serve(duck, settings) as a, _serve(house, settings) as b:
        yield a, b
    duck.close()
    house.close()


TRACE_QUERIES = [
    "",
    "?limit=2&offset=1",
    "?sort=duration_ms&order=asc",
    "?sort=cost_usd",
    "?sort=input_tokens&order=asc&limit=3",
    "?status=error",
    "?status=ok",
    "?service=sales-bot",
    "?agent=billing",
    "?model=claude-sonnet-4",
    "?session=sess-1",
    "?workflow=Sales%20quote",
    "?min_duration_ms=10000",
    "?q=REFUND",
    "?q=shipped&start=2026-11-20T00:00:00Z",
    "?start=2026-11-20T09:30:00Z&end=2026-11-20T11:30:00Z",
    "?start=2026-11-20T00:00:00Z&sort=span_count&order=asc",
    "?end=2026-11-19T00:00:00Z",
]
SESSION_QUERIES = [
    "",
    "?sort=trace_count",
    "?sort=first_seen&order=asc&limit=1&offset=1",
    "?user=user-2",
    "?start=2026-11-20T00:00:00Z",
    "?start=2026-11-20T10:30:00Z&end=2026-11-20T12:00:00Z",
]


def _same(clients: tuple[TestClient, TestClient], path: str) -> Any:
    duck, house = (c.get(path) for c in clients)
    assert duck.status_code == house.status_code, (path, duck.text, house.text)
    a, b = duck.json(), house.json()
    for body in (a, b):  # when each collector received the spans differs, by nature
        for span in body.get("spans", []):
            span.pop("received_at")
    assert a == b, path
    return a


@pytest.mark.parametrize("query", TRACE_QUERIES)
def test_trace_list_is_the_same(clients: tuple[TestClient, TestClient], query: str) -> None:
    body = _same(clients, f"/api/traces{query}")
    assert body["traces"] or query.startswith("?end=")  # the scenario has an answer for each


@pytest.mark.parametrize("n", [1, 3, 4])
def test_trace_tree_is_the_same(clients: tuple[TestClient, TestClient], n: int) -> None:
    body = _same(clients, f"/api/traces/{trace_id(n)}")
    assert [s["depth"] for s in body["spans"]][:2] == [0, 1]


@pytest.mark.parametrize("query", SESSION_QUERIES)
def test_session_list_is_the_same(clients: tuple[TestClient, TestClient], query: str) -> None:
    assert _same(clients, f"/api/sessions{query}")["sessions"]


@pytest.mark.parametrize("session", ["sess-1", "sess-2", "nobody"])
def test_one_session_is_the_same(clients: tuple[TestClient, TestClient], session: str) -> None:
    _same(clients, f"/api/sessions/{session}")


def test_unknown_trace_is_404_on_both(clients: tuple[TestClient, TestClient]) -> None:
    _same(clients, f"/api/traces/{'0' * 32}")


def test_export_is_the_same(clients: tuple[TestClient, TestClient]) -> None:
    duck, house = (c.get("/api/export?since=2026-11-20T00:00:00Z") for c in clients)
    assert duck.headers["x-total-rows"] == house.headers["x-total-rows"] == "36"  # 5 traces, no re-sent copy
    a, b = (pa.ipc.open_stream(r.content).read_all() for r in (duck, house))
    assert a.num_rows == b.num_rows == 36
    assert set(a.column_names) == set(b.column_names)
    keys = ["trace_id", "span_id", "name", "input_tokens", "attributes"]
    assert a.select(keys).to_pylist() == b.select(keys).to_pylist()  # same order: start_time, ids


DUCKDB_SQL = [
    "SELECT service_name, count(*) AS n FROM spans GROUP BY 1 ORDER BY 1",
    "SELECT count(*) FILTER (WHERE status = 'error') AS failed, count(DISTINCT trace_id) AS traces FROM spans",
    "SELECT session_id, trace_count FROM sessions ORDER BY session_id",
    "SELECT trace_id, span_count, llm_calls FROM traces WHERE duration_ms > 1000 ORDER BY trace_id",
]


@pytest.mark.parametrize("text", DUCKDB_SQL)
def test_dashboard_duckdb_sql_answers_the_same(clients: tuple[TestClient, TestClient], text: str) -> None:
    duck, house = (c.post("/api/sql", json={"sql": text, "dialect": "duckdb"}) for c in clients)
    assert duck.status_code == house.status_code == 200, (duck.text, house.text)
    assert duck.json()["rows"] == house.json()["rows"] and duck.json()["rows"]


def test_duckdb_store_refuses_clickhouse_sql_in_one_line(clients: tuple[TestClient, TestClient]) -> None:
    response = clients[0].post("/api/sql", json={"sql": "SELECT count() FROM spans", "dialect": "clickhouse"})
    assert response.status_code == 400 and "DuckDB" in response.json()["detail"]
    assert clients[1].post("/api/sql", json={"sql": "SELECT count() FROM spans", "dialect": "clickhouse"}).json()["rows"] == [[36 + 8]]
