"""How an exception reads in a log line or a reply: one line, never a traceback.

Database and driver errors often carry several lines (DuckDB adds hints and a caret under the
query); a person reading a log or a client reading a refusal needs the first.
"""

from __future__ import annotations


def one_line(exc: BaseException, *, with_type: bool = False) -> str:
    """The first line of the exception's text (its type's name when it has none)."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else ""
    if with_type:
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text or type(exc).__name__
