"""The offline runtime: tools, handoffs, guardrails, parallel calls, max_turns, usage — all traced."""

from __future__ import annotations

import asyncio
import json
from typing import Literal

import pytest
from opentelemetry.trace import StatusCode

from sdk_shim import semconv as sc
from sdk_shim.runtime import (
    Agent,
    GuardrailFunctionOutput,
    InputGuardrailTripwireTriggered,
    MaxTurnsExceeded,
    ModelError,
    ModelRequest,
    OutputGuardrailTripwireTriggered,
    Reply,
    Runner,
    ScriptedModel,
    function_tool,
    input_guardrail,
    output_guardrail,
)
from tests.sdk_shim.conftest import Captured


@function_tool
def lookup_order(order_id: int, include_items: bool = False) -> dict:
    """Look up an order by number.

    Args:
        order_id: The order number.
        include_items: Whether to list the items.
    """
    return {"order_id": order_id, "status": "shipped"}


@function_tool(name="charge")
async def charge_card(
    amount: float, currency: Literal["USD", "EUR"] = "USD", tags: list[str] | None = None
) -> str:
    """Charge the customer's card."""
    raise ValueError("card declined")


def test_function_tool_schema_from_hints_and_docstring() -> None:
    assert lookup_order.name == "lookup_order"
    assert lookup_order.description == "Look up an order by number."
    schema = lookup_order.params_json_schema
    assert schema["required"] == ["order_id"]
    assert schema["properties"]["order_id"] == {
        "type": "integer",
        "description": "The order number.",
    }
    assert schema["properties"]["include_items"]["type"] == "boolean"
    props = charge_card.params_json_schema["properties"]
    assert charge_card.name == "charge"
    assert props["amount"] == {"type": "number"}
    assert props["currency"] == {"enum": ["USD", "EUR"], "default": "USD"}
    assert props["tags"]["type"] == "array" and props["tags"]["items"] == {"type": "string"}


def _support_agents(model: ScriptedModel) -> Agent:
    orders = Agent("orders", "You handle orders.", model, tools=[lookup_order, charge_card])
    return Agent("triage", "Route the customer.", model, handoffs=[orders])


def test_handoff_tools_and_tool_error_seen_by_model(captured: Captured) -> None:
    seen: list[str] = []

    def policy(request: ModelRequest) -> Reply:
        if request.agent_name == "triage":
            return Reply(handoff="orders")
        results = request.tool_results()
        if not results or all(
            "transfer" not in r["content"] and "assistant" in r["content"] for r in results
        ):
            return Reply(
                tool_calls=[("lookup_order", {"order_id": 7}), ("charge", {"amount": 9.5})]
            )
        seen.extend(r["content"] for r in results)
        return Reply(text="Order 7 shipped; the charge failed.")

    result = Runner.run_sync(
        _support_agents(ScriptedModel("gpt-4.1", policy)), "where is 7?", workflow_name="support"
    )
    assert result.final_output == "Order 7 shipped; the charge failed."
    assert result.last_agent.name == "orders" and result.agents == ["triage", "orders"]
    assert any("card declined" in s for s in seen) and any("shipped" in s for s in seen)

    root = captured.one("support")
    triage, orders = captured.one("invoke_agent triage"), captured.one("invoke_agent orders")
    assert triage.parent.span_id == orders.parent.span_id == root.context.span_id
    hand = captured.one("handoff triage -> orders")
    assert hand.parent.span_id == triage.context.span_id
    charge = captured.one("execute_tool charge")
    assert (
        charge.status.status_code is StatusCode.ERROR
        and charge.attributes[sc.ERROR_TYPE] == "ValueError"
    )
    assert "card declined" in charge.attributes[sc.TOOL_CALL_RESULT]
    assert captured.one("execute_tool lookup_order").parent.span_id == orders.context.span_id
    llms = captured.by_type("generation")
    assert (
        len(llms) == 3
        and sum(s.attributes[sc.USAGE_INPUT_TOKENS] for s in llms) == result.usage.input_tokens
    )
    assert orders.status.status_code is StatusCode.UNSET  # a tool error does not fail the agent


def test_parallel_tool_calls_run_concurrently(captured: Captured) -> None:
    started = asyncio.Event()

    @function_tool
    async def waits() -> str:
        """Finishes only once the other tool ran."""
        await asyncio.wait_for(started.wait(), timeout=5)
        return "waited"

    @function_tool
    def signals() -> str:  # sync: runs in a worker thread
        """Lets the other tool finish."""
        return "signalled"

    @function_tool
    async def signal_async() -> str:
        """Sets the event."""
        started.set()
        return "set"

    script = [
        Reply(tool_calls=[("waits", {}), ("signals", {}), ("signal_async", {})]),
        Reply(text="done"),
    ]
    agent = Agent(
        "fan", model=ScriptedModel("gpt-4o", script), tools=[waits, signals, signal_async]
    )
    assert Runner.run_sync(agent, "go").final_output == "done"
    spans = [captured.one(f"execute_tool {n}") for n in ("waits", "signals", "signal_async")]
    assert len({s.parent.span_id for s in spans}) == 1
    assert all(s.status.status_code is StatusCode.UNSET for s in spans)


