"""Analytics inside a real collector: spans sent with the OpenTelemetry SDK's OTLP exporter are
priced per provider accounting, rolled up, and a failed run alerts one webhook once."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from collector.cli import main
from tests.analytics.webhook import Receiver
from tests.conftest import RunningCollector


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _send_agent_runs(endpoint: str) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "e2e-agents"}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True))
    )
    tracer = provider.get_tracer("e2e")
    with tracer.start_as_current_span("invoke_agent planner", attributes={
        "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"}):  # fmt: skip
        tracer.start_span("chat gpt-4.1", attributes={
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4.1", "gen_ai.response.model": "gpt-4.1-2025-04-14",
            "gen_ai.usage.input_tokens": 10_000, "gen_ai.usage.cache_read.input_tokens": 4_000,
            "gen_ai.usage.output_tokens": 2_000, "gen_ai.usage.reasoning.output_tokens": 500}).end()  # fmt: skip
        tracer.start_span("chat claude", attributes={
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4-5-20250929",
            "gen_ai.usage.input_tokens": 50_000, "gen_ai.usage.cache_read.input_tokens": 10_000,
            "gen_ai.usage.cache_creation.input_tokens": 2_000, "gen_ai.usage.output_tokens": 1_000}).end()  # fmt: skip
        tracer.start_span("chat mystery", attributes={
            "gen_ai.operation.name": "chat", "gen_ai.request.model": "mystery-model-7b",
            "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 10}).end()  # fmt: skip
    with tracer.start_as_current_span("invoke_agent fixer", attributes={
        "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "fixer"}) as agent:  # fmt: skip
        tool = tracer.start_span("execute_tool deploy", attributes={
            "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "deploy"})  # fmt: skip
        tool.set_status(Status(StatusCode.ERROR, "deploy failed"))
        tool.end()
        agent.set_status(Status(StatusCode.ERROR, "agent failed"))
    provider.shutdown()


def test_costs_rollups_and_one_alert_through_the_collector(
    make_collector: Callable[..., RunningCollector],
    receiver: Receiver,
    capsys: pytest.CaptureFixture[str],
) -> None:
    collector = make_collector(alert_webhooks=receiver.url, analytics_interval_s=3600.0)
    _send_agent_runs(collector.grpc_endpoint)

    report = httpx.post(f"{collector.http_url}/api/analytics/run", timeout=60).json()
    assert report["spans"] == 6 and report["llm_spans"] == 3 and report["alerts_fired"] >= 1
    costs = dict(collector.sql("SELECT model, cost_usd FROM span_costs"))
    assert costs["gpt-4.1"] == pytest.approx(0.030)  # 6,000×$2 + 4,000×$0.50 + 2,000×$8 per 1M
    assert costs["claude-sonnet-4-5-20250929"] == pytest.approx(
        0.1755
    )  # 50k×$3 + 10k×$0.30 + 2k×$3.75 + 1k×$15
    assert costs["mystery-model-7b"] is None
    assert collector.sql("SELECT model, calls FROM unpriced_models") == [("mystery-model-7b", 1)]
    assert collector.sql("SELECT sum(cost_usd) FROM spans")[0][0] == pytest.approx(0.2055)
    rolled = collector.sql("SELECT sum(llm_calls), sum(tool_calls), sum(traces_started), sum(traces_failed), "
                           "sum(cost_usd) FROM minute_rollup")[0]  # fmt: skip
    assert rolled[:4] == (3, 1, 2, 1) and rolled[4] == pytest.approx(0.2055)

    # The CLI asks the running collector (it cannot open the file the collector holds).
    assert main(["analytics", "run", "--api-url", collector.http_url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["spans"] == 0
    overview = httpx.get(f"{collector.http_url}/api/analytics/overview", timeout=30).json()
    assert overview["traces"] == 2 and overview["success_rate"] == pytest.approx(0.5)
    assert overview["top_errors"][0]["name"] == "deploy"

    collector.stop()  # drains the notifier
    notified = [b["tracehouse_alert"]["rule"] for b in receiver.bodies]
    assert notified.count("EXECUTION_ERROR") == 1 and len(notified) == len(set(notified))


def test_an_agent_arriving_late_moves_its_calls_in_the_rollup(
    make_collector: Callable[..., RunningCollector],
) -> None:
    """The writer names the agent of spans stored before their agent span; the next run recomputes
    every minute of the trace, not only the minutes of the spans it received."""
    collector = make_collector(analytics_interval_s=3600.0)
    provider = TracerProvider(resource=Resource.create({"service.name": "late"}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=collector.grpc_endpoint, insecure=True))
    )
    tracer = provider.get_tracer("e2e")
    start = time.time_ns() - 10 * 60 * 10**9  # ten minutes ago: the call is two minutes later
    agent = tracer.start_span(
        "invoke_agent planner",
        attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"},
        start_time=start,
    )
    with trace.use_span(agent, end_on_exit=False):
        call = tracer.start_span(
            "chat",
            start_time=start + 120 * 10**9,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4.1",
                "gen_ai.usage.input_tokens": 1000,
                "gen_ai.usage.output_tokens": 10,
            },
        )
        call.end(end_time=start + 121 * 10**9)  # exported (and stored) before its agent
    run = f"{collector.http_url}/api/analytics/run"
    httpx.post(run, timeout=60).raise_for_status()
    by_agent = (
        "SELECT agent_name, sum(llm_calls) FROM minute_rollup WHERE llm_calls > 0 GROUP BY ALL"
    )
    assert collector.sql(by_agent) == [(None, 1)]
    agent.end(end_time=start + 180 * 10**9)
    provider.shutdown()
    httpx.post(run, timeout=60).raise_for_status()
    assert collector.sql(by_agent) == [("planner", 1)]
    assert collector.sql("SELECT agent_name FROM span_costs") == [("planner",)]
