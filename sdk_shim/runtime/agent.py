"""Agent, handoffs and guardrails of the offline runtime (the OpenAI Agents SDK's shapes)."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sdk_shim.runtime.tools import FunctionTool

HANDOFF_PREFIX = "transfer_to_"


def handoff_tool_name(agent_name: str) -> str:
    """The tool a model calls to hand off to ``agent_name`` (as in the OpenAI Agents SDK)."""
    return HANDOFF_PREFIX + "".join(c if c.isalnum() else "_" for c in agent_name.lower())


@dataclass(frozen=True)
class GuardrailFunctionOutput:
    """What a guardrail function returns; ``tripwire_triggered`` stops the run."""

    output_info: Any = None
    tripwire_triggered: bool = False


GuardrailFn = Callable[..., "GuardrailFunctionOutput | Awaitable[GuardrailFunctionOutput]"]


@dataclass(frozen=True)
class Guardrail:
    """A named check on the run's input (input guardrail) or final output (output guardrail)."""

    name: str
    fn: GuardrailFn

    async def check(self, agent: Agent, data: Any) -> GuardrailFunctionOutput:
        result = self.fn(agent, data)
        return await result if inspect.isawaitable(result) else result


def input_guardrail(fn: GuardrailFn | None = None, *, name: str | None = None) -> Any:
    """Decorate ``fn(agent, input) -> GuardrailFunctionOutput`` (sync or async)."""

    def wrap(f: GuardrailFn) -> Guardrail:
        return Guardrail(name or f.__name__, f)

    return wrap(fn) if fn else wrap


output_guardrail = input_guardrail  # same shape; the Agent field decides when it runs


class GuardrailTripwireTriggered(Exception):
    """A guardrail's tripwire fired; the run stops."""

    def __init__(self, guardrail: str, output: GuardrailFunctionOutput, stage: str) -> None:
        super().__init__(f"{stage} guardrail tripwire triggered: {guardrail}")
        self.guardrail, self.output, self.stage = guardrail, output, stage


class InputGuardrailTripwireTriggered(GuardrailTripwireTriggered):
    pass


class OutputGuardrailTripwireTriggered(GuardrailTripwireTriggered):
    pass


@dataclass
class Agent:
    """An LLM with instructions, tools, agents it may hand off to, and guardrails."""

    name: str
    instructions: str = ""
    model: Any = None
    tools: list[FunctionTool] = field(default_factory=list)
    handoffs: list[Agent] = field(default_factory=list)
    input_guardrails: list[Guardrail] = field(default_factory=list)
    output_guardrails: list[Guardrail] = field(default_factory=list)
    handoff_description: str = ""

    @property
    def handoff_tool_name(self) -> str:
        return handoff_tool_name(self.name)

    def tool_specs(self) -> list[dict[str, Any]]:
        """Tools plus one ``transfer_to_<agent>`` tool per handoff, in OpenAI chat format."""
        specs = [tool.spec() for tool in self.tools]
        for target in self.handoffs:
            specs.append(
                {
                    "type": "function",
                    "function": {
                        "name": target.handoff_tool_name,
                        "description": target.handoff_description
                        or f"Hand off to the {target.name} agent.",
                        "parameters": {
                            "type": "object",
                            "properties": {},
                            "required": [],
                            "additionalProperties": False,
                        },
                    },
                }
            )
        return specs
