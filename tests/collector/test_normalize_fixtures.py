"""The normalizer against spans captured from the real instrumentations (tests/fixtures/otlp).

The same four agent runs (capture.py: handoff with tools, guardrail tripwire, model error,
multi-turn) seen through each convention must give the same kinds, tools, handoffs, errors and
token totals, except where CONVENTIONS.md says a convention does not record something.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from collector.decode import decode_request, parse_json
from collector.model import SpanRow
from collector.normalize import normalize
from collector.normalize.lift import restore_attributes

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "otlp"
CONVENTIONS = ("openinference", "genai-contrib", "genai-traceloop", "sdk-processor")
SCENARIOS = ("handoff", "guardrail", "model_error", "multi_turn")
CONVENTION_NAMES = {
    "openinference": "openinference",
    "genai-contrib": "genai",
    "genai-traceloop": "traceloop",
    "sdk-processor": "openai_agents",
}
LIMIT = 256 * 1024


def load(convention: str, scenario: str, limit: int = LIMIT) -> list[SpanRow]:
    request = decode_request(parse_json((FIXTURES / convention / f"{scenario}.json").read_bytes()))
    assert not request.rejected
    return sorted(
        (normalize(span, max_payload_bytes=limit) for span in request.spans),
        key=lambda r: r.start_time,
    )


def of_kind(rows: list[SpanRow], kind: str) -> list[SpanRow]:
    return [row for row in rows if row.kind == kind]


# traceloop emits no task/turn (chain) and no guardrail spans.
FULL_TREE = {
    "handoff": {
        "workflow": 1,
        "chain": 4,
        "agent": 2,
        "llm": 3,
        "tool": 2,
        "handoff": 1,
        "guardrail": 1,
    },
    "guardrail": {"workflow": 1, "chain": 2, "agent": 1, "guardrail": 1},
    "model_error": {"workflow": 1, "chain": 2, "agent": 1, "llm": 1, "guardrail": 1},
    "multi_turn": {"workflow": 1, "chain": 5, "agent": 2, "llm": 3, "tool": 1},
}
TRACELOOP_TREE = {
    "handoff": {"workflow": 1, "agent": 2, "llm": 3, "tool": 2, "handoff": 1},
    "guardrail": {"workflow": 1, "agent": 1},
    "model_error": {"workflow": 1, "agent": 1, "llm": 1},
    "multi_turn": {"workflow": 1, "agent": 2, "llm": 3, "tool": 1},
}


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("convention", CONVENTIONS)
def test_kinds_and_convention(convention: str, scenario: str) -> None:
    rows = load(convention, scenario)
    expected = TRACELOOP_TREE[scenario] if convention == "genai-traceloop" else FULL_TREE[scenario]
    assert Counter(row.kind for row in rows) == Counter(expected)
    assert {row.convention for row in rows} == {CONVENTION_NAMES[convention]}
    assert {row.service_name for row in rows} == {"support-bot"}


# (model, input, output, cached) of the LLM spans in start order, handoff scenario.
# Triage calls the Responses API (gpt-4.1, served as a dated snapshot), billing Chat Completions.
HANDOFF_LLM = {
    "openinference": [
        ("gpt-4.1-2025-04-14", 812, 19, 256),
        ("gpt-4.1-mini", 1034, 61, 0),
        ("gpt-4.1-mini", 1190, 27, 0),
    ],
    "genai-contrib": [
        ("gpt-4.1-2025-04-14", 812, 19, 0),
        ("gpt-4.1-mini", 1034, 61, 0),
        ("gpt-4.1-mini", 1190, 27, 0),
    ],
    # traceloop records usage on Responses spans only.
    "genai-traceloop": [
        ("gpt-4.1-2025-04-14", 812, 19, 256),
        ("gpt-4.1-mini", 0, 0, 0),
        ("gpt-4.1-mini", 0, 0, 0),
    ],
    "sdk-processor": [
        ("gpt-4.1", 812, 19, 256),
        ("gpt-4.1-mini", 1034, 61, 512),
        ("gpt-4.1-mini", 1190, 27, 0),
    ],
}


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_llm_model_and_tokens(convention: str) -> None:
    llm = of_kind(load(convention, "handoff"), "llm")
    assert [
        (r.model, r.input_tokens, r.output_tokens, r.cached_tokens) for r in llm
    ] == HANDOFF_LLM[convention]
    assert {r.provider for r in llm} == {"openai"}
    assert {(r.cache_write_tokens, r.reasoning_tokens) for r in llm} == {(0, 0)}
    for row in load(convention, "handoff"):
        if row.kind != "llm":  # tokens belong to model calls only; run totals are never counted
            assert (row.input_tokens, row.output_tokens, row.cached_tokens, row.model) == (
                None,
                None,
                None,
                None,
            )


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_same_run_same_totals_across_conventions(scenario: str) -> None:
    totals = {}
    tools = {}
    for convention in CONVENTIONS:
        rows = load(convention, scenario)
        llm = of_kind(rows, "llm")
        totals[convention] = (
            sum(r.input_tokens or 0 for r in llm),
            sum(r.output_tokens or 0 for r in llm),
        )
        tools[convention] = tuple(sorted(r.tool_name for r in of_kind(rows, "tool")))
    full = {c: t for c, t in totals.items() if c != "genai-traceloop"}
    assert len(set(full.values())) == 1, totals
    assert len(set(tools.values())) == 1, tools
    expected = {
        "handoff": (3036, 107),
        "guardrail": (0, 0),
        "model_error": (0, 0),
        "multi_turn": (2073, 37),
    }
    assert full["openinference"] == expected[scenario]
    # traceloop records usage on Responses spans only: the triage call, never billing's.
    traceloop_expected = {"handoff": (812, 19)}.get(scenario, (0, 0))
    assert totals["genai-traceloop"] == traceloop_expected


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_tools_are_tools_and_handoffs_are_not(convention: str) -> None:
    rows = load(convention, "handoff")
    tools = {r.tool_name: r for r in of_kind(rows, "tool")}
    assert set(tools) == {"lookup_invoice", "issue_refund"}
    assert tools["lookup_invoice"].status == "ok"
    assert json.loads(tools["lookup_invoice"].input) == {"invoice_id": "INV-7"}
    assert "paid" in tools["lookup_invoice"].output
    refund = tools["issue_refund"]
    assert (refund.status, refund.error_type) == ("error", "Error running tool (non-fatal)")
    assert refund.output == "An error occurred while running the tool. Please try again."
    [handoff] = of_kind(rows, "handoff")
    assert handoff.tool_name is None
    target = (
        None if convention == "genai-traceloop" else "billing_agent"
    )  # traceloop reads it too early
    assert (handoff.handoff_from, handoff.handoff_to) == ("triage_agent", target)


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_agents_without_placeholders(convention: str) -> None:
    rows = load(convention, "handoff")
    assert [r.agent_name for r in of_kind(rows, "agent")] == ["triage_agent", "billing_agent"]
    assert "OpenAI Agent" not in {r.agent_name for r in rows}
    named = {r.kind for r in rows if r.agent_name is not None}
    # The writer resolves the rest from the nearest agent ancestor; traceloop names the from-agent on handoffs.
    assert named == ({"agent", "handoff"} if convention == "genai-traceloop" else {"agent"})


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_workflow_name(convention: str) -> None:
    [root] = of_kind(load(convention, "handoff"), "workflow")
    assert root.parent_span_id is None
    assert root.workflow_name == (None if convention == "genai-traceloop" else "Customer support")


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_guardrail(convention: str) -> None:
    rows = load(convention, "guardrail")
    errors = [(r.kind, r.error_type) for r in rows if r.status == "error"]
    if convention == "genai-traceloop":  # neither span is emitted: the tripwire is invisible
        assert errors == [] and of_kind(rows, "guardrail") == []
        return
    [guardrail] = of_kind(rows, "guardrail")
    assert guardrail.status == "ok"  # the ERROR sits on the enclosing turn
    assert errors == [("chain", "Guardrail tripwire triggered")]
    triggered = None if convention == "openinference" else True  # OpenInference does not record it
    assert guardrail.guardrail_triggered is triggered
    [passed] = of_kind(load(convention, "handoff"), "guardrail")
    assert passed.guardrail_triggered is (None if convention == "openinference" else False)


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_model_error(convention: str) -> None:
    rows = load(convention, "model_error")
    errors = sorted((r.kind, r.error_type) for r in rows if r.status == "error")
    assert errors == [("agent", "Error in agent run"), ("llm", "Error getting response")]
    [llm] = of_kind(rows, "llm")
    assert (llm.model, llm.input_tokens, llm.output_tokens) == (
        None,
        0,
        0,
    )  # Responses-style failure
    # sdk-processor keeps the SDK's error data in its own key, the others in the status message.
    detail = (
        json.loads(llm.attributes)["openai_agents.error.data"]
        if convention == "sdk-processor"
        else llm.status_message
    )
    assert "Error code: 400" in detail


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_multi_turn_session(convention: str) -> None:
    rows = load(convention, "multi_turn")
    assert len({r.trace_id for r in rows}) == 1
    # group_id reaches the wire only through sdk-processor (gen_ai.conversation.id) and
    # OpenInference's using_session(); the GenAI packages drop it.
    expected = {"conv-42"} if convention in ("openinference", "sdk-processor") else {None}
    assert {r.session_id for r in rows} == expected


@pytest.mark.parametrize("convention", ["openinference", "genai-contrib", "genai-traceloop"])
def test_llm_messages_become_input_and_output(convention: str) -> None:
    first = of_kind(load(convention, "handoff"), "llm")[0]
    assert "INV-7 was charged twice" in first.input
    assert "transfer_to_billing_agent" in first.output
    assert not first.payload_truncated


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("convention", CONVENTIONS)
def test_every_attribute_kept(convention: str, scenario: str) -> None:
    request = decode_request(parse_json((FIXTURES / convention / f"{scenario}.json").read_bytes()))
    for span in request.spans:
        row = normalize(span, max_payload_bytes=LIMIT)
        assert restore_attributes(json.loads(row.attributes), row.input, row.output) == span.attributes
        assert json.loads(row.resource) == span.resource
        assert json.loads(row.events) == span.events
        assert row.duration_ms >= 0


def test_truncation_on_real_spans() -> None:
    whole = {r.span_id: r for r in load("openinference", "handoff")}
    rows = load("openinference", "handoff", limit=64)
    generation = of_kind(rows, "llm")[1]
    assert generation.payload_truncated
    assert len(generation.input.encode()) <= 64
    assert whole[generation.span_id].input.startswith(generation.input)
    attributes = json.loads(generation.attributes)
    assert (
        attributes.keys() == json.loads(whole[generation.span_id].attributes).keys()
    )  # never dropped
    for value in attributes.values():
        assert not isinstance(value, str) or len(value.encode()) <= 64
    assert not of_kind(rows, "agent")[0].payload_truncated


def test_payload_text_stored_once() -> None:
    """A prompt lifted into input/output is a reference in attributes, and restores exactly."""
    lifted = 0
    for convention in CONVENTIONS:
        for scenario in SCENARIOS:
            request = decode_request(parse_json((FIXTURES / convention / f"{scenario}.json").read_bytes()))
            for span in request.spans:
                row = normalize(span, max_payload_bytes=LIMIT)
                stored = json.loads(row.attributes)
                refs = [key for key, value in stored.items() if value in ({"$ref": "input"}, {"$ref": "output"})]
                lifted += len(refs)
                for key in refs:
                    assert len(span.attributes[key]) >= 64
                    assert span.attributes[key] not in row.attributes  # the text is not stored twice
    assert lifted > 20  # every convention has long payloads


def test_truncated_payload_still_restores() -> None:
    """A cut message list cannot give values back, so its keys keep their (cut) values; every
    attribute still restores to the cut value a row without lifting would have stored."""
    request = decode_request(parse_json((FIXTURES / "openinference" / "handoff.json").read_bytes()))
    checked = 0
    for span in request.spans:
        row = normalize(span, max_payload_bytes=64)
        stored = json.loads(row.attributes)
        restored = restore_attributes(stored, row.input, row.output)
        assert restored.keys() == span.attributes.keys()
        for key, value in restored.items():
            original = span.attributes[key]
            assert value == original or (isinstance(original, str) and original.startswith(value))
        if row.kind == "llm" and row.payload_truncated:
            assert not any(isinstance(stored[k], dict) for k in stored if k.startswith("llm.input_messages."))
            checked += 1
    assert checked
