"""Pages that read the analytics rollups stay live: spans stored after the last analytics run
are read from the store itself, so the numbers still equal what the store holds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from collector.settings import Settings
from dashboard import fmt
from tests.dashboard import seed
from tests.dashboard.conftest import SeededCollector, _run_analytics
from tests.dashboard.test_pages import frames, metrics, open_page


@pytest.fixture(scope="module")
def half_rolled_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SeededCollector, seed.Seeded]]:
    """Traffic from two minutes ago, rolled up by the analytics jobs, then the same again a minute later
    that no analytics run has seen yet."""
    serve = pytest.importorskip("collector.serve", reason="needs the collector's CollectorServer (ingest path)")
    pytest.importorskip("analytics.runner", reason="needs the analytics jobs")
    db = tmp_path_factory.mktemp("live-tail") / "tracehouse.duckdb"
    settings = Settings(host="127.0.0.1", grpc_port=0, http_port=0, db=str(db), batch_interval_ms=5.0)
    server = serve.CollectorServer(settings).start()
    try:
        earlier = seed.send(server.grpc_endpoint, seconds_ago=180.0)
        seed.wait_stored(server.http_url, earlier.spans)
        _run_analytics(server, server.settings)
        recent = seed.send(server.grpc_endpoint, seconds_ago=75.0)
        seed.wait_stored(server.http_url, earlier.spans + recent.spans)
        yield SeededCollector(server.http_url, server.grpc_endpoint, earlier, server), recent
    finally:
        server.stop()


@pytest.fixture
def live(half_rolled_up: tuple[SeededCollector, seed.Seeded], monkeypatch: pytest.MonkeyPatch
         ) -> tuple[SeededCollector, seed.Seeded]:
    monkeypatch.setenv("TRACEHOUSE_API_URL", half_rolled_up[0].http_url)
    return half_rolled_up


@pytest.mark.parametrize("time_range", ["Last hour", "Last 24 hours"])
def test_overview_adds_the_spans_the_rollup_has_not_seen(live: tuple[SeededCollector, seed.Seeded],
                                                         time_range: str) -> None:
    api, recent = live
    (rolled,) = api.sql("SELECT sum(total_tokens) FROM minute_rollup")[0]
    assert rolled == api.seeded.tokens  # the rollup holds the first batch only
    at = open_page("overview", state={"range": time_range})
    shown = metrics(at)
    (tokens,) = api.sql("SELECT sum(input_tokens + output_tokens) FROM spans WHERE kind = 'llm'")[0]
    assert tokens == api.seeded.tokens + recent.tokens
    assert shown["Tokens today"] == fmt.count(tokens)
    (priced,) = api.sql("SELECT sum(cost_usd) FROM span_costs")[0]  # what the cost job has priced so far
    assert shown["Cost today"] == fmt.money(priced)
    (failed, traces) = api.sql("SELECT count(*) FILTER (WHERE status = 'error'), count(*) FROM traces")[0]
    assert shown["Success rate"] == fmt.percent((traces - failed) / traces)
    errors = frames(at)[0]
    row = errors[errors["last_message"] == seed.TOOL_ERROR].iloc[0]
    assert row["spans"] == 2  # one failed tool call in each batch
    assert row["trace_id"] == recent.traces["refund_failed"]  # the latest, from the live spans


def test_agents_usage_counts_the_spans_the_rollup_has_not_seen(live: tuple[SeededCollector, seed.Seeded]) -> None:
    api, _ = live
    at = open_page("agents", state={"range": "Last 24 hours"})
    stats = frames(at)[0].set_index("agent")
    expected = api.sql("""SELECT agent_name, count(*) FILTER (WHERE kind = 'llm'), count(*) FILTER (WHERE kind = 'tool'),
                                 sum(input_tokens + output_tokens) FILTER (WHERE kind = 'llm')
                          FROM spans WHERE agent_name IS NOT NULL GROUP BY ALL""")
    assert expected
    for agent, llm_calls, tool_calls, tokens in expected:
        assert (stats.loc[agent, "llm_calls"], stats.loc[agent, "tool_calls"]) == (llm_calls, tool_calls)
        assert stats.loc[agent, "tokens"] == (tokens or 0)


def test_agents_runs_handoffs_and_tools_count_the_spans_the_rollup_has_not_seen(
        live: tuple[SeededCollector, seed.Seeded]) -> None:
    api, _ = live
    (rolled,) = api.sql("SELECT sum(calls) FROM call_minutes WHERE kind = 'tool'")[0]
    (tools,) = api.sql("SELECT count(*) FROM spans WHERE kind = 'tool'")[0]
    assert rolled == tools // 2  # the rollup holds the first batch only
    at = open_page("agents", state={"range": "Last 24 hours"})
    stats, handoffs, _, tool_table = frames(at)
    runs = dict(api.sql("SELECT agent_name, count(*) FROM spans WHERE kind = 'agent' GROUP BY ALL"))
    assert stats.set_index("agent")["runs"].to_dict() == runs
    assert {(r.source, r.target): r.count for r in handoffs.itertuples()} == {
        pair: 2 * n for pair, n in api.seeded.handoffs.items()}
    refund = tool_table.set_index("tool").loc["issue_refund"]
    assert (refund["calls"], refund["failures"], refund["failure_rate"]) == (2, 2, 1.0)
    assert refund["last_error"] == seed.TOOL_ERROR


def test_agent_filter_applies_to_the_rollup_and_the_tail_alike(live: tuple[SeededCollector, seed.Seeded]) -> None:
    api, _ = live
    (agent,) = sorted(api.seeded.agents)[:1]
    at = open_page("overview", state={"range": "Last 24 hours", "agent": agent})
    (tokens,) = api.sql(f"SELECT coalesce(sum(input_tokens + output_tokens), 0) FROM spans "
                        f"WHERE kind = 'llm' AND agent_name = '{agent}'")[0]
    assert metrics(at)["Tokens today"] == fmt.count(tokens)
    at = open_page("agents", state={"range": "Last 24 hours", "agent": agent})
    shown = frames(at)
    assert list(shown[0]["agent"]) == [agent]
    (calls,) = api.sql(f"SELECT count(*) FROM spans WHERE kind = 'tool' AND agent_name = '{agent}'")[0]
    assert calls > 0
    (tools,) = [f for f in shown if "tool" in f.columns]
    assert tools["calls"].sum() == calls
