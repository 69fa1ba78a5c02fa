"""Key management on a running collector: ``GET``/``POST /api/keys``, ``DELETE /api/keys/{key_id}``.

The collector owns the database file, so ``tracehouse keys`` talks to these routes while it runs.
collector.auth lets only an admin key through (or, while no key exists at all, a loopback
client: how the first keys are made). Writes go through the single writer; the collector's key
table in memory changes as soon as they are committed, so a new key works and a revoked one is
refused from the next request on.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from collector import keys
from collector.auth import Access
from collector.backend import backend_of

router = APIRouter(prefix="/api/keys", tags=["keys"])


class NewKey(BaseModel):
    kind: str = Field(description="ingest, read (both need a project), admin or metrics (no project)")
    project: str | None = Field(default=None, description="the project an ingest or read key belongs to")
    name: str | None = Field(default=None, max_length=200, description="a note: who or what uses the key")


def _access(request: Request) -> Access:
    access = getattr(request.app.state, "access", None)
    if access is None or request.app.state.writer is None:
        raise HTTPException(503, "key management needs a collector with access rules and a writer")
    return access


def _keeps_keys(request: Request) -> bool:
    return backend_of(request.app.state).stores_keys


async def _write(request: Request, fn: Any) -> Any:
    if not _keeps_keys(request):
        raise HTTPException(501, "this collector runs on ClickHouse, whose keys come from the environment "
                                 "(TRACEHOUSE_INGEST_KEYS, TRACEHOUSE_READ_KEYS, TRACEHOUSE_ADMIN_KEYS, TRACEHOUSE_METRICS_KEYS): "
                                 "set them there and restart; 'tracehouse keys generate' makes one")  # fmt: skip
    return await asyncio.wrap_future(request.app.state.writer.execute(fn))


@router.get("")
async def list_keys(request: Request) -> dict[str, Any]:
    """Every key (ids, projects, kinds, status; never secrets), the environment's included."""
    access = _access(request)

    def read() -> list[keys.KeyInfo]:
        cursor = request.app.state.store.cursor()
        try:
            return keys.list_keys(cursor)
        finally:
            cursor.close()

    stored = await asyncio.to_thread(read) if _keeps_keys(request) else []
    return {"keys": [asdict(info) for info in stored + access.verifier.environment_keys()]}


@router.post("", status_code=201)
async def create_key(body: NewKey, request: Request) -> dict[str, Any]:
    """Make a key; the answer is the only time its secret is shown."""
    access = _access(request)
    try:
        owner = keys.check_owner(body.kind, body.project)
    except keys.KeyError_ as exc:
        raise HTTPException(400, str(exc)) from None
    key = await _write(request, lambda con: keys.create(con, owner, body.kind, body.name))
    access.verifier.add(key, owner)
    return {"key": key, "key_id": keys.key_id_of(key), "project": owner, "kind": body.kind, "name": body.name}


@router.delete("/{key_id}")
async def revoke_key(key_id: str, request: Request) -> dict[str, Any]:
    """Revoke a key by its id; it is refused from the next request on."""
    access = _access(request)
    key_id = keys.key_id_of(key_id)
    if await _write(request, lambda con: keys.revoke(con, key_id)):
        access.verifier.remove(key_id)
        return {"revoked": key_id}
    if any(info.key_id == key_id for info in access.verifier.environment_keys()):
        raise HTTPException(409, f"key {key_id} comes from the environment (TRACEHOUSE_*_KEYS): remove it there "
                                 "and restart the collector")  # fmt: skip
    raise HTTPException(404, f"no active key with id {key_id!r}")
