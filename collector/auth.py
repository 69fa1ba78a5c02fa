"""Who may send and read: API keys, or local traffic only when no key exists.

With keys configured (``tracehouse keys create`` or the ``TRACEHOUSE_*_KEYS`` variables) every
OTLP export needs an ingest key, every ``/api`` call a read key (the key's project is where spans
are stored and the only project a reader sees), key management (``/api/keys``) an admin key and
``/metrics`` a metrics or admin key; ``/healthz`` stays open (it tells nothing). With none, the
collector serves loopback clients only, all of it (so the first keys can be made through a
running local collector), says so at start-up, and refuses to bind a non-loopback address at all.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from collector.keys import ACCEPTS, KeyVerifier, Principal, key_from_headers

LOCAL = Principal(None, "local")


class AccessDenied(Exception):
    """``status`` is "unauthenticated" (no or bad key) or "forbidden" (not from loopback)."""

    def __init__(self, message: str, status: str) -> None:
        super().__init__(message)
        self.status = status


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def grpc_peer_host(peer: str) -> str | None:
    """``ipv4:127.0.0.1:5000`` / ``ipv6:[::1]:5000`` → the address; None for other transports."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rsplit(":", 1)[0]
    if kind == "ipv6":
        return rest.rsplit(":", 1)[0].strip("[]")
    return None


class Access:
    """The access rules of one collector."""

    def __init__(self, verifier: KeyVerifier | None = None) -> None:
        self.verifier = verifier or KeyVerifier()

    @property
    def keys_configured(self) -> bool:
        return self.verifier.configured

    def principal(self, kind: str, header: Callable[[str], str | None], client_host: str | None) -> Principal:
        """The principal of a request of ``kind`` (keys.ACCEPTS); raises AccessDenied."""
        if not self.verifier.configured:
            if is_loopback(client_host):
                return LOCAL
            raise AccessDenied("no API keys are configured: this collector accepts local traffic only", "forbidden")
        key = key_from_headers(header)
        principal = self.verifier.verify(key, kind)
        if principal is None:
            what = "missing" if not key else "not a valid, active"
            wanted = " or ".join(ACCEPTS[kind])
            raise AccessDenied(
                f"{wanted} API key {what}: send 'authorization: Bearer <key>' or 'x-api-key: <key>'", "unauthenticated"
            )
        return principal


def request_kind(path: str) -> str | None:
    """The key a path needs (keys.ACCEPTS); None for the open ones (/healthz, /docs)."""
    if path == "/v1/traces":
        return "ingest"
    # Prefixes, not exact routes: whatever a router adds under them is guarded too (fail closed).
    if path.startswith("/api/keys"):
        return "admin"
    if path.startswith("/api"):
        return "read"
    if path.startswith("/metrics"):
        return "metrics"
    return None


def install_access(app: Any, access: Access) -> None:
    """Check every request that needs a key (request_kind) before its route."""
    app.state.access = access

    @app.middleware("http")
    async def _guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        kind = request_kind(request.url.path)
        if kind is None:
            return await call_next(request)
        try:
            request.state.principal = access.principal(
                kind, request.headers.get, request.client.host if request.client else None
            )
        except AccessDenied as exc:
            status = 401 if exc.status == "unauthenticated" else 403
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)
        return await call_next(request)


def load_access(store: Any, settings: Any) -> Access:
    """The keys of the database and the environment; refuse a public address without any."""
    verifier = KeyVerifier()
    cursor = store.cursor() if store is not None else None  # None: the environment's keys only
    try:
        verifier.load(cursor, settings.ingest_keys, settings.read_keys, settings.admin_keys, settings.metrics_keys)
    finally:
        if cursor is not None:
            cursor.close()
    if not verifier.configured and not is_loopback(settings.host):
        raise RuntimeError(
            f"refusing to listen on {settings.host} without API keys: create keys with 'tracehouse keys create' "
            "(or set TRACEHOUSE_INGEST_KEYS / TRACEHOUSE_READ_KEYS), or bind to 127.0.0.1"
        )
    return Access(verifier)
