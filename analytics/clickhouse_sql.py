"""ClickHouse SQL of the analytics runner: what a run reads from ClickHouse and how it writes back.

The jobs' logic stays in the DuckDB SQL of analytics/rollups.py and queries.py; on ClickHouse a
run only moves rows: the spans (and derived rows) a chunk needs come out as Arrow, and the rows a
chunk recomputed go back into the ReplacingMergeTree tables of collector/clickhouse/schema.sql
with a higher ``version``. Values are inlined as literals: timestamps to the microsecond (the
watermark must not lose precision) through :func:`ts`, strings through :func:`quote`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from clickhouse_connect.driver.client import Client

# Span columns a chunk's jobs read. The payloads are left behind, except a tool call's input:
# trace_features counts repeated calls by md5(input).
_SLICE_SKIP = {"output", "attributes", "resource", "events", "links", "input"}

# The group a trace's baseline is sampled within: analytics.queries.GROUP_KEY_SQL.
GROUP_KEY = "concat(coalesce(workflow_name, service_name, 'default'), '/', coalesce(agent_name, '-'))"


def ts(at: datetime) -> str:
    """A DateTime64(6, 'UTC') literal of a naive UTC time, to the microsecond."""
    return f"toDateTime64('{at.replace(tzinfo=None).strftime('%Y-%m-%d %H:%M:%S.%f')}', 6, 'UTC')"


def quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def naive(table: pa.Table) -> pa.Table:
    """UTC timestamps without a zone (DuckDB's TIMESTAMP) and plain strings for LowCardinality."""
    fields = []
    for field in table.schema:
        kind = field.type
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        if pa.types.is_timestamp(kind):
            kind = pa.timestamp("us")
        fields.append(pa.field(field.name, kind, field.nullable))
    return table.cast(pa.schema(fields))


def arrow(ch: Client, sql: str) -> pa.Table:
    return naive(ch.query_arrow(sql, use_strings=True))


# ── watermarks ────────────────────────────────────────────────────────────────────────────────
_JOB_STATE = "SELECT job, watermark, fingerprint, updated_at FROM analytics_state_store FINAL WHERE project IS NULL"


def read_state(ch: Client, job: str) -> tuple[datetime | None, str | None]:
    rows = ch.query(f"SELECT watermark, fingerprint FROM ({_JOB_STATE}) WHERE job = {quote(job)}").result_rows
    if not rows:
        return None, None
    watermark, fingerprint = rows[0]
    return (watermark.replace(tzinfo=None) if watermark else None), fingerprint


def write_state(ch: Client, job: str, watermark: datetime | None, fingerprint: str | None, now: datetime,
                version: int, projects: Sequence[tuple[str, datetime]] = ()) -> None:  # fmt: skip
    """The job's watermark, and each given project's (its newest span processed)."""
    rows = [[job, watermark, fingerprint, now, None, version]]
    rows += [[job, seen, fingerprint, now, project, version] for project, seen in projects]
    ch.insert("analytics_state_store", rows,
              column_names=["job", "watermark", "fingerprint", "updated_at", "project", "version"])  # fmt: skip


def all_states(ch: Client) -> pa.Table:
    return arrow(ch, _JOB_STATE)


# ── what a run has to do ──────────────────────────────────────────────────────────────────────
# Which spans arrived, and when, is read from span_store without FINAL: a re-sent copy of a span
# only re-marks its trace as touched, which a run recomputes whole anyway (and FINAL would merge
# the whole table for a filter on received_at, which is not in its sorting key).
def new_span_range(ch: Client, after: datetime | None, upto: datetime) -> tuple[int, datetime | None]:
    """(count, newest received_at) of spans received after the watermark and at the latest ``upto``."""
    lo = after or datetime(1970, 1, 1)
    n, hi = ch.query(
        f"SELECT count(), max(received_at) FROM span_store "
        f"WHERE received_at > {ts(lo)} AND received_at <= {ts(upto)}"
    ).result_rows[0]
    return int(n), (hi.replace(tzinfo=None) if n else None)


def chunk_bounds(ch: Client, lo: datetime, hi: datetime, spans: int) -> Iterator[datetime]:
    """Upper bounds splitting (lo, hi] into chunks of about ``spans`` spans, each found when asked:
    the chunks analytics.rollups.chunk_bounds cuts in DuckDB (a chunk ends on a batch stamp)."""
    while lo < hi:
        (end,) = ch.query(
            f"SELECT max(received_at) FROM (SELECT received_at FROM span_store "
            f"WHERE received_at > {ts(lo)} AND received_at <= {ts(hi)} ORDER BY received_at LIMIT {int(spans)})"
        ).result_rows[0]
        lo = end.replace(tzinfo=None) if end is not None and end.replace(tzinfo=None) > lo else hi
        yield lo


def chunk_slice(ch: Client, columns: Sequence[str], lo: datetime, hi: datetime) -> dict[str, pa.Table]:
    """What the jobs of spans received in (lo, hi] read: every span of their traces and of the
    minutes those traces touch, the span costs of those minutes, and the features of every trace
    with a span in them (the minute rollups count traces by their start minute)."""
    traces = f"SELECT trace_id FROM span_store WHERE received_at > {ts(lo)} AND received_at <= {ts(hi)}"
    minutes = f"SELECT DISTINCT toStartOfMinute(start_time) FROM span_store WHERE trace_id IN ({traces})"
    first, last = ch.query(f"SELECT minOrNull(m), maxOrNull(m) FROM ({minutes}) AS t(m)").result_rows[0]
    if first is None:  # the spans of the range were dropped meanwhile (retention)
        return {}
    # Every span read starts in the touched minutes: the range lets ClickHouse skip other days.
    in_minutes = (f"start_time >= {ts(first)} AND start_time < {ts(last)} + INTERVAL 1 MINUTE "
                  f"AND toStartOfMinute(start_time) IN ({minutes})")  # fmt: skip
    picked = ", ".join(c for c in columns if c not in _SLICE_SKIP)
    spans = arrow(ch, f"""SELECT {picked}, if(kind = 'tool', input, NULL) AS input FROM spans
        WHERE start_time >= {ts(first)} AND start_time < {ts(last)} + INTERVAL 1 MINUTE
          AND (trace_id IN ({traces}) OR toStartOfMinute(start_time) IN ({minutes}))""")
    costs = arrow(ch, f"SELECT * FROM span_costs WHERE {in_minutes}")
    features = arrow(ch, f"""SELECT * FROM trace_features WHERE trace_id IN (
        SELECT trace_id FROM span_store WHERE {in_minutes}) AND trace_id NOT IN ({traces})""")
    return {"spans": spans, "span_costs": costs, "trace_features": features}


def baseline_traces(ch: Client, lo: datetime, hi: datetime, per_group: int) -> pa.Table:
    """Trace features started in [lo, hi], at most ``per_group`` per project and group, a
    deterministic sample by trace id (analytics.queries.baseline_traces)."""
    return arrow(ch, f"""SELECT * FROM trace_features
        WHERE start_time >= {ts(lo)} AND start_time <= {ts(hi)}
        ORDER BY cityHash64(trace_id) LIMIT {int(per_group)} BY project, {GROUP_KEY}""")


def window_slice(ch: Client, minutes_from: datetime, anomalies_from: datetime) -> dict[str, pa.Table]:
    """What the window detectors and the alert rules read: the minute rollups from
    ``minutes_from`` on, recent anomalies, firing alerts and the jobs' watermarks."""
    return {
        "minute_rollup": arrow(ch, f"SELECT * FROM minute_rollup WHERE minute >= {ts(minutes_from)}"),
        "anomalies": arrow(ch, f"SELECT * FROM anomalies WHERE window_end > {ts(anomalies_from)}"),
        "alerts": arrow(ch, "SELECT * FROM alerts WHERE state = 'firing'"),
        "analytics_state": all_states(ch),
    }


# ── writing back ──────────────────────────────────────────────────────────────────────────────
def stored_anomaly_ids(ch: Client, ids: Iterable[str]) -> set[str]:
    listed = ", ".join(quote(i) for i in ids)
    if not listed:
        return set()
    return {r[0] for r in ch.query(f"SELECT anomaly_id FROM anomalies WHERE anomaly_id IN ({listed})").result_rows}


def stored_keys(ch: Client, table: str, keys: Sequence[str], lo: datetime, hi: datetime) -> pa.Table:
    """The keys of a per-minute table's rows with minute in [lo, hi]."""
    return arrow(
        ch, f"SELECT {', '.join(keys)} FROM {table} WHERE minute >= {ts(lo)} AND minute <= {ts(hi)}"
    )


def insert(ch: Client, table: str, rows: pa.Table, version: int, *, deleted: bool | None = None) -> None:
    """Insert rows into a ``*_store`` table with this version (and is_deleted, for tombstones)."""
    if rows.num_rows == 0:
        return
    rows = rows.append_column("version", pa.array([version] * rows.num_rows, pa.uint64()))
    if deleted is not None:
        rows = rows.append_column("is_deleted", pa.array([int(deleted)] * rows.num_rows, pa.uint8()))
    ch.insert_arrow(f"{table}_store", rows)


def update_span_costs(ch: Client, database: str, changed: pa.Table) -> None:
    """Copy new costs into ``span_store.cost_usd`` (what the traces view and SQL users sum): one
    synchronous mutation that rewrites only that column of the parts holding those spans."""
    if changed.num_rows == 0:
        return
    run = uuid.uuid4().hex
    keys = pc.binary_join_element_wise(run, changed["trace_id"], changed["span_id"], "/")
    rows = pa.table({"run_id": pa.array([run] * changed.num_rows), "key": keys, "cost_usd": changed["cost_usd"]})
    ch.insert_arrow("span_cost_updates", rows)
    join = quote(f"{database}.span_cost_updates")
    key = f"concat({quote(run)}, '/', trace_id, '/', span_id)"
    try:
        ch.command(
            f"ALTER TABLE span_store UPDATE cost_usd = joinGet({join}, 'cost_usd', {key}) "
            f"WHERE joinGet({join}, 'present', {key}) = 1",
            settings={"mutations_sync": 2},
        )
    finally:
        ch.command(f"ALTER TABLE span_cost_updates DELETE WHERE run_id = {quote(run)}", settings={"mutations_sync": 2})


def duckdb_sql_rows(ch: Client, *, database: str = "", project: str | None = None,
                    tables: Sequence[str] = ()) -> Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]:  # fmt: skip
    """Run DuckDB SQL with ``$name`` parameters on ClickHouse (values inlined, then translated by
    collector.clickhouse.dialect): how analytics.rollups.overview reads a ClickHouse store. With a
    ``project``, every read of ``tables`` sees that project's rows only (as the SQL sandbox)."""
    from collector.clickhouse.dialect import from_duckdb

    def literal(value: Any) -> str:
        if isinstance(value, datetime):
            return f"TIMESTAMP '{value.isoformat(sep=' ', timespec='microseconds')}'"
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return repr(value)
        raise TypeError(f"no literal for {type(value).__name__}")

    settings: dict[str, Any] = {}
    if project is not None:  # project names are letters, digits, '.', '_' and '-' (collector.keys)
        where = f"project = \\'{project}\\'"
        settings["additional_table_filters"] = "{" + ", ".join(f"'{database}.{t}': '{where}'" for t in tables) + "}"

    def rows(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        inlined = re.sub(r"\$([a-z_]+)", lambda m: literal(params[m.group(1)]), sql)
        return [tuple(v.replace(tzinfo=None) if isinstance(v, datetime) else v for v in row)
                for row in ch.query(from_duckdb(inlined), settings=settings).result_rows]  # fmt: skip

    return rows
