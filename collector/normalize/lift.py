"""Payload text stored once: attribute values lifted into ``input``/``output`` become references.

A prompt or completion is most of a span's bytes. Kept whole in ``attributes`` as well as in
``input``/``output`` it would be stored (and JSON-encoded, inserted, compressed) twice. So a
string attribute value of at least ``MIN_LIFTED_CHARS`` characters that became a payload column
is replaced in ``attributes`` by ``{"$ref": "input"}`` or ``{"$ref": "output"}``; the key stays.

- ``{"$ref": "input"}`` on a key such as ``input.value`` or ``gen_ai.tool.call.arguments``: the
  value is the whole ``input`` column.
- On OpenInference's flattened ``llm.input_messages.<i>.message.<field>`` keys: the value is
  ``<field>`` of the message at ``<i>``'s position (indices in ascending order) in the JSON
  message list the ``input`` column holds. Only when that list was stored whole (not truncated).

:func:`restore_attributes` puts the values back; nothing is dropped (tests check every fixture).
"""

from __future__ import annotations

import json
from typing import Any

MIN_LIFTED_CHARS = 64  # shorter values cost less than their reference
REF_KEY = "$ref"
_REFS = {"input": {REF_KEY: "input"}, "output": {REF_KEY: "output"}}
FLAT_PREFIXES = {"input": "llm.input_messages.", "output": "llm.output_messages."}
_MESSAGE = ".message."


def flat_key(key: str, prefix: str) -> tuple[int, str] | None:
    """(message index, field path) of a flattened message key under ``prefix``, else None."""
    index, separator, path = key[len(prefix) :].partition(_MESSAGE)
    if not separator or not index.isdecimal():
        return None
    return int(index), path


def lift(
    attributes: dict[str, Any],
    payloads: tuple[tuple[str, Any, list[str] | None, bool], ...],
) -> dict[str, Any]:
    """``attributes`` with lifted values replaced by references (a copy; the original if none).

    ``payloads``: (column, raw value the column was made from, None or, if it was built from
    flattened messages, the keys holding a message field directly, column truncated) for input
    and output.
    """
    lifted: dict[str, Any] | None = None
    for column, raw, message_keys, truncated in payloads:
        if raw is None:
            continue
        if message_keys is not None:
            if truncated:
                continue  # the message list is cut: its JSON would not give the values back
            for key in message_keys:
                value = attributes[key]
                if type(value) is str and len(value) >= MIN_LIFTED_CHARS:
                    lifted = lifted if lifted is not None else dict(attributes)
                    lifted[key] = _REFS[column]
        elif type(raw) is str and len(raw) >= MIN_LIFTED_CHARS:
            for key, value in attributes.items():
                if value is raw:  # the very object the convention module took as the payload
                    lifted = lifted if lifted is not None else dict(attributes)
                    lifted[key] = _REFS[column]
                    break
    return lifted if lifted is not None else attributes


def restore_attributes(attributes: dict[str, Any], input_text: str | None, output_text: str | None) -> dict[str, Any]:
    """The attributes as received: references replaced by the values they point to."""
    columns = {"input": input_text, "output": output_text}
    restored = dict(attributes)
    messages: dict[str, list[Any]] = {}
    for key, value in attributes.items():
        if not (isinstance(value, dict) and len(value) == 1 and value.get(REF_KEY) in columns):
            continue
        column = value[REF_KEY]
        prefix = FLAT_PREFIXES[column]
        parsed = flat_key(key, prefix) if key.startswith(prefix) else None
        if parsed is None:
            restored[key] = columns[column]
            continue
        if column not in messages:
            messages[column] = json.loads(columns[column] or "[]")
        indices = sorted({p[0] for k in attributes if k.startswith(prefix) and (p := flat_key(k, prefix))})
        restored[key] = messages[column][indices.index(parsed[0])][parsed[1]]
    return restored
