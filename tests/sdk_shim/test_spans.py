"""The shim's tracing API: attributes, parents, errors, async/thread nesting, redaction."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from opentelemetry.trace import SpanKind, StatusCode

import sdk_shim
from sdk_shim import semconv as sc
from tests.sdk_shim.conftest import Captured


def _workflow(usage: sdk_shim.Usage) -> None:
    with sdk_shim.trace("support", group_id="conv-1", metadata={"customer": "acme", "tier": 2}):
        with sdk_shim.agent_span("triage", handoffs=["orders"], tools=["lookup"]):
            with sdk_shim.guardrail_span("pii") as guard:
                guard.set_triggered(False)
            with sdk_shim.generation_span(
                "gpt-4.1", "openai", input=[{"role": "user", "content": "where is #42"}]
            ) as gen:
                gen.set_usage(usage, response_model="gpt-4.1-2025-04-14")
                gen.set_output([{"role": "assistant", "content": "checking"}])
            with sdk_shim.function_span("lookup", arguments={"order": 42}) as tool:
                tool.set_result({"status": "shipped"})
            with sdk_shim.handoff_span(to_agent=None) as hand:
                hand.set_to_agent("orders")
        with (
            sdk_shim.agent_span("orders"),
            sdk_shim.custom_span("policy_check", data={"rule": "refund<100"}),
        ):
            pass


def test_attributes_follow_the_sdk_processor_shape(captured: Captured) -> None:
    _workflow(sdk_shim.Usage(1200, 80, 1024, 32))
    root = captured.one("support")
    assert root.parent is None
    assert root.attributes[sc.OPERATION_NAME] == "invoke_workflow"
    assert root.attributes[sc.WORKFLOW_NAME] == "support"
    assert root.attributes[sc.SDK_TRACE_ID] == f"trace_{root.context.trace_id:032x}"
    assert root.attributes["openai_agents.metadata.customer"] == "acme"
    assert root.attributes["openai_agents.metadata.tier"] == 2

    triage = captured.one("invoke_agent triage")
    assert triage.parent.span_id == root.context.span_id
    assert triage.attributes[sc.AGENT_NAME] == "triage"
    assert triage.attributes[sc.AGENT_HANDOFFS] == ("orders",)

    llm = captured.one("chat gpt-4.1")
    assert llm.kind is SpanKind.CLIENT
    assert llm.parent.span_id == triage.context.span_id
    attrs = llm.attributes
    assert (attrs[sc.OPERATION_NAME], attrs[sc.REQUEST_MODEL], attrs[sc.RESPONSE_MODEL]) == (
        "chat",
        "gpt-4.1",
        "gpt-4.1-2025-04-14",
    )
    assert attrs[sc.PROVIDER_NAME] == "openai"
    assert (attrs[sc.USAGE_INPUT_TOKENS], attrs[sc.USAGE_OUTPUT_TOKENS]) == (1200, 80)
    assert (attrs[sc.USAGE_CACHE_READ_INPUT_TOKENS], attrs[sc.USAGE_REASONING_TOKENS]) == (1024, 32)
    assert json.loads(attrs[sc.INPUT_MESSAGES])[0]["content"] == "where is #42"
    assert attrs[sc.AGENT_NAME] == "triage"  # children carry their agent

    tool = captured.one("execute_tool lookup")
    assert tool.attributes[sc.TOOL_NAME] == "lookup"
    assert json.loads(tool.attributes[sc.TOOL_CALL_ARGUMENTS]) == {"order": 42}
    assert tool.attributes[sc.TOOL_CALL_RESULT] == "{'status': 'shipped'}"

    hand = captured.one("handoff triage -> orders")
    assert (hand.attributes[sc.HANDOFF_FROM], hand.attributes[sc.HANDOFF_TO]) == (
        "triage",
        "orders",
    )
    guard = captured.one("guardrail pii")
    assert guard.attributes[sc.GUARDRAIL_TRIGGERED] is False
    custom = captured.one("policy_check")
    assert captured.one("invoke_agent orders").context.span_id == custom.parent.span_id
    assert json.loads(custom.attributes[sc.SPAN_DATA]) == {"rule": "refund<100"}

    # the group id on every span, one trace id for all
    assert {s.attributes.get(sc.CONVERSATION_ID) for s in captured.spans} == {"conv-1"}
    assert {s.context.trace_id for s in captured.spans} == {root.context.trace_id}


def test_exception_marks_span_error_with_type_and_event(captured: Captured) -> None:
    with pytest.raises(KeyError), sdk_shim.trace("wf"), sdk_shim.function_span("lookup"):
        raise KeyError("order 9 missing")
    tool = captured.one("execute_tool lookup")
    assert tool.status.status_code is StatusCode.ERROR
    assert "order 9 missing" in tool.status.description
    assert tool.attributes[sc.ERROR_TYPE] == "KeyError"
    assert [e.name for e in tool.events] == ["exception"]
    assert captured.one("wf").status.status_code is StatusCode.ERROR


def test_decorators_sync_and_async(captured: Captured) -> None:
    @sdk_shim.function_span
    def add(a: int, b: int) -> int:
        return a + b

    @sdk_shim.agent_span
    async def planner() -> int:
        return add(2, 3) + await fetch(q="x")

    @sdk_shim.function_span("fetch")
    async def fetch(q: str) -> int:
        await asyncio.sleep(0)
        return 10

    @sdk_shim.trace("decorated", group_id="g")
    def main() -> int:
        return asyncio.run(planner())

    assert main() == 15
    agent = captured.one("invoke_agent planner")
    for name, args, result in [
        ("execute_tool add", {"a": 2, "b": 3}, "5"),
        ("execute_tool fetch", {"q": "x"}, "10"),
    ]:
        span = captured.one(name)
        assert span.parent.span_id == agent.context.span_id
        assert json.loads(span.attributes[sc.TOOL_CALL_ARGUMENTS]) == args
        assert span.attributes[sc.TOOL_CALL_RESULT] == result
        assert span.attributes[sc.AGENT_NAME] == "planner"
    assert agent.parent.span_id == captured.one("decorated").context.span_id


def test_parallel_asyncio_tasks_and_threads_nest_under_their_parent(captured: Captured) -> None:
    async def call(i: int) -> None:
        with sdk_shim.function_span(f"tool{i}"):
            await asyncio.sleep(0.001 * (3 - i))

    async def run() -> None:
        with sdk_shim.agent_span("fanout"):
            await asyncio.gather(*(call(i) for i in range(3)))

    def in_thread() -> None:
        with sdk_shim.function_span("threaded"):
            pass

    with sdk_shim.trace("concurrency", group_id="c"):
        asyncio.run(run())
        with sdk_shim.agent_span("worker") as worker:
            thread = threading.Thread(target=sdk_shim.propagate(in_thread))
            thread.start()
            thread.join()

            def with_parent() -> None:
                with sdk_shim.function_span("explicit", parent=worker):
                    pass

            explicit = threading.Thread(target=with_parent)
            explicit.start()
            explicit.join()
    fanout = captured.one("invoke_agent fanout")
    for i in range(3):
        assert captured.one(f"execute_tool tool{i}").parent.span_id == fanout.context.span_id
    threaded = captured.one("execute_tool threaded")
    assert threaded.parent.span_id == captured.one("invoke_agent worker").context.span_id
    assert threaded.attributes[sc.CONVERSATION_ID] == "c"
    assert threaded.attributes[sc.AGENT_NAME] == "worker"
    explicit_span = captured.one("execute_tool explicit")
    assert explicit_span.parent.span_id == threaded.parent.span_id
    assert explicit_span.attributes[sc.CONVERSATION_ID] == "c"


def test_separate_traces_do_not_share_group_or_parent(captured: Captured) -> None:
    with sdk_shim.trace("a", group_id="g1"):
        pass
    with sdk_shim.trace("b"), sdk_shim.agent_span("x"):
        pass
    a, b = captured.one("a"), captured.one("b")
    assert a.context.trace_id != b.context.trace_id
    assert sc.CONVERSATION_ID not in captured.one("invoke_agent x").attributes


def test_include_sensitive_data_false_drops_content_everywhere(captured_redacted: Captured) -> None:
    _workflow(sdk_shim.Usage(10, 5, 0, 0))
    for span in captured_redacted.spans:
        assert not set(span.attributes) & sc.SENSITIVE_KEYS, span.name
    llm = captured_redacted.one("chat gpt-4.1")
    assert llm.attributes[sc.USAGE_INPUT_TOKENS] == 10  # the rest stays
    assert captured_redacted.one("execute_tool lookup").attributes[sc.TOOL_NAME] == "lookup"


def test_without_configure_the_api_is_a_harmless_no_op() -> None:
    assert sdk_shim.current() is None
    with sdk_shim.trace("unconfigured", group_id="g") as root:
        with sdk_shim.generation_span("gpt-4.1") as gen:
            gen.set_usage(sdk_shim.Usage(1, 2))
        assert sdk_shim.current_trace() is root
    assert sdk_shim.current_trace() is None
