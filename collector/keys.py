"""API keys: ingest keys (OTLP export) and read keys (query API, SQL, dashboard), one project each;
admin keys (manage keys, read every project, scrape metrics) and metrics keys (``/metrics``
only), which belong to no project.

A key reads ``th_<kind>_<key_id>_<secret>``. The database keeps the key id, the project and a
SHA-256 of the secret (the secret is 32 random bytes, so a fast hash is enough; nothing in the
database lets anyone rebuild a key). Verification looks the id up in memory and compares hashes
with ``hmac.compare_digest``. Keys can also come from the environment (``TRACEHOUSE_INGEST_KEYS``,
``TRACEHOUSE_READ_KEYS``: ``project=key`` pairs; ``TRACEHOUSE_ADMIN_KEYS``,
``TRACEHOUSE_METRICS_KEYS``: keys), for deployments that hand out secrets that way.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

import duckdb

KINDS = ("ingest", "read", "admin", "metrics")
PROJECT_KINDS = ("ingest", "read")  # the others belong to no project
ALL_PROJECTS = "*"  # api_keys.project of a key of no project
# What a request of each kind accepts: an admin key reads every project and scrapes metrics too.
ACCEPTS = {"ingest": ("ingest",), "read": ("read", "admin"), "admin": ("admin",), "metrics": ("metrics", "admin")}
_KEY = re.compile(r"^th_(ingest|read|admin|metrics)_([0-9a-f]{12})_([A-Za-z0-9_-]{20,})$")
_PROJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class KeyError_(ValueError):
    """A key or project that cannot be used; one line."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request is: the project it may write or read, and what it may do."""

    project: str | None  # None: every project (admin keys; local traffic with no keys configured)
    kind: str  # "ingest", "read", "admin", "metrics" or "local"


@dataclass(frozen=True, slots=True)
class KeyInfo:
    key_id: str
    project: str | None  # None: a key of no project (admin, metrics)
    kind: str
    name: str | None
    created_at: datetime | None
    revoked_at: datetime | None
    source: str = "database"  # or "environment" (cannot be revoked, only removed there)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_project(project: str) -> str:
    if not _PROJECT.match(project):
        raise KeyError_(f"project name {project!r}: use letters, digits, '.', '_' or '-' (at most 64)")
    return project


