"""Redaction at ingest: drop or mask attributes by key, replace sensitive text by pattern.

Rules are data (``collector/redaction.toml`` ships the usual ones: e-mail, card numbers with a
Luhn check, phone numbers, API keys). They apply to a DecodedSpan before it is normalized, so
every column derived from an attribute (input, output, user id ...) is derived from the redacted
value, and nothing unredacted is ever written. Without a rules file nothing is done (no cost).
All patterns run as one alternation: one pass over each string.
"""

from __future__ import annotations

import fnmatch
import functools
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from collector.decode import DecodedSpan

BUILTIN = "builtin"


class RedactionFileError(ValueError):
    """The rules file cannot be read or is invalid; one line."""


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


@dataclass(frozen=True, slots=True)
class _Pattern:
    name: str
    replace: str
    luhn: bool


class Redactor:
    """Applies one set of rules to spans, in place."""

    def __init__(self, drop_keys: list[str], mask_keys: list[str], mask: str, patterns: list[dict[str, Any]]) -> None:
        self._drop_exact = {k for k in drop_keys if not _is_glob(k)}
        self._drop_globs = [re.compile(fnmatch.translate(k)) for k in drop_keys if _is_glob(k)]
        self._mask_exact = {k for k in mask_keys if not _is_glob(k)}
        self._mask_globs = [re.compile(fnmatch.translate(k)) for k in mask_keys if _is_glob(k)]
        self._mask = mask
        self._patterns: list[_Pattern] = []
        parts = []
        for index, rule in enumerate(patterns):
            self._patterns.append(_Pattern(rule["name"], rule["replace"], bool(rule.get("luhn", False))))
            parts.append(f"(?P<p{index}>{rule['regex']})")
        self._regex = re.compile("|".join(parts)) if parts else None

    def text(self, value: str) -> str:
        """The string with every pattern match replaced."""
        if self._regex is None or not value:
            return value
        return self._regex.sub(self._replacement, value)

    def _replacement(self, match: re.Match[str]) -> str:
        pattern = self._patterns[int(match.lastgroup[1:])]  # type: ignore[index]
        if pattern.luhn and not _luhn(re.sub(r"\D", "", match.group())):
            return match.group()
        return pattern.replace

    def _key_action(self, key: str) -> str | None:
        if key in self._drop_exact or any(g.match(key) for g in self._drop_globs):
            return "drop"
        if key in self._mask_exact or any(g.match(key) for g in self._mask_globs):
            return "mask"
        return None

    def attributes(self, attributes: dict[str, Any]) -> dict[str, Any]:
        """A redacted copy: dropped keys gone, masked keys masked, patterns replaced in values."""
        out: dict[str, Any] = {}
        for key, value in attributes.items():
            action = self._key_action(key)
            if action == "drop":
                continue
            out[key] = self._mask if action == "mask" else self._value(value)
        return out

    def _value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self._value(v) for v in value]
        if isinstance(value, dict):
            return self.attributes(value)
        return value

    def span(self, span: DecodedSpan) -> None:
        """Redact one decoded span in place (before normalize)."""
        span.name = self.text(span.name)
        if span.status_message:
            span.status_message = self.text(span.status_message)
        span.attributes = self.attributes(span.attributes)
        span.resource = self.attributes(span.resource)
        for event in span.events:
            event["name"] = self.text(event.get("name", ""))
            event["attributes"] = self.attributes(event.get("attributes") or {})
        for link in span.links:
            link["attributes"] = self.attributes(link.get("attributes") or {})


def _is_glob(key: str) -> bool:
    return any(c in key for c in "*?[")


@functools.lru_cache(maxsize=4)
def cached_redactor(path: str) -> Redactor | None:
    """load_redactor, once per process (ingest workers call it per request)."""
    return load_redactor(path)


def load_redactor(path: str | None) -> Redactor | None:
    """The Redactor of a rules file (``builtin`` = the shipped one); None when no file is set."""
    if not path:
        return None
    try:
        if path == BUILTIN:
            text = resources.files("collector").joinpath("redaction.toml").read_text(encoding="utf-8")
        else:
            text = Path(path).read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RedactionFileError(f"redaction rules {path}: {exc}") from None
    try:
        drop = [str(k) for k in data.get("drop_keys", [])]
        mask_keys = [str(k) for k in data.get("mask_keys", [])]
        patterns = list(data.get("patterns", []))
        for index, rule in enumerate(patterns):
            missing = {"name", "regex", "replace"} - set(rule)
            if missing:
                raise ValueError(f"pattern {index + 1} lacks {', '.join(sorted(missing))}")
            re.compile(rule["regex"])
        return Redactor(drop, mask_keys, str(data.get("mask", "[REDACTED]")), patterns)
    except (ValueError, TypeError, re.error) as exc:
        raise RedactionFileError(f"redaction rules {path}: {exc}") from None
