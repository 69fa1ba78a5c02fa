"""Retention: delete spans (and what was derived from them) older than each project's limit.

Runs inside the collector on a timer, through the single writer (its own transaction), then
checkpoints so DuckDB drops the deleted rows from the file and reuses their blocks: with a steady
ingest rate the file stops growing once the oldest data ages out (tests/collector/test_retention.py
measures it). ``TRACEHOUSE_RETENTION_DAYS`` is the default for every project (0 keeps forever);
``TRACEHOUSE_RETENTION_BY_PROJECT`` overrides it per project.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from collector.errors import one_line
from collector.settings import Settings
from collector.store import Store

log = logging.getLogger(__name__)

# Per-project tables and the time their rows age by (the span's or trace's start, the minute, the
# end of an anomaly's window): every row goes with its project's spans.
PROJECT_TABLES = (
    ("spans", "start_time"), ("trace_summary", "start_time"), ("span_costs", "start_time"),
    ("trace_features", "start_time"), ("minute_rollup", "minute"), ("error_minutes", "minute"),
    ("call_minutes", "minute"), ("anomalies", "window_end"),
)  # fmt: skip
FIRST_RUN_S = 60.0  # after start-up, then every interval


def parse_overrides(text: str) -> dict[str, int]:
    """``"proj-a=7,proj-b=90"`` → {"proj-a": 7, "proj-b": 90}; ValueError names the bad part."""
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, days = part.rpartition("=")
        if not sep or not name.strip() or not days.strip().isdigit():
            raise ValueError(f"must be project=days pairs separated by commas, got {part!r}")
        out[name.strip()] = int(days)
    return out


@dataclass(frozen=True)
class RetentionPolicy:
    default_days: int  # 0 = keep forever
    by_project: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        return cls(settings.retention_days, parse_overrides(settings.retention_by_project))

    @property
    def enabled(self) -> bool:
        return self.default_days > 0 or any(days > 0 for days in self.by_project.values())

    def days_for(self, project: str) -> int:
        return self.by_project.get(project, self.default_days)

    def longest_days(self) -> int | None:
        """Days every project keeps at least; None when some project keeps forever."""
        values = [self.default_days, *self.by_project.values()]
        return None if 0 in values else max(values)


def delete_expired(con: duckdb.DuckDBPyConnection, policy: RetentionPolicy, now: datetime) -> dict[str, int]:
    """Delete what each project no longer keeps; returns rows deleted per table."""
    deleted: dict[str, int] = {}
    projects = [row[0] for row in con.execute("SELECT DISTINCT project FROM spans").fetchall()]
    for project in projects:
        days = policy.days_for(project)
        if days <= 0:
            continue
        cutoff = now - timedelta(days=days)
        for table, column in PROJECT_TABLES:
            count = con.execute(f"DELETE FROM {table} WHERE project = ? AND {column} < ?", [project, cutoff]).fetchone()
            deleted[table] = deleted.get(table, 0) + (count[0] if count else 0)
    return deleted


def _checkpoint(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CHECKPOINT")


class RetentionJob:
    """Deletes expired rows through the writer on a timer, then checkpoints."""

    def __init__(self, store: Store, writer: Any, settings: Settings, interval_s: float | None = None) -> None:
        self._writer = writer
        self._store = store
        self.policy = RetentionPolicy.from_settings(settings)
        self._interval = interval_s or settings.retention_interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, now: datetime | None = None) -> dict[str, int]:
        """Delete, commit, checkpoint; returns rows deleted per table."""
        moment = (now or datetime.now(UTC)).replace(tzinfo=None)
        deleted = self._writer.execute(lambda con: delete_expired(con, self.policy, moment)).result()
        if any(deleted.values()):
            self._writer.execute(_checkpoint).result()  # frees the deleted rows' blocks for reuse
            log.info("retention: deleted %s", ", ".join(f"{n} {t}" for t, n in deleted.items() if n))
        return deleted

    def start(self) -> None:
        if not self.policy.enabled:
            return
        self._thread = threading.Thread(target=self._loop, name="tracehouse-retention", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        wait = min(FIRST_RUN_S, self._interval)
        while not self._stop.wait(wait):
            try:
                self.run_once()
            except Exception as exc:  # noqa: BLE001 - a failed run is retried at the next interval
                log.warning("retention run failed: %s", one_line(exc))
            wait = self._interval

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
