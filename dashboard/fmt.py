"""Readable numbers and the one colour table every page and chart uses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd

# One colour per span kind, everywhere (waterfall, legends, badges).
KIND_COLORS: dict[str, str] = {
    "workflow": "#475569",
    "agent": "#8B5CF6",
    "llm": "#0EA5E9",
    "tool": "#F59E0B",
    "handoff": "#EC4899",
    "guardrail": "#14B8A6",
    "chain": "#94A3B8",
    "retriever": "#22C55E",
    "embedding": "#84CC16",
    "span": "#CBD5E1",
}
ERROR_COLOR = "#EF4444"
OK_COLOR = "#10B981"
ACCENT = "#6366F1"
MUTED = "#94A3B8"
# What every figure, tile and table cell shows for a value that is not known (never "None", never 0).
MISSING = "–"
# Severities and statuses are words, coloured by their table cell (ui.table) or shown as a badge:
# never a glyph. An emoji needs an emoji font, which servers and many Linux desktops lack (it is
# drawn as an empty box), and a colour alone says nothing to a colour-blind reader.
SEVERITIES = ("critical", "error", "warning", "info")  # most severe first (analytics/rules.py)
# Text colours dark enough to read on white (contrast >= 4.5:1); critical is a filled cell.
LEVEL_CSS: dict[str, str] = {
    "critical": "color: #FFFFFF; background-color: #B91C1C; font-weight: 600",
    "error": "color: #DC2626; font-weight: 600",
    "warning": "color: #B45309; font-weight: 600",
    "info": "color: #1D4ED8",
    "ok": "color: #047857",
}
LEVEL_BADGES = {"critical": "red", "error": "red", "warning": "orange", "info": "blue", "ok": "green"}


def kind_color(kind: object) -> str:
    return KIND_COLORS.get(str(kind), KIND_COLORS["span"])


def _missing(value: Any) -> bool:
    try:
        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):  # lists and arrays are not "missing"
        return False


def duration(ms: Any) -> str:
    """1.2 ms · 340 ms · 2.41 s · 3 min 5 s."""
    if _missing(ms):
        return MISSING
    ms = float(ms)
    if ms < 1:
        return f"{ms * 1000:.0f} µs"
    if ms < 10:
        return f"{ms:.1f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.2f} s"
    minutes, seconds = divmod(ms / 1000, 60)
    if minutes < 60:
        return f"{minutes:.0f} min {seconds:.0f} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours:.0f} h {minutes:.0f} min"


def money(usd: Any) -> str:
    """$0.0042 · $1.23 · $1,234; '–' when unpriced (never $0 for unknown)."""
    if _missing(usd):
        return MISSING
    usd = float(usd)
    if usd == 0:
        return "$0"
    if abs(usd) < 0.01:
        return f"${usd:.4f}"
    if abs(usd) < 1000:
        return f"${usd:,.2f}"
    return f"${usd:,.0f}"


PENDING = "pending"


def cost(usd: Any, *, pending: bool = False) -> str:
    """A cost as :func:`money`; a missing one that the analytics jobs have yet to compute reads
    'pending' (they price new LLM calls every minute by default), not '–', which means unpriced."""
    return PENDING if pending and _missing(usd) else money(usd)


def count(n: Any) -> str:
    """1,234 · 12.3k · 4.56M."""
    if _missing(n):
        return MISSING
    n = float(n)
    if abs(n) < 10_000:
        return f"{n:,.0f}" if n == int(n) else f"{n:,.1f}"
    if abs(n) < 1_000_000:
        return f"{n / 1000:.1f}k"
    if abs(n) < 1_000_000_000:
        return f"{n / 1_000_000:.2f}M"
    return f"{n / 1_000_000_000:.2f}B"


def percent(fraction: Any, digits: int = 1) -> str:
    if _missing(fraction):
        return MISSING
    return f"{float(fraction) * 100:.{digits}f}%"


def when(value: Any) -> str:
    """A UTC timestamp as 'YYYY-MM-DD HH:MM:SS UTC'."""
    if _missing(value):
        return MISSING
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S") + " UTC"
    return str(value)


def short_id(trace_id: Any, n: int = 8) -> str:
    return str(trace_id)[:n] if trace_id else MISSING


def level_css(value: Any) -> str:
    """The cell style of a severity or status word ('' for any other value)."""
    return LEVEL_CSS.get(str(value), "")


def severity_rank(values: pd.Series) -> pd.Series:
    """Sort key: most severe first; a severity the rules do not know comes last."""
    return values.map({s: i for i, s in enumerate(SEVERITIES)}).fillna(len(SEVERITIES))


def badge(level: str) -> str:
    """A severity or status word as a coloured Markdown badge (the word stays readable)."""
    return f":{LEVEL_BADGES.get(level, 'gray')}-badge[{level}]"
