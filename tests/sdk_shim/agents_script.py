"""A scripted ``agents.models.interface.Model``: drives the real openai-agents SDK offline.

Like the SDK's own models it opens a ``response`` span (Responses style) or a ``generation``
span (Chat Completions style) around each call, with realistic usage.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from agents.items import ModelResponse
from agents.models.interface import Model
from agents.tracing import SpanError, generation_span, response_span
from agents.usage import Usage
from openai.types.responses import (
    Response,
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)
from openai.types.responses.response_usage import (
    InputTokensDetails,
    OutputTokensDetails,
    ResponseUsage,
)


@dataclass
class Step:
    """One model answer: text, tool calls [(name, args)], or an error to raise."""

    text: str | None = None
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    error: str | None = None
    usage: tuple[int, int, int, int] = (1500, 120, 1024, 64)  # input, output, cached, reasoning


class ScriptedAgentsModel(Model):
    def __init__(self, steps: list[Step], model: str = "gpt-4.1", style: str = "response") -> None:
        self.steps = list(steps)
        self.model = model
        self.style = style
        self._ids = itertools.count(1)

    def _output(self, step: Step) -> list[Any]:
        if step.calls:
            return [
                ResponseFunctionToolCall(
                    type="function_call",
                    id=f"fc_{n}",
                    call_id=f"call_{n}",
                    name=name,
                    arguments=json.dumps(args),
                    status="completed",
                )
                for n, (name, args) in ((next(self._ids), c) for c in step.calls)
            ]
        return [
            ResponseOutputMessage(
                type="message",
                id=f"msg_{next(self._ids)}",
                role="assistant",
                status="completed",
                content=[
                    ResponseOutputText(type="output_text", text=step.text or "", annotations=[])
                ],
            )
        ]

    @staticmethod
    def _maybe_fail(step: Step, span: Any) -> None:
        # What the SDK's OpenAI models do when the call fails.
        if step.error:
            span.set_error(SpanError(message="Error getting response", data={"error": step.error}))
            raise RuntimeError(step.error)

    async def get_response(
        self,
        system_instructions,
        input,
        model_settings,
        tools,
        output_schema,
        handoffs,
        tracing,
        *,
        previous_response_id=None,
        conversation_id=None,
        prompt=None,
        **_: Any,
    ):
        step = self.steps.pop(0)
        inp, out, cached, reasoning = step.usage
        usage = Usage(
            requests=1,
            input_tokens=inp,
            output_tokens=out,
            total_tokens=inp + out,
            input_tokens_details=InputTokensDetails(cached_tokens=cached, cache_write_tokens=0),
            output_tokens_details=OutputTokensDetails(reasoning_tokens=reasoning),
        )
        if self.style == "generation":
            with generation_span(
                model=self.model,
                input=[{"role": "user", "content": str(input)}],
                model_config={"base_url": "https://api.openai.com/v1"},
            ) as span:
                self._maybe_fail(step, span)
                output = self._output(step)
                span.span_data.output = [o.model_dump() for o in output]
                span.span_data.usage = {
                    "input_tokens": inp,
                    "output_tokens": out,
                    "input_tokens_details": {"cached_tokens": cached},
                    "output_tokens_details": {"reasoning_tokens": reasoning},
                }
        else:
            with response_span() as span:
                self._maybe_fail(step, span)
                output = self._output(step)
                span.span_data.input = input
                span.span_data.response = Response.model_construct(
                    id=f"resp_{next(self._ids)}",
                    model=f"{self.model}-2025-04-14",
                    output=output,
                    usage=ResponseUsage(
                        input_tokens=inp,
                        output_tokens=out,
                        total_tokens=inp + out,
                        input_tokens_details=InputTokensDetails(
                            cached_tokens=cached, cache_write_tokens=0
                        ),
                        output_tokens_details=OutputTokensDetails(reasoning_tokens=reasoning),
                    ),
                )
        return ModelResponse(output=output, usage=usage, response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise NotImplementedError("the scripted model does not stream")
