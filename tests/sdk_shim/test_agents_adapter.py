"""The adapter against the real openai-agents package, driven offline by a scripted Model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

agents = pytest.importorskip("agents")
from agents import (
    Agent,
    GuardrailFunctionOutput,
    InputGuardrailTripwireTriggered,
    Runner,
    function_tool,
    input_guardrail,
)
from agents.tracing import (
    custom_span,
    get_trace_provider,
    mcp_tools_span,
    speech_group_span,
    speech_span,
    transcription_span,
)
from opentelemetry.trace import StatusCode

import sdk_shim
from sdk_shim import semconv as sc
from tests.sdk_shim.agents_script import ScriptedAgentsModel, Step
from tests.sdk_shim.conftest import Captured


@pytest.fixture
def sdk_processors(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Keep the SDK's processor list as it was; never let its default exporter reach the network."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    multi = get_trace_provider()._multi_processor
    before = list(multi._processors)
    yield
    multi.set_processors(before)


@function_tool
def lookup_order(order_id: int) -> dict[str, Any]:
    """Look up an order.

    Args:
        order_id: The order number.
    """
    return {"order_id": order_id, "status": "shipped"}


@function_tool
async def shipping_eta(order_id: int) -> str:
    """Days until delivery."""
    return "2 days"


def _fail(ctx: Any, error: Exception) -> str:
    return f"tool failed: {error}"


@function_tool(failure_error_function=_fail)
def refund(order_id: int) -> str:
    """Refund an order."""
    raise ValueError(f"order {order_id} is not refundable")


@input_guardrail
async def pii_check(ctx: Any, agent: Any, data: Any) -> GuardrailFunctionOutput:
    return GuardrailFunctionOutput(
        output_info={"pii": "ssn" in str(data)}, tripwire_triggered="ssn" in str(data)
    )


def _agents(model: ScriptedAgentsModel) -> Agent:
    orders = Agent(
        name="orders",
        instructions="Handle orders.",
        model=model,
        tools=[lookup_order, shipping_eta, refund],
    )
    return Agent(
        name="triage",
        instructions="Route.",
        model=model,
        handoffs=[orders],
        input_guardrails=[pii_check],
    )


SCRIPT = [
    Step(calls=[("transfer_to_orders", {})], usage=(900, 20, 0, 0)),
    Step(calls=[("lookup_order", {"order_id": 42}), ("shipping_eta", {"order_id": 42})]),
    Step(calls=[("refund", {"order_id": 42})], usage=(2100, 40, 2048, 128)),
    Step(text="Order 42 shipped, arrives in 2 days; it cannot be refunded."),
]


def _run_conversation(style: str) -> Any:
    model = ScriptedAgentsModel(list(SCRIPT), style=style)
    with agents.trace("support", group_id="conv-7", metadata={"channel": "chat"}):
        return Runner.run_sync(_agents(model), "where is order 42?")


def _check_conversation(captured: Captured, style: str) -> None:
    spans = captured.spans
    root = captured.one("support")
    assert root.parent is None and root.attributes[sc.OPERATION_NAME] == "invoke_workflow"
    assert root.attributes[sc.SDK_TRACE_ID].startswith("trace_")
    assert root.attributes["openai_agents.metadata.channel"] == "chat"
    assert {s.attributes.get(sc.CONVERSATION_ID) for s in spans} == {"conv-7"}
    assert {s.context.trace_id for s in spans} == {root.context.trace_id}
    ids = {s.context.span_id for s in spans}
    assert all(s.parent.span_id in ids for s in spans if s is not root)

    triage, orders = captured.one("invoke_agent triage"), captured.one("invoke_agent orders")
    assert triage.attributes[sc.AGENT_HANDOFFS] == ("orders",)
    assert set(orders.attributes[sc.AGENT_TOOLS]) == {"lookup_order", "shipping_eta", "refund"}
    llms = captured.by_type(style)
    assert len(llms) == 4
    assert all(
        s.attributes[sc.OPERATION_NAME] == "chat" and s.name.startswith("chat gpt-4.1")
        for s in llms
    )
    assert sum(s.attributes[sc.USAGE_INPUT_TOKENS] for s in llms) == 900 + 1500 + 2100 + 1500
    assert sum(s.attributes[sc.USAGE_CACHE_READ_INPUT_TOKENS] for s in llms) == 1024 + 2048 + 1024
    assert sum(s.attributes[sc.USAGE_REASONING_TOKENS] for s in llms) == 64 + 128 + 64
    assert {s.attributes[sc.AGENT_NAME] for s in llms} == {"triage", "orders"}

    hand = captured.one("handoff triage -> orders")
    assert (hand.attributes[sc.HANDOFF_FROM], hand.attributes[sc.HANDOFF_TO]) == (
        "triage",
        "orders",
    )
    guard = captured.one("guardrail pii_check")
    assert guard.attributes[sc.GUARDRAIL_TRIGGERED] is False

    lookup = captured.one("execute_tool lookup_order")
    eta = captured.one("execute_tool shipping_eta")
    assert lookup.parent.span_id == eta.parent.span_id  # parallel tool calls are siblings
    assert json.loads(lookup.attributes[sc.TOOL_CALL_ARGUMENTS]) == {"order_id": 42}
    assert "shipped" in lookup.attributes[sc.TOOL_CALL_RESULT]
    failed = captured.one("execute_tool refund")
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes[sc.ERROR_TYPE] == failed.status.description
    assert "not refundable" in failed.attributes[sc.ERROR_DATA]
    assert "not refundable" in failed.attributes[sc.TOOL_CALL_RESULT]
    assert len(captured.by_type("task")) == 1 and len(captured.by_type("turn")) == 4


@pytest.mark.parametrize("style", ["response", "generation"])
def test_adapter_beside_default_exporter(
    sdk_processors: None, captured: Captured, style: str
) -> None:
    sdk_shim.instrument_openai_agents()
    result = _run_conversation(style)
    assert "cannot be refunded" in result.final_output
    _check_conversation(captured, style)


def test_adapter_replacing_default_exporter(sdk_processors: None, captured: Captured) -> None:
    processor = sdk_shim.instrument_openai_agents(replace_default=False)
    agents.set_trace_processors([processor])
    _run_conversation("response")
    _check_conversation(captured, "response")
    assert list(get_trace_provider()._multi_processor._processors) == [processor]


def test_guardrail_tripwire_and_model_failure(sdk_processors: None, captured: Captured) -> None:
    sdk_shim.instrument_openai_agents()
    model = ScriptedAgentsModel([Step(text="never")])
    with pytest.raises(InputGuardrailTripwireTriggered):
        Runner.run_sync(
            _agents(model),
            "my ssn is 123",
        )
    guard = captured.one("guardrail pii_check")
    assert guard.attributes[sc.GUARDRAIL_TRIGGERED] is True
    errors = [s for s in captured.spans if s.status.status_code is StatusCode.ERROR]
    assert any("Guardrail tripwire triggered" in (s.status.description or "") for s in errors)

    broken = ScriptedAgentsModel([Step(error="upstream 500")])
    with pytest.raises(RuntimeError, match="upstream 500"):
        Runner.run_sync(Agent(name="solo", model=broken), "hi")
    failed_llm = [
        s for s in captured.by_type("response") if s.status.status_code is StatusCode.ERROR
    ]
    assert len(failed_llm) == 1 and failed_llm[0].status.description == "Error getting response"
    assert failed_llm[0].attributes[sc.ERROR_TYPE] == "Error getting response"
    assert json.loads(failed_llm[0].attributes[sc.ERROR_DATA]) == {"error": "upstream 500"}
    assert captured.one("invoke_agent solo").status.status_code is StatusCode.ERROR


def test_every_other_span_type_is_mapped(sdk_processors: None, captured: Captured) -> None:
    sdk_shim.instrument_openai_agents()
    with agents.trace("voice", group_id="g-voice"):
        with speech_group_span(input="hello there"):
            with transcription_span(
                model="gpt-4o-transcribe", input="AAAA", input_format="pcm"
            ) as t:
                t.span_data.output = "hello there"
            with speech_span(
                model="gpt-4o-mini-tts", input="hi back", output="BBBB", output_format="pcm"
            ):
                pass
        with mcp_tools_span(server="files", result=["read_file", "write_file"]):
            pass
        with custom_span("cache_warmup", data={"keys": 3}):
            pass
    by_type = {s.attributes[sc.SPAN_TYPE]: s for s in captured.spans}
    assert set(by_type) == {
        "trace",
        "speech_group",
        "transcription",
        "speech",
        "mcp_tools",
        "custom",
    }
    assert by_type["transcription"].attributes[sc.REQUEST_MODEL] == "gpt-4o-transcribe"
    assert by_type["transcription"].attributes[sc.SPEECH_OUTPUT] == "hello there"
    assert by_type["speech"].attributes[sc.SPEECH_INPUT] == "hi back"
    assert by_type["mcp_tools"].attributes[sc.MCP_TOOLS] == ("read_file", "write_file")
    assert json.loads(by_type["custom"].attributes[sc.SPAN_DATA]) == {"keys": 3}
    assert all(s.attributes[sc.CONVERSATION_ID] == "g-voice" for s in captured.spans)


def test_adapter_redacts_when_sensitive_data_is_off(
    sdk_processors: None, captured_redacted: Captured
) -> None:
    sdk_shim.instrument_openai_agents()
    _run_conversation("generation")
    assert captured_redacted.spans
    for span in captured_redacted.spans:
        assert not set(span.attributes) & sc.SENSITIVE_KEYS, span.name
    assert (
        sum(s.attributes[sc.USAGE_INPUT_TOKENS] for s in captured_redacted.by_type("generation"))
        == 6000
    )
