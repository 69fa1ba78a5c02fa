"""Retention: expired spans go, per project, and the database file stops growing.

Spans are written through the real BatchWriter into a real DuckDB file; the retention job runs
through the same writer with a clock we move forward a day at a time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from collector.retention import RetentionJob, parse_overrides
from collector.settings import Settings, SettingsError
from collector.store import Store
from collector.writer import BatchWriter
from tests.collector.rows import span_row

DAY0 = datetime(2026, 1, 1)


@pytest.fixture
def make_store(tmp_path: Path) -> Iterator:  # type: ignore[type-arg]
    opened: list[tuple[Store, BatchWriter]] = []

    def make(**settings: object) -> tuple[Store, BatchWriter, RetentionJob]:
        store = Store(tmp_path / f"r{len(opened)}.duckdb")
        config = Settings(db=store.path, batch_interval_ms=1.0, **settings)  # type: ignore[arg-type]
        writer = BatchWriter(store, config)
        opened.append((store, writer))
        return store, writer, RetentionJob(store, writer, config)

    yield make
    for store, writer in opened:
        writer.close()
        store.close()


def write_day(writer: BatchWriter, day: int, count: int, project: str = "default", payload: int = 1500) -> None:
    start = DAY0 + timedelta(days=day)
    rows = [
        replace(span_row(), project=project, start_time=start + timedelta(seconds=i), end_time=start + timedelta(seconds=i, milliseconds=5),
                input=os.urandom(payload // 2).hex())
        for i in range(count)
    ]
    for i in range(0, count, 5000):
        writer.submit(rows[i : i + 5000]).result(timeout=60)


def counts(store: Store) -> dict[str, int]:
    cur = store.cursor()
    try:
        return dict(cur.execute("SELECT project, count(*) FROM spans GROUP BY ALL").fetchall())
    finally:
        cur.close()


def test_each_project_keeps_its_own_number_of_days(make_store) -> None:  # type: ignore[no-untyped-def]
    store, writer, job = make_store(retention_days=3, retention_by_project="audit=0,chat=1")
    for day in range(5):
        for project in ("default", "audit", "chat"):
            write_day(writer, day, 10, project, payload=20)
    deleted = job.run_once(now=DAY0 + timedelta(days=5))
    # default keeps 3 days (days 2, 3, 4), chat 1 day (day 4), audit everything
    assert counts(store) == {"default": 30, "chat": 10, "audit": 50}
    assert deleted["spans"] == 20 + 40
    assert job.run_once(now=DAY0 + timedelta(days=5))["spans"] == 0  # idempotent


def test_per_project_rollups_and_anomalies_go_with_their_projects_spans(make_store) -> None:  # type: ignore[no-untyped-def]
    from analytics.runner import AnalyticsRunner

    store, writer, job = make_store(retention_days=3, retention_by_project="audit=0,chat=1")
    for day in range(5):
        for project in ("default", "audit", "chat"):
            write_day(writer, day, 10, project, payload=20)
    runner = AnalyticsRunner(store, writer, Settings(db=store.path))
    runner.run_now(now=DAY0 + timedelta(days=5))
    runner.stop()

    def minutes() -> dict[str, int]:
        cur = store.cursor()
        try:
            return dict(cur.execute("SELECT project, count(DISTINCT minute) FROM minute_rollup GROUP BY ALL").fetchall())
        finally:
            cur.close()

    assert minutes() == {"default": 5, "chat": 5, "audit": 5}  # one minute a day each
    deleted = job.run_once(now=DAY0 + timedelta(days=5))
    assert minutes() == {"default": 3, "chat": 1, "audit": 5}  # as their spans: nobody loses history early
    assert deleted["minute_rollup"] == 2 + 4


def test_disabled_by_default_keeps_everything(make_store) -> None:  # type: ignore[no-untyped-def]
    store, writer, job = make_store()
    write_day(writer, 0, 10, payload=20)
    assert not job.policy.enabled
    job.run_once(now=DAY0 + timedelta(days=10_000))
    assert counts(store) == {"default": 10}


def test_database_file_stops_growing_once_old_days_age_out(make_store) -> None:  # type: ignore[no-untyped-def]
    """Steady ingest, 2 days kept: after the window fills, the file size levels off."""
    store, writer, job = make_store(retention_days=2)
    sizes = []
    for day in range(8):
        write_day(writer, day, 20_000)
        job.run_once(now=DAY0 + timedelta(days=day + 1))
        writer.execute(lambda con: con.execute("CHECKPOINT")).result()
        sizes.append(os.path.getsize(store.path))
    assert counts(store) == {"default": 40_000}  # two days' worth
    window = sizes[1]  # the file holding exactly the two days kept
    # Without retention day 8 would hold 8 days (~4x the window); with it, freed blocks are reused
    # and the size levels off (measured: 17, 46, 78, 50, 78, 50, 78, 50 MB).
    assert max(sizes[2:]) <= 2 * window, [round(s / 1e6, 1) for s in sizes]
    assert sizes[-1] <= max(sizes[2:5]), [round(s / 1e6, 1) for s in sizes]


def test_bad_overrides_are_refused_at_start_up() -> None:
    assert parse_overrides("a=1, b-c=30") == {"a": 1, "b-c": 30}
    with pytest.raises(SettingsError, match="TRACEHOUSE_RETENTION_BY_PROJECT"):
        Settings.from_env({"TRACEHOUSE_RETENTION_BY_PROJECT": "a=1,b=forever"})
    with pytest.raises(SettingsError, match="TRACEHOUSE_RETENTION_DAYS"):
        Settings.from_env({"TRACEHOUSE_RETENTION_DAYS": "-1"})
