"""FastAPI dependencies: the resources create_app put on app.state."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from collector.settings import Settings
from collector.store import Store


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_store(request: Request) -> Store:
    return request.app.state.store


def get_writer(request: Request) -> Any:
    return request.app.state.writer


def get_metrics(request: Request) -> Any:
    return request.app.state.metrics
