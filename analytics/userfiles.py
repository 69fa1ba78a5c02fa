"""Reading the data files users point Tracehouse at (prices, alert rules)."""

from __future__ import annotations

from pathlib import Path


def read_user_file(path: str | Path, what: str, error: type[Exception]) -> tuple[str, str]:
    """(text, name for messages) of a user's file; an unreadable file raises ``error`` as one line."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8"), str(path)
    except OSError as exc:
        raise error(f"{what} {path}: cannot read ({exc.strerror or exc})") from None
