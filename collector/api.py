"""The collector's HTTP application: OTLP/HTTP ingest plus the query API, one FastAPI app."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from analytics import api as analytics_api
from collector import keys_api, ops_api, query_api
from collector.receivers import http as otlp_http
from collector.auth import Access, install_access
from collector.backend import DuckDBBackend
from collector.settings import Settings
from collector.store import Store


def create_app(
    settings: Settings, store: Store, writer: Any = None, metrics: Any = None, pipeline: Any = None,
    access: Access | None = None, *, backend: Any = None,
) -> FastAPI:
    """Build the app around resources the caller owns (the caller opens and closes them).

    ``access`` (collector.auth) guards ``/v1/traces``, ``/api`` and ``/metrics``; without it
    (embedding, tests of the routes alone) every request is let through unscoped, except key
    management, which answers 503.
    """
    app = FastAPI(title="Tracehouse collector", version="0.1.0")
    if access is not None:
        install_access(app, access)
    app.state.settings = settings
    app.state.store = store
    # collector.backend: which queries, SQL dialect and jobs serve this store.
    app.state.backend = backend if backend is not None else DuckDBBackend(store)
    app.state.writer = writer
    app.state.metrics = metrics
    app.state.pipeline = pipeline
    app.include_router(otlp_http.router)
    app.include_router(query_api.router)
    app.include_router(ops_api.router)
    app.include_router(analytics_api.router)
    app.include_router(keys_api.router)
    return app
