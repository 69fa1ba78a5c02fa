"""Conversation memory for multi-turn runs: SQLite (embedded default) and Redis (with TTL).

The interface is the OpenAI Agents SDK's: ``get_items``, ``add_items``, ``pop_item``,
``clear_session``, all async. Items are chat messages (JSON-serialisable dicts).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any, Protocol

Item = dict[str, Any]


class Session(Protocol):
    session_id: str

    async def get_items(self, limit: int | None = None) -> list[Item]: ...
    async def add_items(self, items: list[Item]) -> None: ...
    async def pop_item(self) -> Item | None: ...
    async def clear_session(self) -> None: ...


_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS session_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    item TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS session_items_by_session ON session_items (session_id, id);
"""


class SQLiteSession:
    """Items in a SQLite file (``:memory:`` by default), one row per item, in order."""

    def __init__(self, session_id: str, db_path: str | Path = ":memory:") -> None:
        self.session_id = session_id
        self._conn = sqlite3.connect(str(db_path), check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock, self._conn:
            self._conn.executescript(_SQLITE_SCHEMA)

    def _get(self, limit: int | None) -> list[Item]:
        with self._lock:
            if limit is None:
                rows = self._conn.execute(
                    "SELECT item FROM session_items WHERE session_id = ? ORDER BY id",
                    (self.session_id,),
                ).fetchall()
            else:
                rows = self._conn.execute(
                    "SELECT item FROM (SELECT id, item FROM session_items WHERE session_id = ? "
                    "ORDER BY id DESC LIMIT ?) ORDER BY id",
                    (self.session_id, limit),
                ).fetchall()
        return [json.loads(row[0]) for row in rows]

    def _add(self, items: list[Item]) -> None:
        with self._lock, self._conn:
            self._conn.executemany(
                "INSERT INTO session_items (session_id, item) VALUES (?, ?)",
                [(self.session_id, json.dumps(item, default=str)) for item in items],
            )

    def _pop(self) -> Item | None:
        with self._lock, self._conn:
            row = self._conn.execute(
                "SELECT id, item FROM session_items WHERE session_id = ? ORDER BY id DESC LIMIT 1",
                (self.session_id,),
            ).fetchone()
            if row is None:
                return None
            self._conn.execute("DELETE FROM session_items WHERE id = ?", (row[0],))
        return json.loads(row[1])

    def _clear(self) -> None:
        with self._lock, self._conn:
            self._conn.execute("DELETE FROM session_items WHERE session_id = ?", (self.session_id,))

    async def get_items(self, limit: int | None = None) -> list[Item]:
        return self._get(limit)

    async def add_items(self, items: list[Item]) -> None:
        if items:
            self._add(items)

    async def pop_item(self) -> Item | None:
        return self._pop()

    async def clear_session(self) -> None:
        self._clear()

    def close(self) -> None:
        self._conn.close()


class RedisSession:
    """Items in a Redis list ``<prefix>:<session_id>``; each write renews the TTL."""

    def __init__(
        self,
        session_id: str,
        url: str = "redis://127.0.0.1:6379/0",
        ttl_s: int | None = None,
        key_prefix: str = "tracehouse:session",
        client: Any = None,
    ) -> None:
        try:
            import redis.asyncio as redis_asyncio
        except ImportError as exc:  # pragma: no cover - only without the extra
            raise ImportError(
                "RedisSession needs the redis package: pip install 'tracehouse[redis]'"
            ) from exc
        self.session_id = session_id
        self.key = f"{key_prefix}:{session_id}"
        self.ttl_s = ttl_s
        self._client = client or redis_asyncio.Redis.from_url(url)

    async def get_items(self, limit: int | None = None) -> list[Item]:
        start = 0 if limit is None else -limit
        return [json.loads(raw) for raw in await self._client.lrange(self.key, start, -1)]

    async def add_items(self, items: list[Item]) -> None:
        if not items:
            return
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.rpush(self.key, *(json.dumps(item, default=str) for item in items))
            if self.ttl_s:
                pipe.expire(self.key, self.ttl_s)
            await pipe.execute()

    async def pop_item(self) -> Item | None:
        raw = await self._client.rpop(self.key)
        return None if raw is None else json.loads(raw)

    async def clear_session(self) -> None:
        await self._client.delete(self.key)

    async def ttl(self) -> int:
        """Seconds until the session expires (-1: no TTL, -2: no such session)."""
        return int(await self._client.ttl(self.key))

    async def close(self) -> None:
        await self._client.aclose()


__all__ = ["RedisSession", "SQLiteSession", "Session"]
