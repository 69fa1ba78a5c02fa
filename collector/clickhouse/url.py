"""``TRACEHOUSE_STORE`` URLs: which ClickHouse to use and how to reach it.

``clickhouse://user:pass@host:8123/db`` (``clickhouses://`` for TLS) is a server over HTTP;
``chdb:///path/to/dir?database=name`` is the embedded engine (one data directory per process).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_DATABASE = "tracehouse"
_DATABASE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


@dataclass(frozen=True, slots=True)
class StoreURL:
    """A parsed ClickHouse store address; ``password`` is never shown by ``display``."""

    engine: str  # "server" or "chdb"
    database: str
    host: str = ""
    port: int = 0
    username: str = "default"
    password: str = ""
    secure: bool = False
    path: str = ""  # chdb data directory

    @property
    def display(self) -> str:
        """Where the store is, for banners and logs (no password)."""
        if self.engine == "chdb":
            return f"chdb {self.path} database {self.database}"
        scheme = "clickhouses" if self.secure else "clickhouse"
        return f"{scheme}://{self.username}@{self.host}:{self.port}/{self.database}"


def parse_store_url(url: str) -> StoreURL:
    """Parse a TRACEHOUSE_STORE value; ValueError (one line, starting with "must") otherwise."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    query = parse_qs(parts.query)
    if scheme == "chdb":
        path = unquote(parts.netloc + parts.path)
        if not path:
            raise ValueError("must name a data directory: chdb:///path/to/dir[?database=name]")
        database = _database(query.get("database", [DEFAULT_DATABASE])[0])
        return StoreURL("chdb", database, path=path)
    if scheme in {"clickhouse", "clickhouses"}:
        if not parts.hostname:
            raise ValueError("must name a host: clickhouse://user:pass@host:8123/db")
        try:
            port = parts.port or (8443 if scheme == "clickhouses" else 8123)
        except ValueError:
            raise ValueError("must have a numeric port: clickhouse://user:pass@host:8123/db") from None
        database = _database(parts.path.strip("/") or DEFAULT_DATABASE)
        return StoreURL(
            "server",
            database,
            host=parts.hostname,
            port=port,
            username=unquote(parts.username or "default"),
            password=unquote(parts.password or ""),
            secure=scheme == "clickhouses",
        )
    raise ValueError(
        "must be empty (DuckDB), clickhouse://user:pass@host:8123/db, clickhouses://... or chdb:///path/to/dir"
    )


def _database(name: str) -> str:
    if not _DATABASE.match(name):
        raise ValueError(f"must name a database of letters, digits and '_', got {name!r}")
    return name
