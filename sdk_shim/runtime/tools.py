"""@function_tool: a Python function the model can call, with a JSON schema from its hints.

The schema comes from type hints; descriptions from the docstring (first paragraph for the
tool, a Google-style ``Args:`` section for parameters). A failing tool does not fail the run:
the model sees an error result, as with the OpenAI Agents SDK.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import json
import re
import types
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Union, get_args, get_origin

_JSON_TYPES: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}


class ToolError(Exception):
    """A tool failure the model is told about (the run continues)."""


def _schema_for(hint: Any) -> dict[str, Any]:
    origin, args = get_origin(hint), get_args(hint)
    if hint in _JSON_TYPES:
        return {"type": _JSON_TYPES[hint]}
    if origin is Literal:
        return {"enum": list(args)}
    if origin in (Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        return (
            _schema_for(options[0])
            if len(options) == 1
            else {"anyOf": [_schema_for(a) for a in options]}
        )
    if origin in (list, tuple, set, frozenset) or hint in (list, tuple, set):
        return {"type": "array", "items": _schema_for(args[0]) if args else {}}
    if origin is dict or hint is dict:
        return {"type": "object"}
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return {"enum": [m.value for m in hint]}
    return {}


def _docstring_parts(doc: str | None) -> tuple[str, dict[str, str]]:
    text = inspect.cleandoc(doc or "")
    summary = text.split("\n\n", 1)[0].replace("\n", " ").strip()
    params: dict[str, str] = {}
    match = re.search(
        r"^(?:Args|Arguments|Parameters):\s*\n(.*?)(?:\n\S|\Z)", text, re.DOTALL | re.MULTILINE
    )
    if match:
        for line in match.group(1).splitlines():
            found = re.match(r"\s+(\w+)(?:\s*\([^)]*\))?:\s*(.+)", line)
            if found:
                params[found.group(1)] = found.group(2).strip()
    return summary, params


@dataclass
class FunctionTool:
    """A callable tool: name, description, JSON schema and the function behind it."""

    name: str
    description: str
    params_json_schema: dict[str, Any]
    fn: Callable[..., Any] = field(repr=False)
    failure_error_function: Callable[[Exception], str] | None = field(default=None, repr=False)

    def spec(self) -> dict[str, Any]:
        """The OpenAI chat-completions ``tools`` entry for this tool."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.params_json_schema,
            },
        }

    async def invoke(self, arguments: str | dict[str, Any]) -> str:
        """Run the tool; raise ToolError with the text the model should see on any failure."""
        try:
            args = json.loads(arguments or "{}") if isinstance(arguments, str) else dict(arguments)
            if not isinstance(args, dict):
                raise TypeError("arguments must be a JSON object")
        except (ValueError, TypeError) as exc:
            raise ToolError(f"invalid arguments for {self.name}: {exc}") from exc
        try:
            if inspect.iscoroutinefunction(self.fn):
                result = await self.fn(**args)
            else:  # keep the event loop free for parallel tool calls
                result = await asyncio.to_thread(self.fn, **args)
        except Exception as exc:
            message = (
                self.failure_error_function(exc)
                if self.failure_error_function
                else (f"Error running tool {self.name}: {type(exc).__name__}: {exc}")
            )
            raise ToolError(message) from exc
        return result if isinstance(result, str) else json.dumps(result, default=str)


def function_tool(
    fn: Callable[..., Any] | Callable[..., Awaitable[Any]] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    failure_error_function: Callable[[Exception], str] | None = None,
) -> Any:
    """Turn a function (sync or async) into a FunctionTool; usable bare or with arguments."""

    def build(func: Callable[..., Any]) -> FunctionTool:
        summary, param_docs = _docstring_parts(func.__doc__)
        hints = typing.get_type_hints(func)
        properties: dict[str, Any] = {}
        required: list[str] = []
        for pname, param in inspect.signature(func).parameters.items():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            schema = _schema_for(hints.get(pname, str))
            if pname in param_docs:
                schema["description"] = param_docs[pname]
            if param.default is inspect.Parameter.empty:
                required.append(pname)
            else:
                schema["default"] = param.default
            properties[pname] = schema
        params = {
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": False,
        }
        return FunctionTool(
            name or func.__name__, description or summary, params, func, failure_error_function
        )

    return build(fn) if fn is not None else build
