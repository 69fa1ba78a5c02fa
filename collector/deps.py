"""FastAPI dependencies: the resources create_app put on app.state."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from collector.backend import Backend
from collector.settings import Settings
from collector.store import Store


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_store(request: Request) -> Store:
    """The store, narrowed to the caller's project when the caller's key belongs to one."""
    store = request.app.state.store
    principal = getattr(request.state, "principal", None)
    if principal is not None and principal.project is not None:
        return get_backend(request).scoped(store, principal.project)  # type: ignore[no-any-return]
    return store


def get_backend(request: Request) -> Backend:
    """collector.backend: the engine's queries and SQL sandbox."""
    return request.app.state.backend  # type: ignore[no-any-return]


def get_writer(request: Request) -> Any:
    return request.app.state.writer


def get_metrics(request: Request) -> Any:
    return request.app.state.metrics
