"""Retention on ClickHouse: the policy of collector.retention, applied two ways.

- The retention job (on the collector's timer, like DuckDB's) drops whole day partitions that
  every project is done with (``ALTER TABLE ... DROP PARTITION``, instant) and deletes a
  project's older rows where its limit is shorter than the longest (``ALTER TABLE ... DELETE``,
  a mutation, waited for). Several collectors may run it: both statements are idempotent.
- A TTL on the span table with the same per-project days, so a store whose collectors are all
  stopped still ages out in ClickHouse's background merges. It is set when the policy differs
  from the table's current TTL (and removed when retention is off).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from collector.clickhouse.store import ClickHouseStore
from collector.errors import one_line
from collector.retention import PROJECT_TABLES, RetentionJob, RetentionPolicy
from collector.settings import Settings

log = logging.getLogger(__name__)


def _days_expression(policy: RetentionPolicy) -> str:
    """Days a span is kept, by its project (0 = forever); projects are validated names."""
    cases = [f"project = '{name}', {days}" for name, days in sorted(policy.by_project.items())]
    return f"multiIf({', '.join(cases)}, {policy.default_days})" if cases else str(policy.default_days)


def ttl_clause(policy: RetentionPolicy) -> str:
    days = _days_expression(policy)
    return f"toDateTime(start_time) + toIntervalDay({days}) DELETE WHERE {days} > 0"


def apply_ttl(store: ClickHouseStore, policy: RetentionPolicy) -> bool:
    """Make the span table's TTL match the policy; True when it was changed."""
    table = store.storage_table
    current = store.rows(
        "SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = {t:String}", {"t": table}
    )
    engine = current[0][0] if current else ""
    has_ttl = " TTL " in engine
    if not policy.enabled:
        if has_ttl:
            store.command(f"ALTER TABLE {table}{store.on_cluster} REMOVE TTL")
        return has_ttl
    marker = f"toIntervalDay({_days_expression(policy)})"
    if has_ttl and marker.replace(" ", "") in engine.replace(" ", ""):
        return False
    # Existing parts are checked in the background (no rewrite of the table now).
    store.command(
        f"ALTER TABLE {table}{store.on_cluster} MODIFY TTL {ttl_clause(policy)}",
        settings={"materialize_ttl_after_modify": 0},
    )
    return True


# The analytics tables age like DuckDB's (collector.retention.PROJECT_TABLES), each in its
# `<name>_store` table; spans are dropped above, and the `traces` view is computed when read. Their
# project may be NULL (rows from before projects): the default days apply.
_ANALYTICS_TABLES = tuple((f"{table}_store", column) for table, column in PROJECT_TABLES
                          if table not in ("spans", "trace_summary"))  # fmt: skip


def _delete_analytics(store: ClickHouseStore, policy: RetentionPolicy, now: datetime) -> int:
    """Delete analytics rows older than their project's days, one mutation per table that has any."""
    days = _days_expression(policy)
    params = {"now": now}
    removed = 0
    for table, column in _ANALYTICS_TABLES:
        where = f"{days} > 0 AND {column} < {{now:DateTime64(6, 'UTC')}} - toIntervalDay({days})"
        count = store.rows(f"SELECT count() FROM {table} WHERE {where}", params)[0][0]
        if count:
            store.command(f"ALTER TABLE {table}{store.on_cluster} DELETE WHERE {where}", params,
                          settings={"mutations_sync": 2})  # fmt: skip
            removed += count
    return removed


def delete_expired(store: ClickHouseStore, policy: RetentionPolicy, now: datetime) -> dict[str, int]:
    """Drop and delete what each project no longer keeps; returns spans and analytics rows removed."""
    table, on_cluster = store.storage_table, store.on_cluster
    removed = 0
    longest = policy.longest_days()
    if longest:
        last_day = (now - timedelta(days=longest)).date()  # days before it end before every cutoff
        days = store.rows(
            "SELECT toDate(start_time) AS day, count() FROM span_store WHERE start_time < {cut:DateTime64(6, 'UTC')} "
            "GROUP BY day ORDER BY day",
            {"cut": datetime.combine(last_day, datetime.min.time())},
        )
        for day, count in days:
            store.command(f"ALTER TABLE {table}{on_cluster} DROP PARTITION {{day:Date}}", {"day": day})
            removed += count
    projects = [row[0] for row in store.rows("SELECT DISTINCT project FROM span_store")]
    for project in projects:
        days_kept = policy.days_for(project)
        if days_kept <= 0:
            continue
        params: dict[str, Any] = {"project": project, "cut": now - timedelta(days=days_kept)}
        where = "project = {project:String} AND start_time < {cut:DateTime64(6, 'UTC')}"
        count = store.rows(f"SELECT count() FROM span_store WHERE {where}", params)[0][0]
        if count:
            store.command(
                f"ALTER TABLE {table}{on_cluster} DELETE WHERE {where}", params, settings={"mutations_sync": 2}
            )
            removed += count
    return {"spans": removed, "analytics_rows": _delete_analytics(store, policy, now) if policy.enabled else 0}


class ClickHouseRetention(RetentionJob):
    """collector.retention.RetentionJob's timer, running the ClickHouse statements directly
    (they need no writer: ClickHouse orders them with the inserts itself)."""

    def __init__(self, store: ClickHouseStore, settings: Settings, interval_s: float | None = None) -> None:
        super().__init__(store, None, settings, interval_s)  # type: ignore[arg-type]
        self._ch = store

    def run_once(self, now: datetime | None = None) -> dict[str, int]:
        moment = (now or datetime.now(UTC)).replace(tzinfo=None)
        deleted = delete_expired(self._ch, self.policy, moment)
        if any(deleted.values()):
            log.info("retention: removed %d spans and %d analytics rows", deleted["spans"], deleted["analytics_rows"])
        return deleted

    def start(self) -> None:
        try:
            apply_ttl(self._ch, self.policy)
        except Exception as exc:  # noqa: BLE001 - the job below still enforces the policy
            log.warning("retention: could not set the span table's TTL: %s", one_line(exc))
        super().start()
