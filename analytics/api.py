"""HTTP routes of the analytics: run the jobs now, read the overview numbers.

The runner lives on ``app.state.analytics`` (set by whoever starts the collector); without it the
routes answer 503 with a one-line reason.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request

from analytics.rollups import overview
from analytics.runner import AnalyticsRunner, utcnow

router = APIRouter(prefix="/api/analytics", tags=["analytics"])


def _runner(request: Request) -> AnalyticsRunner:
    runner = getattr(request.app.state, "analytics", None)
    if runner is None:
        raise HTTPException(503, "analytics are not running in this collector")
    return runner


@router.post("/run")
async def run_now(request: Request) -> dict[str, Any]:
    """Run the analytics jobs now (waits for the run; one run at a time)."""
    runner = _runner(request)
    report = await asyncio.to_thread(runner.run_now)
    return asdict(report)


def _naive_utc(at: datetime) -> datetime:
    """Stored times are naive UTC; an aware time is converted, a naive one taken as UTC."""
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at


@router.get("/overview")
async def get_overview(
    request: Request,
    window_minutes: int = Query(60, ge=1, le=24 * 60),
    now: datetime | None = None,
) -> dict[str, Any]:
    """Active agents, requests per minute, response times, success rate, cost today, top errors."""
    store = request.app.state.store

    def read() -> dict[str, Any]:
        cur = store.cursor()
        try:
            return overview(
                cur, _naive_utc(now) if now else utcnow(), window_minutes=window_minutes
            )
        finally:
            cur.close()

    return await asyncio.to_thread(read)