def test_input_and_output_guardrail_tripwires(captured: Captured) -> None:
    @input_guardrail
    def no_card_numbers(agent: Agent, data: str) -> GuardrailFunctionOutput:
        return GuardrailFunctionOutput({"found": "4111" in data}, tripwire_triggered="4111" in data)

    @output_guardrail
    async def no_refund_promises(agent: Agent, text: str) -> GuardrailFunctionOutput:
        return GuardrailFunctionOutput(tripwire_triggered="refund" in text)

    agent = Agent(
        "clerk",
        model=ScriptedModel(script=[Reply(text="we will refund you")]),
        input_guardrails=[no_card_numbers],
        output_guardrails=[no_refund_promises],
    )
    with pytest.raises(InputGuardrailTripwireTriggered, match="no_card_numbers"):
        Runner.run_sync(agent, "my card is 4111", workflow_name="in")
    with pytest.raises(OutputGuardrailTripwireTriggered, match="no_refund_promises"):
        Runner.run_sync(agent, "hello", workflow_name="out")
    guards = [s for s in captured.spans if s.attributes.get(sc.SPAN_TYPE) == "guardrail"]
    by_name = {
        (s.attributes[sc.GUARDRAIL_NAME], s.attributes[sc.GUARDRAIL_TRIGGERED]) for s in guards
    }
    assert by_name == {
        ("no_card_numbers", True),
        ("no_card_numbers", False),
        ("no_refund_promises", True),
    }
    agents = [s for s in captured.spans if s.name == "invoke_agent clerk"]
    assert all(s.status.status_code is StatusCode.ERROR for s in agents)
    assert {s.attributes[sc.ERROR_TYPE] for s in agents} == {
        "InputGuardrailTripwireTriggered",
        "OutputGuardrailTripwireTriggered",
    }


def test_max_turns_and_model_errors_are_clear(captured: Captured) -> None:
    looping = Agent(
        "looper",
        model=ScriptedModel(script=lambda r: Reply(tool_calls=[("lookup_order", {"order_id": 1})])),
        tools=[lookup_order],
    )
    with pytest.raises(MaxTurnsExceeded, match="max_turns=3"):
        Runner.run_sync(looping, "loop", max_turns=3)
    assert len(captured.by_type("generation")) == 3
    broken = Agent("broken", model=ScriptedModel(script=[Reply(error="rate limited (429)")]))
    with pytest.raises(ModelError, match="429"):
        Runner.run_sync(broken, "hi")
    failed = [s for s in captured.by_type("generation") if s.status.status_code is StatusCode.ERROR]
    assert len(failed) == 1 and failed[0].attributes[sc.ERROR_TYPE] == "ModelError"


def test_scripted_usage_is_realistic_and_deterministic(captured: Captured) -> None:
    def run(model: str) -> list[dict]:
        script = [Reply(tool_calls=[("lookup_order", {"order_id": 3})]), Reply(text="shipped")]
        agent = Agent(
            "a",
            "x" * 400,
            ScriptedModel(model, script, seed=4, system_tokens=1500),
            tools=[lookup_order],
        )
        result = Runner.run_sync(agent, "status of 3?")
        return [m for m in result.new_items], result.usage

    _, openai = run("gpt-4.1")
    llms = captured.by_type("generation")
    first, second = (dict(s.attributes) for s in llms)
    assert first[sc.USAGE_CACHE_READ_INPUT_TOKENS] == 0
    assert (
        second[sc.USAGE_CACHE_READ_INPUT_TOKENS] >= 1024
        and second[sc.USAGE_CACHE_READ_INPUT_TOKENS] % 128 == 0
    )
    assert second[sc.USAGE_CACHE_READ_INPUT_TOKENS] <= second[sc.USAGE_INPUT_TOKENS]
    assert run("gpt-4.1")[1] == openai  # same script and seed → same usage

    _, reasoning = run("o3-mini")
    assert reasoning.reasoning_tokens > 0
    _, anthropic = run("claude-sonnet-4")
    assert anthropic.cache_write_tokens > 0 and anthropic.cached_tokens > 0
    claude = [
        s
        for s in captured.by_type("generation")
        if s.attributes[sc.REQUEST_MODEL] == "claude-sonnet-4"
    ]
    assert {s.attributes[sc.PROVIDER_NAME] for s in claude} == {"anthropic"}
    assert claude[0].attributes[sc.USAGE_CACHE_CREATION_INPUT_TOKENS] > 0


def test_tool_arguments_recorded_as_json(captured: Captured) -> None:
    agent = Agent(
        "a", model=ScriptedModel(script=[Reply(tool_calls=[("nope", {"x": 1})]), Reply(text="ok")])
    )
    Runner.run_sync(agent, "hi")
    unknown = captured.one("execute_tool nope")
    assert unknown.status.status_code is StatusCode.ERROR
    assert json.loads(unknown.attributes[sc.TOOL_CALL_ARGUMENTS]) == {"x": 1}
