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
from analytics.runner import AnalyticsRunner, ProjectReport, utcnow
from collector.deps import get_store

router = APIRouter(prefix="/api/analytics", tags=["analytics"])


def _runner(request: Request) -> AnalyticsRunner:
    runner = getattr(request.app.state, "analytics", None)
    if runner is None:
        raise HTTPException(503, "analytics are not running in this collector")
    return runner


@router.post("/run")
async def run_now(request: Request) -> dict[str, Any]:
    """Run the analytics jobs now (waits for the run; one run at a time).

    A run computes every project; a project's key is answered with its own project's part only.
    """
    runner = _runner(request)
    principal = getattr(request.state, "principal", None)
    report = await asyncio.to_thread(runner.run_now)
    if principal is None or principal.project is None:
        return asdict(report)
    own = report.projects.get(principal.project, ProjectReport())
    return {"project": principal.project, **asdict(own), "backfill": report.backfill, "seconds": report.seconds}


_EARLIEST, _LATEST = datetime(1970, 1, 1), datetime(9999, 1, 1)


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
    store = get_store(request)  # one project's rows for a project's key
    if now is not None and not _EARLIEST <= _naive_utc(now) <= _LATEST:
        # The overview reaches back up to a day before `now`: dates near year 1 overflow (a 500).
        raise HTTPException(400, f"now: must be between {_EARLIEST:%Y-%m-%d} and {_LATEST:%Y-%m-%d}")

    at = _naive_utc(now) if now else utcnow()

    def read() -> dict[str, Any]:
        if not hasattr(store, "cursor"):  # a ClickHouse store: the same SQL, translated
            from analytics.clickhouse_sql import duckdb_sql_rows

            rows = duckdb_sql_rows(store.client(), database=store.database, project=store.project,
                                   tables=("minute_rollup", "error_minutes"))  # fmt: skip
            return overview(rows, at, window_minutes=window_minutes)
        cur = store.cursor()
        try:
            return overview(cur, at, window_minutes=window_minutes)
        finally:
            cur.close()

    return await asyncio.to_thread(read)
