"""Runner: the agent loop (model → tools in parallel / handoff → … → final output), traced.

Every run is one ``trace`` (unless already inside one, e.g. a multi-turn conversation) with an
agent span per agent, a generation span per model call, a function span per tool call, handoff
and guardrail spans, all through the shim's public tracing API.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sdk_shim
from sdk_shim.attributes import Usage
from sdk_shim.runtime.agent import (
    Agent,
    Guardrail,
    GuardrailTripwireTriggered,
    InputGuardrailTripwireTriggered,
    OutputGuardrailTripwireTriggered,
)
from sdk_shim.runtime.models import ModelRequest, ModelResponse, ScriptedModel, ToolCall
from sdk_shim.runtime.sessions import Session
from sdk_shim.runtime.tools import FunctionTool, ToolError

DEFAULT_MAX_TURNS = 10


class MaxTurnsExceeded(Exception):
    """The agents did not reach a final answer within ``max_turns`` model calls."""


@dataclass
class RunResult:
    final_output: str
    last_agent: Agent
    new_items: list[dict[str, Any]]
    usage: Usage
    turns: int
    trace_id: str | None = None
    agents: list[str] = field(default_factory=list)


async def _run_guardrails(guardrails: list[Guardrail], agent: Agent, data: Any, stage: str) -> None:
    async def check(guardrail: Guardrail) -> None:
        with sdk_shim.guardrail_span(guardrail.name) as span:
            output = await guardrail.check(agent, data)
            span.set_triggered(output.tripwire_triggered)
        if output.tripwire_triggered:
            error = (
                InputGuardrailTripwireTriggered
                if stage == "input"
                else OutputGuardrailTripwireTriggered
            )
            raise error(guardrail.name, output, stage)

    await asyncio.gather(*(check(g) for g in guardrails))


async def _call_tool(tool: FunctionTool | None, call: ToolCall) -> dict[str, Any]:
    with sdk_shim.function_span(
        call.name, arguments=_parse(call.arguments), call_id=call.id
    ) as span:
        try:
            if tool is None:
                raise ToolError(f"Error: no tool named {call.name!r}")
            output = await tool.invoke(call.arguments)
        except ToolError as exc:
            output = str(exc)
            cause = exc.__cause__
            span.set_error(output, type(cause).__qualname__ if cause else "ToolError")
        span.set_result(output)
    return {"role": "tool", "tool_call_id": call.id, "content": output}


def _parse(arguments: str) -> Any:
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments


class Runner:
    """Runs an agent to a final answer: ``await Runner.run(...)`` or ``Runner.run_sync(...)``."""

    @classmethod
    async def run(
        cls,
        agent: Agent,
        input: str | list[dict[str, Any]],
        *,
        session: Session | None = None,
        max_turns: int = DEFAULT_MAX_TURNS,
        workflow_name: str | None = None,
        group_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> RunResult:
        if sdk_shim.current_trace() is not None:
            return await cls._run(agent, input, session, max_turns)
        group = group_id or (session.session_id if session is not None else None)
        with sdk_shim.trace(workflow_name or "Agent workflow", group_id=group, metadata=metadata):
            return await cls._run(agent, input, session, max_turns)

    @classmethod
    def run_sync(cls, agent: Agent, input: str | list[dict[str, Any]], **kwargs: Any) -> RunResult:
        return asyncio.run(cls.run(agent, input, **kwargs))

    @classmethod
    async def _run(
        cls,
        agent: Agent,
        input: str | list[dict[str, Any]],
        session: Session | None,
        max_turns: int,
    ) -> RunResult:
        root = sdk_shim.current_trace()
        history = await session.get_items() if session is not None else []
        new_items = [{"role": "user", "content": input}] if isinstance(input, str) else list(input)
        usage, turns, visited = Usage(), 0, []
        current, first = agent, True
        while True:
            visited.append(current.name)
            with sdk_shim.agent_span(current.name, handoffs=current.handoffs, tools=current.tools):
                if first and current.input_guardrails:
                    await _run_guardrails(current.input_guardrails, current, input, "input")
                first = False
                handoff_to: Agent | None = None
                while handoff_to is None:
                    turns += 1
                    if turns > max_turns:
                        raise MaxTurnsExceeded(
                            f"max_turns={max_turns} exceeded without a final answer"
                        )
                    response = await cls._call_model(current, history + new_items, turns)
                    usage = usage + response.usage
                    new_items.append(response.message())
                    if not response.tool_calls:
                        text = response.text or ""
                        if current.output_guardrails:
                            await _run_guardrails(
                                current.output_guardrails, current, text, "output"
                            )
                        if session is not None:
                            await session.add_items(new_items)
                        return RunResult(
                            text,
                            current,
                            new_items,
                            usage,
                            turns,
                            root.trace_id if root else None,
                            visited,
                        )
                    handoff_to = await cls._act(current, response.tool_calls, new_items)
            current = handoff_to

    @staticmethod
    async def _call_model(agent: Agent, messages: list[dict[str, Any]], turn: int) -> ModelResponse:
        model = agent.model or ScriptedModel()
        request = ModelRequest(agent.name, agent.instructions, messages, agent.tool_specs(), turn)
        with sdk_shim.generation_span(
            model.model,
            model.provider,
            input=request.messages,
            system_instructions=agent.instructions or None,
        ) as span:
            response = await model.respond(request)
            span.set_usage(response.usage, response.model)
            span.set_output([response.message()])
        return response

    @staticmethod
    async def _act(
        agent: Agent, calls: list[ToolCall], items: list[dict[str, Any]]
    ) -> Agent | None:
        """Run the tool calls in parallel; perform the first handoff. Returns the next agent."""
        targets = {a.handoff_tool_name: a for a in agent.handoffs}
        tools = {t.name: t for t in agent.tools}
        function_calls = [c for c in calls if c.name not in targets]
        results = await asyncio.gather(*(_call_tool(tools.get(c.name), c) for c in function_calls))
        items.extend(results)
        next_agent: Agent | None = None
        for call in (c for c in calls if c.name in targets):
            if next_agent is not None:
                items.append(
                    {
                        "role": "tool",
                        "tool_call_id": call.id,
                        "content": "Ignored: one handoff per turn.",
                    }
                )
                continue
            next_agent = targets[call.name]
            with sdk_shim.handoff_span(agent.name, next_agent.name):
                items.append(
                    {
                        "role": "tool",
                        "tool_call_id": call.id,
                        "content": json.dumps({"assistant": next_agent.name}),
                    }
                )
        return next_agent


__all__ = ["GuardrailTripwireTriggered", "MaxTurnsExceeded", "RunResult", "Runner"]
