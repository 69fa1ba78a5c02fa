"""Value coercion, JSON text and the payload limit, shared by every convention module.

Attribute values come from the wire and can be anything OTLP allows (str, int, float, bool,
bytes as base64, nested lists and maps) or, from a careless sender, the wrong type for a
well-known key. Nothing here raises on a value: a bad one becomes ``None`` (for a field) or a
readable string (in JSON text), so that one weird value never breaks the span.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import orjson

from collector.model import SpanKind

# BIGINT bounds: a token count outside them is a sender bug, not data worth a failed insert.
_MAX_COUNT = 2**62


class Kind:
    """``SpanKind``'s values as plain ``str`` class attributes, for the convention modules.

    Reading a member of an Enum class (``SpanKind.TOOL``) costs ~150 ns on Python 3.11 against
    ~15 ns for a plain class attribute (measured), and a span's kind is compared ~10 times.
    """

    WORKFLOW = SpanKind.WORKFLOW.value
    AGENT = SpanKind.AGENT.value
    LLM = SpanKind.LLM.value
    TOOL = SpanKind.TOOL.value
    HANDOFF = SpanKind.HANDOFF.value
    GUARDRAIL = SpanKind.GUARDRAIL.value
    CHAIN = SpanKind.CHAIN.value
    RETRIEVER = SpanKind.RETRIEVER.value
    EMBEDDING = SpanKind.EMBEDDING.value
    SPAN = SpanKind.SPAN.value


_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def first_str(attributes: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    """The first key present with a non-empty value, as text."""
    for key in keys:
        value = attributes.get(key)
        if value is None or value == "":
            continue
        if type(value) is str:
            return value
        return to_text(value)
    return None


def counts(attributes: dict[str, Any], keys: tuple[tuple[str, ...], ...]) -> tuple[int, ...]:
    """A model call's five token counts: per key group, the first key holding a usable count
    (int, integral float or digit string, see :func:`to_count`), else 0."""
    found: list[int] = []
    for group in keys:
        count = None
        for key in group:
            value = attributes.get(key)
            if value is None:
                continue
            if type(value) is int and 0 <= value <= _MAX_COUNT:  # the usual count, without a call
                count = value
                break
            count = to_count(value)
            if count is not None:
                break
        found.append(count or 0)
    return tuple(found)


def to_count(value: Any) -> int | None:
    if type(value) is int:
        count = value
    elif isinstance(value, bool):
        return None
    elif isinstance(value, float):
        if not math.isfinite(value):
            return None
        count = int(value)
    elif isinstance(value, str):
        try:
            count = int(value.strip())
        except ValueError:
            return None
    else:
        return None
    return min(max(count, 0), _MAX_COUNT)


def to_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        return None
    if type(value) is int:
        return value != 0
    return None


def to_text(value: Any) -> str:
    """A field value as text: strings as they are, anything else as JSON."""
    if type(value) is str:
        return value
    return dumps(value)[0]


def dumps(value: Any, limit: int | None = None) -> tuple[str, bool]:
    """JSON text for any attribute value; strings over ``limit`` UTF-8 bytes are cut.

    Returns the text and whether something was truncated. The fast path is one orjson call
    (the stdlib encoder costs ~3 ns per character of message text, too much on the hot path);
    values it cannot take (bytes, lone surrogates, non-string keys, odd types, NaN, which orjson
    would silently turn into null) go through ``_clean`` and the stdlib encoder.
    """
    if limit is None or not _needs_cleaning(value, limit):
        try:
            return orjson.dumps(value).decode("utf-8"), False
        except (TypeError, ValueError):  # orjson.JSONEncodeError is a TypeError
            pass
    flag = [False]
    text = _dumps(_clean(value, limit, flag, 0))
    return text, flag[0]


# Attribute values that need no look before orjson: any string in them is checked by length below.
_PLAIN_TYPES = frozenset({str, int, bool, type(None)})


def dumps_attributes(
    stored: dict[str, Any], received: dict[str, Any], limit: int
) -> tuple[str, bool]:
    """:func:`dumps` of a span's stored attributes (``received`` after :func:`lift`'s references).

    Most spans hold only strings and ints: one C-level pass over the received values' types
    then replaces the Python walk of ``_needs_cleaning``. If the whole JSON text is no longer
    than ``limit // 4``, no string in it can be either, so ``_needs_cleaning`` would have said
    no and the text is what :func:`dumps` gives (the references are two short fixed dicts).
    """
    if _PLAIN_TYPES.issuperset(map(type, received.values())):
        try:
            text = orjson.dumps(stored)
        except TypeError:  # a lone surrogate, an int beyond 64 bits: dumps deals with it
            pass
        else:
            if len(text) <= limit // 4:
                return text.decode("utf-8"), False
    return dumps(stored, limit)


def _needs_cleaning(value: Any, limit: int) -> bool:
    """True if some string in ``value`` might exceed ``limit`` bytes (a UTF-8 char is ≤ 4 bytes),
    or a value needs a closer look (bytes, non-finite float, non-string key, unknown type)."""
    quarter = limit // 4
    values = value.values() if type(value) is dict else (value,)
    for item in values:
        kind = type(item)
        if kind is str:
            if len(item) > quarter:
                return True
        elif kind is int or kind is bool or item is None:
            continue
        elif kind is float:
            if not math.isfinite(item):
                return True
        elif _nested_needs_cleaning(item, quarter, 0):
            return True
    return False


def _nested_needs_cleaning(value: Any, quarter: int, depth: int) -> bool:
    kind = type(value)
    if kind is str:
        return len(value) > quarter
    if kind is int or kind is bool or value is None:
        return False
    if kind is float:
        return not math.isfinite(value)
    if depth >= 32:
        return True
    if kind is list:
        return any(_nested_needs_cleaning(item, quarter, depth + 1) for item in value)
    if kind is dict:
        return any(
            type(k) is not str or _nested_needs_cleaning(v, quarter, depth + 1)
            for k, v in value.items()
        )
    return True  # bytes, tuples, sets, objects: let _clean convert them


def _clean(value: Any, limit: int | None, flag: list[bool], depth: int) -> Any:
    """A JSON-safe copy of ``value`` with long strings truncated (sets ``flag[0]``)."""
    if isinstance(value, str):
        text, cut = truncate(value, limit) if limit is not None else (utf8_safe(value), False)
        flag[0] = flag[0] or cut
        return text
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if depth > 32:
        flag[0] = True
        return "<nested too deep>"
    if isinstance(value, dict):
        return {_clean_key(k): _clean(v, limit, flag, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_clean(v, limit, flag, depth + 1) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _clean(base64.b64encode(bytes(value)).decode("ascii"), limit, flag, depth)
    return _clean(repr(value), limit, flag, depth)


def _clean_key(key: Any) -> str:
    return utf8_safe(key if isinstance(key, str) else repr(key))


def utf8_safe(text: str) -> str:
    """``text`` with lone surrogates (valid in JSON escapes, not in UTF-8) replaced."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


def truncate(text: str, limit: int) -> tuple[str, bool]:
    """Cut ``text`` to at most ``limit`` UTF-8 bytes on a character boundary."""
    if len(text) <= limit and text.isascii():  # one byte a character: no encoding needed
        return text, False
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
        raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text, False
    return raw[:limit].decode("utf-8", "ignore"), True


def payload(value: Any, limit: int) -> tuple[str | None, bool]:
    """An input/output value as text within the payload limit."""
    if value is None:
        return None, False
    if type(value) is not str:
        value = dumps(value, None)[0]
    return truncate(value, limit)
