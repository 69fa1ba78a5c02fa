"""The query API through the real app: every trace filter, paging, sorting, trees, sessions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from collector import rollup
from collector.api import create_app
from collector.settings import Settings
from collector.store import Store
from tests.collector.query_data import (
    BASE,
    agent_trace,
    standard_traces,
    store_through_writer,
    trace_id,
)


@pytest.fixture()
def store(tmp_path) -> Iterator[Store]:
    store = Store(tmp_path / "query.duckdb")
    store_through_writer(store, standard_traces())
    yield store
    store.close()


@pytest.fixture()
def client(store: Store, tmp_path) -> Iterator[TestClient]:
    settings = Settings.from_env({}, db=str(tmp_path / "query.duckdb"))
    with TestClient(create_app(settings, store)) as client:
        yield client


def ids(response) -> set[int]:
    assert response.status_code == 200, response.text
    by_id = {trace_id(n): n for n in range(1, 7)}
    return {by_id[t["trace_id"]] for t in response.json()["traces"]}


def test_list_returns_every_trace_newest_first(client: TestClient) -> None:
    body = client.get("/api/traces").json()
    assert body["total"] == 6 and body["limit"] == 50 and body["offset"] == 0
    starts = [t["start_time"] for t in body["traces"]]
    assert starts == sorted(starts, reverse=True)
    assert body["traces"][0]["trace_id"] == trace_id(5)


def test_trace_row_summarizes_its_spans(client: TestClient) -> None:
    body = client.get("/api/traces", params={"session": "sess-3"}).json()
    (t,) = body["traces"]
    assert t["trace_id"] == trace_id(4)
    assert t["root_name"] == "Customer support" and t["workflow_name"] == "Customer support"
    assert t["service_name"] == "support-bot" and t["user_id"] == "user-3"
    assert t["status"] == "error" and t["error_count"] == 2  # the failed tool and the root
    assert (t["span_count"], t["llm_calls"], t["tool_calls"], t["handoffs"]) == (8, 2, 2, 1)
    assert t["agents"] == ["billing", "triage"] and t["models"] == ["gpt-4o"]
    assert t["input_tokens"] == 2 * (1200 + 40) and t["output_tokens"] == 2 * 304
    assert t["cached_tokens"] == 200 and t["reasoning_tokens"] == 0
    assert t["cost_usd"] is None  # nothing priced yet
    assert t["start_time"] == "2026-11-20T11:00:00.000000Z" and t["end_time"].endswith("Z")
    assert t["duration_ms"] == pytest.approx(4000.0)


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"service": "sales-bot"}, {3, 6}),
        ({"agent": "billing"}, {1, 2, 4, 5, 6}),
        ({"agent": "sales"}, {3, 6}),
        ({"model": "claude-sonnet-4"}, {3, 6}),
        ({"status": "error"}, {4}),
        ({"status": "ok"}, {1, 2, 3, 5, 6}),
        ({"session": "sess-1"}, {1, 2}),
        ({"workflow": "Sales quote"}, {3, 6}),
        ({"workflow": "Customer support", "service": "support-bot"}, {1, 2, 4, 5}),
        ({"workflow": "customer support"}, set()),  # exact name
        ({"min_duration_ms": 10000}, {5}),
        ({"q": "refund"}, {2, 4}),  # a question in one trace, a tool name in another
        ({"q": "DID NOT ANSWER"}, {4}),  # status message, case-insensitive
        ({"q": "100%"}, set()),  # % is a literal, not a wildcard
        ({"q": '{"ORDER_ID": 1234}'}, {1, 2, 3, 4, 5, 6}),  # punctuation is literal too
        ({"q": "(?i).*"}, set()),  # and so is regular-expression syntax
        ({"q": "refund", "end": "2026-11-20T10:00:00Z"}, {2}),
        ({"q": "Answer 3 from"}, {3}),  # LLM output text
        ({"start": "2026-11-20T09:00:00Z", "end": "2026-11-20T10:30:00Z"}, {1, 2, 3}),
        ({"start": "2026-11-20T12:00:00+02:00"}, {3, 4, 5}),  # offsets are converted to UTC
        ({"end": "2026-11-20T00:00:00"}, {6}),
        ({"service": "support-bot", "agent": "billing", "status": "ok"}, {1, 2, 5}),
        ({"q": "refund", "start": "2026-11-20T10:00:00Z"}, {4}),
    ],
)
def test_filters(client: TestClient, params: dict, expected: set[int]) -> None:
    response = client.get("/api/traces", params=params)
    assert ids(response) == expected
    assert response.json()["total"] == len(expected)


def test_paging_and_sorting(client: TestClient) -> None:
    first = client.get("/api/traces", params={"limit": 4}).json()
    second = client.get("/api/traces", params={"limit": 4, "offset": 4}).json()
    assert len(first["traces"]) == 4 and len(second["traces"]) == 2
    assert first["total"] == second["total"] == 6
    assert not {t["trace_id"] for t in first["traces"]} & {t["trace_id"] for t in second["traces"]}
    longest = client.get(
        "/api/traces", params={"sort": "duration_ms", "order": "desc", "limit": 1}
    ).json()
    assert longest["traces"][0]["trace_id"] == trace_id(5)
    oldest = client.get(
        "/api/traces", params={"sort": "start_time", "order": "asc", "limit": 1}
    ).json()
    assert oldest["traces"][0]["trace_id"] == trace_id(6)
    fewest = client.get("/api/traces", params={"sort": "span_count", "order": "asc"}).json()[
        "traces"
    ]
    assert [t["span_count"] for t in fewest] == sorted(t["span_count"] for t in fewest)


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 1001},
        {"offset": -1},
        {"sort": "name; DROP TABLE spans"},
        {"order": "sideways"},
        {"status": "maybe"},
        {"min_duration_ms": -5},
    ],
)
def test_bad_list_parameters_are_refused(client: TestClient, params: dict) -> None:
    assert client.get("/api/traces", params=params).status_code == 422
    assert client.get("/api/traces").json()["total"] == 6  # and nothing was harmed


def test_bad_time_is_one_line_400(client: TestClient) -> None:
    response = client.get("/api/traces", params={"start": "yesterday"})
    assert response.status_code == 400
    assert "start" in response.json()["detail"] and "ISO 8601" in response.json()["detail"]


def test_trace_spans_come_in_tree_order_with_depth(client: TestClient) -> None:
    body = client.get(f"/api/traces/{trace_id(4)}").json()
    spans = body["spans"]
    assert body["trace_id"] == trace_id(4) and len(spans) == 8
    assert spans[0]["parent_span_id"] is None and spans[0]["depth"] == 0
    position = {s["span_id"]: i for i, s in enumerate(spans)}
    for span in spans[1:]:
        parent = spans[position[span["parent_span_id"]]]
        assert position[span["parent_span_id"]] < position[span["span_id"]]
        assert span["depth"] == parent["depth"] + 1
    assert [s["kind"] for s in spans] == [
        "workflow",
        "agent",
        "llm",
        "tool",
        "handoff",
        "agent",
        "llm",
        "tool",
    ]
    llm = spans[2]
    assert llm["attributes"] == {"gen_ai.request.model": "gpt-4o", "gen_ai.operation.name": "chat"}
    assert llm["resource"] == {"service.name": "support-bot"} and llm["events"] == []
    failed = spans[-1]
    assert failed["status"] == "error" and failed["events"][0]["name"] == "exception"
    assert failed["start_time"].endswith("Z") and failed["received_at"].endswith("Z")


def test_trace_id_is_validated_and_absent_trace_is_404(client: TestClient) -> None:
    for bad in ["xyz", "0" * 31, "g" * 32, "0" * 33]:
        response = client.get(f"/api/traces/{bad}")
        assert response.status_code == 400 and "32 hex" in response.json()["detail"]
    missing = client.get(f"/api/traces/{'ab' * 16}")
    assert missing.status_code == 404 and "not found" in missing.json()["detail"]
    upper = client.get(f"/api/traces/{trace_id(1).upper()}")
    assert upper.status_code == 200 and upper.json()["trace_id"] == trace_id(1)


def test_sessions_list_and_one_session(client: TestClient) -> None:
    body = client.get("/api/sessions").json()
    assert body["total"] == 3
    by_id = {s["session_id"]: s for s in body["sessions"]}
    assert set(by_id) == {"sess-1", "sess-2", "sess-3"}
    sales = by_id["sess-2"]
    assert sales["trace_count"] == 2 and sales["agents"] == ["billing", "sales"]
    assert sales["services"] == ["sales-bot"] and sales["user_id"] == "user-2"
    assert sales["first_seen"].startswith("2026-11-18T09:00:00")
    assert by_id["sess-3"]["error_traces"] == 1
    recent = client.get("/api/sessions", params={"start": "2026-11-20T00:00:00Z"}).json()
    assert recent["total"] == 3
    old = client.get("/api/sessions", params={"end": "2026-11-19T00:00:00Z"}).json()
    assert [s["session_id"] for s in old["sessions"]] == ["sess-2"]
    assert old["sessions"][0]["trace_count"] == 2  # the whole session, not just the old trace
    page = client.get(
        "/api/sessions", params={"limit": 1, "sort": "trace_count", "order": "desc"}
    ).json()
    assert page["total"] == 3 and page["sessions"][0]["trace_count"] == 2

    one = client.get("/api/sessions/sess-1").json()
    assert one["session_id"] == "sess-1" and one["trace_count"] == 2
    assert [t["trace_id"] for t in one["traces"]] == [trace_id(1), trace_id(2)]
    assert client.get("/api/sessions/nope").status_code == 404


def test_new_and_late_spans_update_the_traces_view(client: TestClient, store: Store) -> None:
    rows = agent_trace(7, start=BASE + timedelta(hours=5), session="sess-9")
    root, children = rows[0], rows[1:]
    store_through_writer(store, [children[:3]])
    first = client.get("/api/traces", params={"session": "sess-9"}).json()["traces"][0]
    assert first["span_count"] == 3 and first["root_name"] == "invoke_agent triage"
    store_through_writer(store, [children[3:], [root], rows])  # the last batch: all re-sent
    (t,) = client.get("/api/traces", params={"session": "sess-9"}).json()["traces"]
    assert t["span_count"] == len(rows) and t["root_name"] == "Customer support"
    assert t["start_time"] == "2026-11-20T14:00:00.000000Z" and t["duration_ms"] == pytest.approx(
        4000.0
    )
    assert client.get("/api/traces").json()["total"] == 7


def test_cost_is_summed_once_priced_and_null_while_unpriced(
    client: TestClient, store: Store
) -> None:
    con = store.write_connection
    con.execute(
        "UPDATE spans SET cost_usd = 0.25 WHERE trace_id = ? AND kind = 'llm'", [trace_id(1)]
    )
    rollup.refresh_traces(store, [trace_id(1)])
    costs = {t["trace_id"]: t["cost_usd"] for t in client.get("/api/traces").json()["traces"]}
    assert costs[trace_id(1)] == pytest.approx(0.5)
    assert costs[trace_id(2)] is None
    session = client.get("/api/sessions/sess-1").json()
    assert session["cost_usd"] == pytest.approx(0.5)


def test_export_streams_arrow_with_the_row_count(client: TestClient) -> None:
    import pyarrow as pa

    response = client.get("/api/export", params={"since": "2026-11-20T00:00:00Z"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.apache.arrow.stream"
    table = pa.ipc.open_stream(response.content).read_all()
    assert table.num_rows == int(response.headers["X-Total-Rows"]) == 44 - 8  # all but trace 6
    starts = table.column("start_time").to_pylist()
    assert starts == sorted(starts)
    assert client.get("/api/export", params={"until": "soon"}).status_code == 400
