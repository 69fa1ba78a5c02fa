"""A small offline agent runtime in the OpenAI Agents SDK's shape, traced through sdk_shim.

For demos, tests and people without the SDK: agents, tools, handoffs, guardrails, sessions,
and models that are either scripted (offline, deterministic) or any OpenAI-compatible endpoint.
"""

from __future__ import annotations

from sdk_shim.runtime.agent import (
    Agent,
    Guardrail,
    GuardrailFunctionOutput,
    GuardrailTripwireTriggered,
    InputGuardrailTripwireTriggered,
    OutputGuardrailTripwireTriggered,
    input_guardrail,
    output_guardrail,
)
from sdk_shim.runtime.models import (
    Model,
    ModelError,
    ModelRequest,
    ModelResponse,
    Reply,
    ScriptedModel,
    ToolCall,
)
from sdk_shim.runtime.openai_model import OpenAIChatModel
from sdk_shim.runtime.runner import MaxTurnsExceeded, Runner, RunResult
from sdk_shim.runtime.sessions import RedisSession, Session, SQLiteSession
from sdk_shim.runtime.tools import FunctionTool, ToolError, function_tool

__all__ = [
    "Agent",
    "FunctionTool",
    "Guardrail",
    "GuardrailFunctionOutput",
    "GuardrailTripwireTriggered",
    "InputGuardrailTripwireTriggered",
    "MaxTurnsExceeded",
    "Model",
    "ModelError",
    "ModelRequest",
    "ModelResponse",
    "OpenAIChatModel",
    "OutputGuardrailTripwireTriggered",
    "RedisSession",
    "Reply",
    "RunResult",
    "Runner",
    "SQLiteSession",
    "ScriptedModel",
    "Session",
    "ToolCall",
    "ToolError",
    "function_tool",
    "input_guardrail",
    "output_guardrail",
]
