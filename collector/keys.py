"""API keys: ingest keys (OTLP export) and read keys (query API, SQL, dashboard), one project each.

A key reads ``th_<kind>_<key_id>_<secret>``. The database keeps the key id, the project and a
SHA-256 of the secret (the secret is 32 random bytes, so a fast hash is enough; nothing in the
database lets anyone rebuild a key). Verification looks the id up in memory and compares hashes
with ``hmac.compare_digest``. Keys can also come from the environment (``TRACEHOUSE_INGEST_KEYS``,
``TRACEHOUSE_READ_KEYS``: ``project=key`` pairs), for deployments that hand out secrets that way.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

import duckdb

KINDS = ("ingest", "read")
_KEY = re.compile(r"^th_(ingest|read)_([0-9a-f]{12})_([A-Za-z0-9_-]{20,})$")
_PROJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class KeyError_(ValueError):
    """A key or project that cannot be used; one line."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request is: the project it may write or read, and what it may do."""

    project: str | None  # None: every project (local traffic with no keys configured)
    kind: str  # "ingest", "read" or "local"


@dataclass(frozen=True, slots=True)
class KeyInfo:
    key_id: str
    project: str
    kind: str
    name: str | None
    created_at: datetime | None
    revoked_at: datetime | None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_project(project: str) -> str:
    if not _PROJECT.match(project):
        raise KeyError_(f"project name {project!r}: use letters, digits, '.', '_' or '-' (at most 64)")
    return project


def _new_parts() -> tuple[str, str]:
    return secrets.token_hex(6), secrets.token_urlsafe(32)


def generate(kind: str) -> str:
    """A fresh key that is not stored: for TRACEHOUSE_INGEST_KEYS / TRACEHOUSE_READ_KEYS."""
    if kind not in KINDS:
        raise KeyError_(f"key kind must be one of {', '.join(KINDS)}, got {kind!r}")
    key_id, secret = _new_parts()
    return f"th_{kind}_{key_id}_{secret}"


def create(con: duckdb.DuckDBPyConnection, project: str, kind: str, name: str | None = None) -> str:
    """Store a new key and return it; the only time its secret is visible."""
    if kind not in KINDS:
        raise KeyError_(f"key kind must be one of {', '.join(KINDS)}, got {kind!r}")
    check_project(project)
    key_id, secret = _new_parts()
    con.execute(
        "INSERT INTO api_keys (key_id, project, kind, name, secret_sha256) VALUES (?, ?, ?, ?, ?)",
        [key_id, project, kind, name, _digest(secret)],
    )
    return f"th_{kind}_{key_id}_{secret}"


def list_keys(con: duckdb.DuckDBPyConnection) -> list[KeyInfo]:
    rows = con.execute(
        "SELECT key_id, project, kind, name, created_at, revoked_at FROM api_keys ORDER BY created_at, key_id"
    ).fetchall()
    return [KeyInfo(*row) for row in rows]


def revoke(con: duckdb.DuckDBPyConnection, key_id: str) -> bool:
    """Revoke by key id (or a whole key); False when no active key has that id."""
    match = _KEY.match(key_id)
    key_id = match.group(2) if match else key_id
    found = con.execute(
        "UPDATE api_keys SET revoked_at = current_timestamp WHERE key_id = ? AND revoked_at IS NULL RETURNING key_id",
        [key_id],
    ).fetchall()
    return bool(found)


def parse_env_keys(text: str, kind: str) -> list[tuple[str, str]]:
    """``"proj=th_ingest_...,other=th_ingest_..."`` → [(project, key)]; ValueError names the bad part."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        project, sep, key = part.partition("=")
        match = _KEY.match(key.strip())
        if not sep or not _PROJECT.match(project.strip()) or not match or match.group(1) != kind:
            raise ValueError(f"must be project=th_{kind}_... pairs separated by commas (make keys with "
                             "`tracehouse keys create`)")
        out.append((project.strip(), key.strip()))
    return out


class KeyVerifier:
    """The active keys of one collector, in memory: id → (project, kind, secret digest)."""

    def __init__(self) -> None:
        self._keys: dict[str, tuple[str, str, str]] = {}

    @property
    def configured(self) -> bool:
        return bool(self._keys)

    def load(self, con: duckdb.DuckDBPyConnection | None, ingest_env: str = "", read_env: str = "") -> None:
        """The stored keys (``con`` None: none) and the environment's."""
        keys: dict[str, tuple[str, str, str]] = {}
        stored = con.execute(
            "SELECT key_id, project, kind, secret_sha256 FROM api_keys WHERE revoked_at IS NULL"
        ).fetchall() if con is not None else []
        for key_id, project, kind, digest in stored:
            keys[key_id] = (project, kind, digest)
        for kind, text in (("ingest", ingest_env), ("read", read_env)):
            for project, key in parse_env_keys(text, kind):
                match = _KEY.match(key)
                assert match is not None
                keys[match.group(2)] = (project, kind, _digest(match.group(3)))
        self._keys = keys

    def verify(self, key: str | None, kind: str) -> Principal | None:
        """The key's principal if it is an active key of that kind; None otherwise."""
        if not key:
            return None
        match = _KEY.match(key.strip())
        if match is None:
            return None
        entry = self._keys.get(match.group(2))
        # Compare the digest even for an unknown id, so timing does not tell which ids exist.
        expected = entry[2] if entry else "0" * 64
        ok = hmac.compare_digest(_digest(match.group(3)), expected)
        if not ok or entry is None or entry[1] != kind or match.group(1) != kind:
            return None
        return Principal(entry[0], kind)


def key_from_headers(get: object) -> str | None:
    """The key of a request: ``authorization: Bearer <key>`` or ``x-api-key: <key>``.

    ``get`` is a mapping-style getter (``headers.get``) over lower-case names.
    """
    getter = get  # type: ignore[assignment]
    auth = getter("authorization")  # type: ignore[operator]
    if auth and auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return getter("x-api-key")  # type: ignore[operator]
