"""Operational routes: ``GET /healthz`` (liveness + writer state) and ``GET /metrics`` (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

router = APIRouter()


@router.get("/healthz")
def healthz(request: Request) -> JSONResponse:
    """200 while the writer thread runs, 503 once it has stopped."""
    writer = request.app.state.writer
    alive = writer is not None and writer.alive
    body = {
        "status": "ok" if alive else "unavailable",
        "queue_spans": writer.queue_depth if writer else 0,
    }
    return JSONResponse(body, status_code=200 if alive else 503)


@router.get("/metrics")
def metrics(request: Request) -> Response:
    registry = request.app.state.metrics
    data = registry.render() if registry is not None else b""
    return Response(data, media_type=CONTENT_TYPE_LATEST)
