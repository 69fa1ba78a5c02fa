"""Model interface of the offline runtime, and ScriptedModel: deterministic, offline answers.

ScriptedModel answers from a script (a list of replies or a policy function) and reports usage
the way providers do: tokens estimated from the prompt, prompt-cache hits on a repeated prefix
(OpenAI: cached tokens inside the input count, in 128-token steps above 1,024; Anthropic: cache
reads and writes reported apart from input), reasoning tokens for o-series models.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sdk_shim.attributes import Usage, provider_for
from sdk_shim.runtime.agent import handoff_tool_name


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as models return it


@dataclass(frozen=True)
class ModelRequest:
    agent_name: str
    instructions: str
    messages: list[dict[str, Any]]  # OpenAI chat format, without the system message
    tools: list[dict[str, Any]]
    turn: int = 1

    def chat_messages(self) -> list[dict[str, Any]]:
        system = [{"role": "system", "content": self.instructions}] if self.instructions else []
        return system + self.messages

    def tool_results(self) -> list[dict[str, Any]]:
        """Tool messages since the last user message (what the model just learned)."""
        out: list[dict[str, Any]] = []
        for message in reversed(self.messages):
            if message.get("role") == "user":
                break
            if message.get("role") == "tool":
                out.append(message)
        return out[::-1]

    def last_user_text(self) -> str:
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return str(message.get("content") or "")
        return ""


@dataclass(frozen=True)
class ModelResponse:
    text: str | None
    tool_calls: list[ToolCall]
    usage: Usage
    model: str

    def message(self) -> dict[str, Any]:
        """The assistant message to append to the conversation."""
        message: dict[str, Any] = {"role": "assistant", "content": self.text}
        if self.tool_calls:
            message["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for c in self.tool_calls
            ]
        return message


class Model(Protocol):
    model: str
    provider: str | None

    async def respond(self, request: ModelRequest) -> ModelResponse: ...


class ModelError(Exception):
    """The model call failed (provider error, timeout)."""


@dataclass(frozen=True)
class Reply:
    """One scripted answer: text, tool calls, a handoff, or an error; optional extra latency."""

    text: str | None = None
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    handoff: str | None = None  # agent name; becomes a transfer_to_<agent> call
    error: str | None = None
    latency_s: float = 0.0
    output_tokens: int | None = None


Policy = Callable[[ModelRequest], Reply]


def estimate_tokens(value: Any) -> int:
    """About four characters per token, like English text with common tokenizers."""
    text = (
        value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), default=str)
    )
    return max(1, (len(text) + 3) // 4)


class ScriptedModel:
    """A deterministic model: same script and seed → same answers and usage."""

    def __init__(
        self,
        model: str = "gpt-4.1-mini",
        script: list[Reply] | Policy | None = None,
        provider: str | None = None,
        seed: int = 0,
        latency_s: float = 0.0,
        system_tokens: int = 0,
    ) -> None:
        self.model = model
        self.provider = provider or provider_for(model)
        self._script = script
        self._index = 0
        self._rng = random.Random(seed)
        self._latency = latency_s
        self._padding = (
            system_tokens  # stands in for long system prompts / tool docs (cacheable prefix)
        )
        self._cache: dict[str, int] = {}  # prefix key → prompt tokens seen before

    def _next_reply(self, request: ModelRequest) -> Reply:
        if self._script is None:
            return Reply(text=f"Done: {request.last_user_text()[:80]}")
        if callable(self._script):
            return self._script(request)
        if self._index >= len(self._script):
            raise ModelError(
                f"ScriptedModel {self.model}: script exhausted after {self._index} replies"
            )
        reply = self._script[self._index]
        self._index += 1
        return reply

    def _usage(self, request: ModelRequest, output_tokens: int) -> Usage:
        prompt = (
            self._padding
            + estimate_tokens(request.chat_messages())
            + estimate_tokens(request.tools)
        )
        key = f"{request.agent_name}|{request.instructions}"
        previous = min(self._cache.get(key, 0), prompt)
        self._cache[key] = prompt
        reasoning = 0
        if self.model.startswith(("o1", "o3", "o4")):
            reasoning = output_tokens * self._rng.randint(2, 6)
        if self.provider == "anthropic":
            cached = previous if previous >= 1024 else 0
            written = prompt - cached if prompt >= 1024 else 0
            return Usage(prompt - cached - written, output_tokens, cached, 0, written)
        cached = (previous // 128) * 128 if previous >= 1024 else 0
        return Usage(prompt, output_tokens + reasoning, cached, reasoning)

    async def respond(self, request: ModelRequest) -> ModelResponse:
        reply = self._next_reply(request)
        delay = self._latency * self._rng.uniform(0.6, 1.4) + reply.latency_s
        if delay > 0:
            await asyncio.sleep(delay)
        if reply.error:
            raise ModelError(reply.error)
        calls = [
            ToolCall(f"call_{self._rng.getrandbits(48):012x}", name, json.dumps(args))
            for name, args in reply.tool_calls
        ]
        if reply.handoff:
            calls.append(
                ToolCall(
                    f"call_{self._rng.getrandbits(48):012x}", handoff_tool_name(reply.handoff), "{}"
                )
            )
        out = reply.output_tokens or (
            estimate_tokens(reply.text) if reply.text else 12 * max(1, len(calls))
        )
        return ModelResponse(reply.text, calls, self._usage(request, out), self.model)
