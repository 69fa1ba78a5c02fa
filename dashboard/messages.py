"""Turn a span's stored payloads into chat messages a person can read.

Instrumentations store LLM input/output in different shapes (CONVENTIONS.md §3): OpenAI-style
``[{"role", "content"}]`` lists, the GenAI "parts" schema ``[{"role", "parts": [...]}]``,
OpenInference's flattened ``llm.input_messages.<i>.message.*`` attributes, ``{"messages": ...}``
objects, or plain text. Everything here is pure and never raises on odd input.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Message:
    role: str
    text: str


def parse_json(value: Any) -> Any:
    """The JSON value of a string, or the string itself when it is not JSON (NaN → None)."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, str):
        stripped = value.strip()
        if stripped[:1] in ("{", "[", '"'):
            try:
                return json.loads(stripped)
            except ValueError:
                return value
    return value


def pretty(value: Any) -> str:
    """Indented JSON for structured values, the text itself otherwise."""
    value = parse_json(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return "" if value is None else str(value)


def _part_text(part: Any) -> str:
    if isinstance(part, str):
        return part
    if not isinstance(part, dict):
        return pretty(part)
    kind = part.get("type")
    if kind in ("tool_call", "function_call") or "arguments" in part:
        name = part.get("name") or (part.get("function") or {}).get("name") or "tool"
        args = part.get("arguments") or (part.get("function") or {}).get("arguments") or {}
        return f"→ call `{name}`\n```json\n{pretty(args)}\n```"
    if kind in ("tool_call_response", "function_call_output"):
        return f"← tool result\n```\n{pretty(part.get('response', part.get('output', '')))}\n```"
    for key in ("content", "text", "output_text", "input_text"):
        if isinstance(part.get(key), str):
            return part[key]
    return pretty(part)


def _content_text(message: dict[str, Any]) -> str:
    pieces: list[str] = []
    content = message.get("content", message.get("parts"))
    if isinstance(content, list):
        pieces += [_part_text(p) for p in content]
    elif content is not None:
        pieces.append(_part_text(content))
    for call in message.get("tool_calls") or []:
        pieces.append(_part_text(call.get("function", call) | {"type": "tool_call"} if isinstance(call, dict) else call))
    return "\n\n".join(p for p in pieces if p)


def _from_list(items: list[Any]) -> list[Message] | None:
    if not items or not all(isinstance(m, dict) and ("role" in m or "type" in m) for m in items):
        return None
    out = []
    for m in items:
        role = str(m.get("role") or m.get("type") or "message")
        out.append(Message(role, _content_text(m) if ("content" in m or "parts" in m or "tool_calls" in m) else pretty(m)))
    return out


_FLAT = re.compile(r"^llm\.(input|output)_messages\.(\d+)\.message\.(.+)$")


def _from_flat(attributes: dict[str, Any], direction: str) -> list[Message]:
    """OpenInference: llm.input_messages.0.message.role / .content / .tool_calls.0.tool_call..."""
    grouped: dict[int, dict[str, Any]] = {}
    for key, value in attributes.items():
        match = _FLAT.match(key)
        if match and match.group(1) == direction:
            grouped.setdefault(int(match.group(2)), {})[match.group(3)] = value
    out = []
    for _, fields in sorted(grouped.items()):
        text = str(fields.get("content", "") or "")
        calls = sorted(k for k in fields if k.endswith("tool_call.function.name"))
        for name_key in calls:
            args = fields.get(name_key.replace(".name", ".arguments"), "")
            text += f"\n\n→ call `{fields[name_key]}`\n```json\n{pretty(args)}\n```"
        out.append(Message(str(fields.get("role", "message")), text.strip()))
    return out


def messages(payload: Any, attributes: dict[str, Any] | None = None, direction: str = "input") -> list[Message]:
    """Chat messages from a stored payload; falls back to flattened attributes, then plain text."""
    value = parse_json(payload)
    if isinstance(value, dict):
        for key in ("messages", "input", "output", "choices"):
            if isinstance(value.get(key), list):
                value = value[key]
                break
        else:
            if "role" in value:
                value = [value]
    if isinstance(value, list):
        choices = [c.get("message") for c in value if isinstance(c, dict) and isinstance(c.get("message"), dict)]
        parsed = _from_list(choices or value)
        if parsed:
            return parsed
    if (value is None or value == "") and attributes:
        flat = _from_flat(attributes, direction)
        if flat:
            return flat
    if value is None or value == "":
        return []
    return [Message("assistant" if direction == "output" else "user", pretty(value))]