def _new_parts() -> tuple[str, str]:
    return secrets.token_hex(6), secrets.token_urlsafe(32)


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise KeyError_(f"key kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return kind


def check_owner(kind: str, project: str | None) -> str | None:
    """The project a new key of ``kind`` belongs to: required for ingest/read, refused for the others."""
    if _check_kind(kind) in PROJECT_KINDS:
        if not project:
            raise KeyError_(f"an {kind} key belongs to a project: give one (--project)")
        return check_project(project)
    if project:
        raise KeyError_(f"an {kind} key belongs to no project: leave the project out")
    return None


def generate(kind: str) -> str:
    """A fresh key that is not stored: for the TRACEHOUSE_*_KEYS variables."""
    key_id, secret = _new_parts()
    return f"th_{_check_kind(kind)}_{key_id}_{secret}"


def key_id_of(key: str) -> str:
    """The public id of a whole key (a bare id is returned as it is)."""
    match = _KEY.match(key.strip())
    return match.group(2) if match else key.strip()


def create(con: duckdb.DuckDBPyConnection, project: str | None, kind: str, name: str | None = None) -> str:
    """Store a new key and return it; the only time its secret is visible."""
    owner = check_owner(kind, project)
    key_id, secret = _new_parts()
    con.execute(
        "INSERT INTO api_keys (key_id, project, kind, name, secret_sha256) VALUES (?, ?, ?, ?, ?)",
        [key_id, owner or ALL_PROJECTS, kind, name, _digest(secret)],
    )
    return f"th_{kind}_{key_id}_{secret}"


def _owner(kind: str, project: str) -> str | None:
    return project if kind in PROJECT_KINDS else None


def list_keys(con: duckdb.DuckDBPyConnection) -> list[KeyInfo]:
    rows = con.execute(
        "SELECT key_id, project, kind, name, created_at, revoked_at FROM api_keys ORDER BY created_at, key_id"
    ).fetchall()
    return [KeyInfo(key_id, _owner(kind, project), kind, name, created, revoked)
            for key_id, project, kind, name, created, revoked in rows]  # fmt: skip


def revoke(con: duckdb.DuckDBPyConnection, key_id: str) -> bool:
    """Revoke by key id (or a whole key); False when no active key has that id."""
    key_id = key_id_of(key_id)
    found = con.execute(
        "UPDATE api_keys SET revoked_at = current_timestamp WHERE key_id = ? AND revoked_at IS NULL RETURNING key_id",
        [key_id],
    ).fetchall()
    return bool(found)


def parse_env_keys(text: str, kind: str) -> list[tuple[str | None, str]]:
    """``"proj=th_ingest_...,other=th_ingest_..."`` → [(project, key)]; ValueError names the bad part.

    Admin and metrics keys belong to no project: ``"th_admin_...,th_admin_..."`` → [(None, key)].
    """
    out: list[tuple[str | None, str]] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        if kind not in PROJECT_KINDS:
            match = _KEY.match(part)
            if not match or match.group(1) != kind:
                raise ValueError(f"must be th_{kind}_... keys separated by commas (make keys with "
                                 f"`tracehouse keys generate --kind {kind}`)")
            out.append((None, part))
            continue
        project, sep, key = part.partition("=")
        match = _KEY.match(key.strip())
        if not sep or not _PROJECT.match(project.strip()) or not match or match.group(1) != kind:
            raise ValueError(f"must be project=th_{kind}_... pairs separated by commas (make keys with "
                             "`tracehouse keys create`)")
        out.append((project.strip(), key.strip()))
    return out


class KeyVerifier:
    """The active keys of one collector, in memory: id → (project, kind, secret digest).

    Keys created or revoked through the running collector (collector.keys_api) are added or
    removed here as soon as the database has them, so a revoked key stops working at once. The
    table is replaced whole on each change, never mutated: readers on other threads see the old
    or the new one.
    """

    def __init__(self) -> None:
        self._keys: dict[str, tuple[str | None, str, str]] = {}
        self._env: dict[str, tuple[str | None, str]] = {}  # from the environment: id → (project, kind)

    @property
    def configured(self) -> bool:
        return bool(self._keys)

    def load(self, con: duckdb.DuckDBPyConnection | None, ingest_env: str = "", read_env: str = "",
             admin_env: str = "", metrics_env: str = "") -> None:  # fmt: skip
        """The stored keys (``con`` None: none, as on ClickHouse) and the environment's."""
        keys: dict[str, tuple[str | None, str, str]] = {}
        stored = con.execute(
            "SELECT key_id, project, kind, secret_sha256 FROM api_keys WHERE revoked_at IS NULL"
        ).fetchall() if con is not None else []
        for key_id, project, kind, digest in stored:
            keys[key_id] = (_owner(kind, project), kind, digest)
        env: dict[str, tuple[str | None, str]] = {}
        for kind, text in (("ingest", ingest_env), ("read", read_env), ("admin", admin_env), ("metrics", metrics_env)):
            for project, key in parse_env_keys(text, kind):
                match = _KEY.match(key)
                assert match is not None
                keys[match.group(2)] = (project, kind, _digest(match.group(3)))
                env[match.group(2)] = (project, kind)
        self._keys, self._env = keys, env

    def add(self, key: str, project: str | None) -> None:
        """A key just stored in the database: valid from now on."""
        match = _KEY.match(key)
        assert match is not None
        self._keys = {**self._keys, match.group(2): (project, match.group(1), _digest(match.group(3)))}

    def remove(self, key_id: str) -> None:
        """A key just revoked in the database: refused from now on."""
        self._keys = {k: v for k, v in self._keys.items() if k != key_id}

    def environment_keys(self) -> list[KeyInfo]:
        """Keys given by the environment (listed, but revoked only by removing them there)."""
        return [KeyInfo(key_id, project, kind, None, None, None, "environment")
                for key_id, (project, kind) in sorted(self._env.items())]  # fmt: skip

    def verify(self, key: str | None, kind: str) -> Principal | None:
        """The key's principal if it is an active key a request of ``kind`` accepts; None otherwise."""
        if not key:
            return None
        match = _KEY.match(key.strip())
        if match is None:
            return None
        entry = self._keys.get(match.group(2))
        # Compare the digest even for an unknown id, so timing does not tell which ids exist.
        expected = entry[2] if entry else "0" * 64
        ok = hmac.compare_digest(_digest(match.group(3)), expected)
        if not ok or entry is None or entry[1] not in ACCEPTS[kind] or match.group(1) != entry[1]:
            return None
        return Principal(entry[0], entry[1])


def key_from_headers(get: object) -> str | None:
    """The key of a request: ``authorization: Bearer <key>`` or ``x-api-key: <key>``.

    ``get`` is a mapping-style getter (``headers.get``) over lower-case names.
    """
    getter = get  # type: ignore[assignment]
    auth = getter("authorization")  # type: ignore[operator]
    if auth and auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return getter("x-api-key")  # type: ignore[operator]
