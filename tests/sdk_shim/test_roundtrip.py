"""Spans from the shim and from the real openai-agents adapter, through a REAL collector.

The collector (gRPC + HTTP receivers, normalizer, DuckDB writer) runs on ephemeral loopback
ports via the shared ``collector`` fixture; spans go out through the OTel SDK's OTLP exporters
and are checked in the collector's SQL.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

import sdk_shim
from sdk_shim.runtime import (
    Agent,
    GuardrailFunctionOutput,
    InputGuardrailTripwireTriggered,
    Reply,
    Runner,
    ScriptedModel,
    input_guardrail,
)
from tests.sdk_shim.test_runtime import charge_card, lookup_order

COLUMNS = (
    "trace_id, span_id, parent_span_id, name, kind, status, session_id, agent_name, model, provider, "
    "input_tokens, output_tokens, cached_tokens, reasoning_tokens, cache_write_tokens, tool_name, "
    "handoff_from, handoff_to, guardrail_triggered, error_type, workflow_name, service_name"
)


@pytest.fixture
def live(request: pytest.FixtureRequest) -> Any:
    try:
        return request.getfixturevalue("collector")
    except pytest.FixtureLookupError:
        pytest.skip("the shared `collector` fixture (tests/conftest.py) is not on this branch yet")


def _rows(live: Any, where: str, params: list[Any], expect: int) -> list[dict[str, Any]]:
    """Rows matching ``where``; waits (bounded) until ``expect`` of them are committed."""
    names = [c.strip() for c in COLUMNS.split(",")]
    deadline = time.monotonic() + 15
    while True:
        rows = [
            dict(zip(names, r))
            for r in live.sql(f"SELECT {COLUMNS} FROM spans WHERE {where}", params)
        ]
        if len(rows) >= expect or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def _endpoint(live: Any, protocol: str) -> str:
    return f"http://{live.grpc_endpoint}" if protocol == "grpc" else live.http_url


@input_guardrail
def no_cards(agent: Agent, data: object) -> GuardrailFunctionOutput:
    return GuardrailFunctionOutput(tripwire_triggered="4111" in str(data))


def _support(model: str) -> Agent:
    script = [
        Reply(tool_calls=[("lookup_order", {"order_id": 7}), ("charge", {"amount": 12.5})]),
        Reply(text="done"),
    ]
    orders = Agent(
        "orders",
        "Orders.",
        ScriptedModel(model, script, system_tokens=1400),
        tools=[lookup_order, charge_card],
    )
    return Agent(
        "triage",
        "Route.",
        ScriptedModel("gpt-4.1-mini", [Reply(handoff="orders")], system_tokens=1400),
        handoffs=[orders],
        input_guardrails=[no_cards],
    )


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_shim_runtime_spans_land_in_the_collector(live: Any, protocol: str) -> None:
    handle = sdk_shim.configure(
        endpoint=_endpoint(live, protocol), protocol=protocol, service_name="rt-shim"
    )
    try:
        result = Runner.run_sync(
            _support("claude-sonnet-4"), "where is 7?", workflow_name="support", group_id="sess-rt"
        )
        with pytest.raises(InputGuardrailTripwireTriggered):
            Runner.run_sync(
                _support("gpt-4.1"), "card 4111", workflow_name="support", group_id="sess-rt"
            )
        assert handle.force_flush()
    finally:
        handle.shutdown()
    assert handle.dropped_spans == 0
    rows = _rows(live, "session_id = ?", ["sess-rt"], 13)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_kind.setdefault(row["kind"], []).append(row)
    assert len(rows) == 13, sorted((r["kind"], r["name"]) for r in rows)
    assert len(by_kind["workflow"]) == 2 and {r["workflow_name"] for r in by_kind["workflow"]} == {
        "support"
    }
    assert all(r["parent_span_id"] is None for r in by_kind["workflow"])
    ok_trace = result.trace_id.removeprefix("trace_")
    ids = {r["span_id"]: r for r in rows if r["trace_id"] == ok_trace}
    assert all(r["parent_span_id"] in ids for r in ids.values() if r["kind"] != "workflow")
    assert {r["service_name"] for r in rows} == {"rt-shim"}

    llm = [r for r in by_kind["llm"] if r["trace_id"] == ok_trace]
    assert sorted(r["model"] for r in llm) == ["claude-sonnet-4", "claude-sonnet-4", "gpt-4.1-mini"]
    claude = [r for r in llm if r["model"] == "claude-sonnet-4"]
    assert {r["provider"] for r in claude} == {"anthropic"}
    assert sum(r["input_tokens"] for r in llm) == result.usage.input_tokens
    assert sum(r["cached_tokens"] or 0 for r in llm) == result.usage.cached_tokens > 0
    assert sum(r["cache_write_tokens"] or 0 for r in llm) == result.usage.cache_write_tokens > 0
    assert {r["agent_name"] for r in llm} == {"triage", "orders"}

    (handoff,) = by_kind["handoff"]
    assert (handoff["handoff_from"], handoff["handoff_to"]) == ("triage", "orders")
    tools = {r["tool_name"]: r for r in by_kind["tool"]}
    assert tools["charge"]["status"] == "error" and tools["charge"]["error_type"] == "ValueError"
    assert tools["lookup_order"]["status"] != "error"
    guards = sorted(r["guardrail_triggered"] for r in by_kind["guardrail"])
    assert guards == [False, True]
    tripped_agent = [r for r in by_kind["agent"] if r["trace_id"] != ok_trace]
    assert [r["status"] for r in tripped_agent] == ["error"]


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_openai_agents_adapter_spans_land_in_the_collector(
    live: Any, protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    agents = pytest.importorskip("agents")
    from agents.tracing import get_trace_provider

    from tests.sdk_shim.agents_script import ScriptedAgentsModel
    from tests.sdk_shim.test_agents_adapter import SCRIPT, _agents

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    multi = get_trace_provider()._multi_processor
    before = list(multi._processors)
    processor = sdk_shim.instrument_openai_agents(
        endpoint=_endpoint(live, protocol),
        protocol=protocol,
        service_name="rt-agents",
        replace_default=True,
    )
    try:
        with agents.trace("support", group_id="sess-agents"):
            agents.Runner.run_sync(_agents(ScriptedAgentsModel(list(SCRIPT))), "where is order 42?")
        assert processor.handle.force_flush()
    finally:
        processor.handle.shutdown()
        multi.set_processors(before)
    rows = _rows(live, "session_id = ?", ["sess-agents"], 17)
    kinds: dict[str, int] = {}
    for row in rows:
        kinds[row["kind"]] = kinds.get(row["kind"], 0) + 1
    # trace, task, 4 turns, 2 agents, 4 LLM calls, 3 tools, 1 handoff, 1 guardrail
    assert kinds == {
        "workflow": 1,
        "chain": 5,
        "agent": 2,
        "llm": 4,
        "tool": 3,
        "handoff": 1,
        "guardrail": 1,
    }
    llm = [r for r in rows if r["kind"] == "llm"]
    assert (
        sum(r["input_tokens"] for r in llm) == 6000 and sum(r["cached_tokens"] for r in llm) == 4096
    )
    assert sum(r["reasoning_tokens"] for r in llm) == 256
    assert {r["model"] for r in llm} == {"gpt-4.1-2025-04-14"}
    (handoff,) = [r for r in rows if r["kind"] == "handoff"]
    assert (handoff["handoff_from"], handoff["handoff_to"]) == ("triage", "orders")
    (guard,) = [r for r in rows if r["kind"] == "guardrail"]
    assert guard["guardrail_triggered"] is False
    refund = next(r for r in rows if r["tool_name"] == "refund")
    assert refund["status"] == "error" and refund["error_type"].startswith("Error running tool")
    ids = {r["span_id"] for r in rows}
    assert all(r["parent_span_id"] in ids for r in rows if r["kind"] != "workflow")
    assert len({r["trace_id"] for r in rows}) == 1


def test_demo_traffic_lands_in_the_collector(live: Any) -> None:
    from sdk_shim.demo import run_demo

    stats = run_demo(
        endpoint=_endpoint(live, "grpc"), rate_per_min=3000, duration_s=2, latency_scale=0, seed=11
    )
    assert stats.traces > 20 and stats.dropped_spans == 0
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        (roots,) = live.sql(
            "SELECT count(*) FROM spans WHERE kind = 'workflow' AND service_name = 'tracehouse-demo'"
        )[0]
        if roots >= stats.traces:
            break
        time.sleep(0.1)
    assert roots == stats.traces
    workflows = {
        r[0] for r in live.sql("SELECT DISTINCT workflow_name FROM spans WHERE kind = 'workflow'")
    }
    assert workflows == {"customer-service", "content-pipeline", "order-workflow"}
    models = {r[0] for r in live.sql("SELECT DISTINCT model FROM spans WHERE kind = 'llm'")}
    assert {"gpt-4.1", "gpt-4.1-mini", "claude-sonnet-4", "claude-3-5-haiku"} <= models
    kinds = {r[0] for r in live.sql("SELECT DISTINCT kind FROM spans")}
    assert {"workflow", "agent", "llm", "tool", "handoff", "guardrail"} <= kinds
    (tool_errors,) = live.sql(
        "SELECT count(*) FROM spans WHERE kind = 'tool' AND status = 'error'"
    )[0]
    assert tool_errors > 0
    (multi_trace_sessions,) = live.sql(
        "SELECT count(*) FROM (SELECT session_id FROM spans WHERE kind = 'workflow' "
        "GROUP BY session_id HAVING count(DISTINCT trace_id) > 1)"
    )[0]
    assert multi_trace_sessions > 0
    (unattributed,) = live.sql(
        "SELECT count(*) FROM spans WHERE kind = 'llm' AND agent_name IS NULL"
    )[0]
    assert unattributed == 0
