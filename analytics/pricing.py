"""The price table: model prices as data (DESIGN.md decision 8).

The shipped table is ``analytics/pricing.csv``; a user file (``TRACEHOUSE_PRICES_FILE``, same
columns) adds rows or overrides shipped ones without code. Rows are validated at load and every
bad row is reported on its own line. :meth:`PriceTable.price_for` finds the price of a model name
as it appears on the wire (``gpt-4.1-2025-04-14``, ``us.anthropic.claude-sonnet-4-5-...``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
from dataclasses import dataclass
from datetime import date, datetime
from importlib import resources
from pathlib import Path

from analytics.userfiles import read_user_file

ACCOUNTING = ("cached_in_input", "cache_separate")
COLUMNS = (
    "provider", "model", "pattern", "input", "cached_input", "cache_write", "output", "reasoning",
    "effective_from", "accounting",
)  # fmt: skip
_REQUIRED = ("provider", "model", "pattern", "input", "output", "effective_from")
# What may follow a pattern's match: nothing, or a version / date / tag suffix. So `gpt-4.1`
# prices `gpt-4.1-2025-04-14` but not `gpt-4.1-mini`, and `gpt-4` does not price `gpt-4.5`.
_SUFFIX = re.compile(r"(?:[-@:_](?:\d|latest|preview|exp|v\d|beta).*)?")
# Routing prefixes that are not part of the model name: `openai/`, `models/`, Bedrock's
# `us.anthropic.`, Vertex's `publishers/anthropic/models/`.
_PREFIX = re.compile(
    r"^(?:.*/)?(?:(?:us|eu|apac|global)\.)?(?:anthropic|mistral|meta|amazon|cohere)\."
)


class PriceFileError(ValueError):
    """A price file is unreadable or has invalid rows; one line per problem."""


@dataclass(frozen=True, slots=True)
class Price:
    """USD per 1M tokens of each class for one model pattern from one date."""

    provider: str
    model: str
    pattern: str
    input: float
    cached_input: float | None
    cache_write: float | None
    output: float
    reasoning: float | None
    effective_from: date
    accounting: str | None  # None: decided by provider (see cost.accounting_for)
    source: str  # file:line, for reports

    @property
    def regex(self) -> re.Pattern[str]:
        return _compiled(self.pattern)


def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(f"(?:{pattern}){_SUFFIX.pattern}")


def normalize_model(model: str) -> str:
    """The model name prices are matched against: lowercase, routing prefixes removed."""
    name = model.strip().lower()
    name = _PREFIX.sub("", name)
    return name.rsplit("/", 1)[-1]


def _number(raw: str, column: str, required: bool) -> float | None:
    raw = raw.strip()
    if raw == "":
        if required:
            raise ValueError(f"{column} is required")
        return None
    value = float(raw)
    if value < 0 or math.isnan(value):
        raise ValueError(f"{column}={raw!r} must be a number >= 0")
    return value


def _parse_row(row: dict[str, str], source: str) -> Price:
    for col in _REQUIRED:
        if not (row.get(col) or "").strip():
            raise ValueError(f"{col} is required")
    pattern = row["pattern"].strip().lower()
    try:
        _compiled(pattern)
    except re.error as exc:
        raise ValueError(f"pattern {pattern!r} is not a valid regex ({exc})") from None
    accounting = (row.get("accounting") or "").strip() or None
    if accounting is not None and accounting not in ACCOUNTING:
        raise ValueError(
            f"accounting={accounting!r} must be one of {', '.join(ACCOUNTING)} or empty"
        )
    try:
        effective = date.fromisoformat(row["effective_from"].strip())
    except ValueError:
        raise ValueError(
            f"effective_from={row['effective_from']!r} must be a date YYYY-MM-DD"
        ) from None
    numbers = {}
    for col in ("input", "cached_input", "cache_write", "output", "reasoning"):
        try:
            numbers[col] = _number(row.get(col) or "", col, col in _REQUIRED)
        except ValueError as exc:
            msg = (
                str(exc)
                if "must" in str(exc) or "required" in str(exc)
                else f"{col} must be a number"
            )
            raise ValueError(msg) from None
    return Price(
        provider=row["provider"].strip().lower(),
        model=row["model"].strip(),
        pattern=pattern,
        effective_from=effective,
        accounting=accounting,
        source=source,
        **numbers,  # type: ignore[arg-type]
    )


def parse_prices(text: str, name: str) -> list[Price]:
    """Parse CSV text (``#`` lines are comments); raise PriceFileError listing every bad row."""
    lines = [
        (i, line)
        for i, line in enumerate(text.splitlines(), 1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not lines:
        raise PriceFileError(f"{name}: no header row (expected columns {', '.join(COLUMNS)})")
    reader = csv.DictReader(io.StringIO("\n".join(line for _, line in lines)))
    header = [h.strip() for h in reader.fieldnames or []]
    unknown = [h for h in header if h not in COLUMNS]
    missing = [c for c in _REQUIRED if c not in header]
    if unknown or missing:
        parts = ([f"unknown column(s) {', '.join(unknown)}"] if unknown else []) + (
            [f"missing column(s) {', '.join(missing)}"] if missing else []
        )
        raise PriceFileError(
            f"{name}:{lines[0][0]}: {'; '.join(parts)} (columns: {', '.join(COLUMNS)})"
        )
    reader.fieldnames = header
    prices, errors = [], []
    for (lineno, _), row in zip(lines[1:], reader):
        source = f"{name}:{lineno}"
        if None in row:
            errors.append(f"{source}: too many fields")
            continue
        try:
            prices.append(_parse_row({k: v or "" for k, v in row.items()}, source))
        except ValueError as exc:
            errors.append(f"{source}: {exc}")
    if errors:
        raise PriceFileError("\n".join(errors))
    return prices


class PriceTable:
    """All known prices; later rows (the user's file) win over earlier ones with the same pattern."""

    def __init__(self, prices: list[Price]) -> None:
        self.prices = prices
        self._cache: dict[tuple[str, date], Price | None] = {}
        digest = hashlib.sha256()
        for p in prices:
            digest.update(repr((p.provider, p.pattern, p.input, p.cached_input, p.cache_write, p.output,
                                p.reasoning, p.effective_from, p.accounting)).encode())  # fmt: skip
        self.fingerprint = digest.hexdigest()[:16]

    def price_for(self, model: str | None, at: datetime | date) -> Price | None:
        """The price in force for ``model`` at ``at``; None when no row matches (unpriced)."""
        if not model:
            return None
        day = at.date() if isinstance(at, datetime) else at
        key = (model, day)
        if key not in self._cache:
            self._cache[key] = self._lookup(normalize_model(model), day)
        return self._cache[key]

    def _lookup(self, name: str, day: date) -> Price | None:
        best: tuple[int, date, int] | None = None
        found = None
        for order, p in enumerate(self.prices):
            if p.effective_from > day or not p.regex.fullmatch(name):
                continue
            # Most specific pattern first, then the newest price, then the latest row (user file).
            rank = (len(p.pattern), p.effective_from, order)
            if best is None or rank > best:
                best, found = rank, p
        return found


def load_prices(user_file: str | Path | None = None) -> PriceTable:
    """The shipped table plus the user's file (if any); raises PriceFileError on any bad row."""
    text = resources.files("analytics").joinpath("pricing.csv").read_text(encoding="utf-8")
    prices = parse_prices(text, "analytics/pricing.csv")
    if user_file:
        prices += parse_prices(*read_user_file(user_file, "price file", PriceFileError))
    return PriceTable(prices)
