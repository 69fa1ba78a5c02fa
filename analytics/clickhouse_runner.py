"""The analytics jobs on a ClickHouse store: the same jobs, computed in a DuckDB scratch database.

Why not native ClickHouse SQL: the jobs' logic (costs, trace features, minute rollups with their
histograms, the detectors' inputs) is a few hundred lines of DuckDB SQL with tested semantics.
A second dialect of it would drift. Instead, per chunk of new spans, this runner copies out of
ClickHouse exactly what the DuckDB jobs read (the spans of the touched traces and minutes, without
payloads, and the derived rows of those minutes) into an in-memory DuckDB database with the
same schema, runs the unchanged :class:`AnalyticsRunner` steps there, and writes the rows they
recomputed back with ``insert_arrow`` into ReplacingMergeTree tables (a higher ``version``
replaces a row; ``is_deleted`` rows retire per-minute keys that vanished). Work stays
proportional to the new spans, as on DuckDB, and results are the same row for row.

Unlike DuckDB's single writer, several stateless collectors stamp ``received_at`` and their
inserts become visible in no strict order, so the watermark only advances to ``now - settle``:
a span's insert is visible within that time of its stamp.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from clickhouse_connect.driver.client import Client

from analytics import clickhouse_sql as chsql
from analytics import forest, queries, rollups
from analytics.anomaly import Scorer, first_per_id
from analytics.notify import WebhookNotifier
from analytics.offline import DirectWriter
from analytics.pricing import PriceTable
from analytics.rules import Rules
from analytics.runner import JOB, WINDOW_JOB, AnalyticsRunner, utcnow
from collector.model import SPAN_COLUMNS
from collector.settings import Settings
from collector.store import Store

logger = logging.getLogger(__name__)

SETTLE_S = 10.0  # how long after its received_at stamp a span's insert is surely visible

# Columns identifying a row of each per-minute table (the ORDER BY of its *_store table).
MINUTE_KEYS = {
    "minute_rollup": ("minute", "project", "service_name", "agent_name"),
    "error_minutes": ("minute", "project", "service_name", "agent_name", "kind", "name", "error_type"),
    "call_minutes": ("minute", "project", "service_name", "agent_name", "kind", "name", "target"),
}


class ClickHouseAnalyticsRunner(AnalyticsRunner):
    """AnalyticsRunner for a ClickHouse store; ``client_factory`` opens a clickhouse-connect client
    on the store's database (one per run: clients are not shared between threads)."""

    def __init__(self, client_factory: Callable[[], Client], settings: Settings, *,
                 prices: PriceTable | None = None, rules: Rules | None = None,
                 notifier: WebhookNotifier | None = None, clock: Callable[[], datetime] = utcnow,
                 settle_s: float = SETTLE_S, scorer: Scorer = forest.score) -> None:  # fmt: skip
        self.client_factory = client_factory
        self.settle = timedelta(seconds=settle_s)
        scratch = Store(":memory:")
        super().__init__(scratch, DirectWriter(scratch), settings, prices=prices, rules=rules,
                         notifier=notifier, clock=clock, scorer=scorer)  # fmt: skip
        self._ch: Client | None = None
        self._database = ""
        self._last_version = 0
        self._warned_cluster = False
        self._chunk_lo = datetime(1970, 1, 1)

    # ── plumbing ──────────────────────────────────────────────────────────────────────────────
    @property
    def ch(self) -> Client:
        assert self._ch is not None, "only inside a run"
        return self._ch

    def _version(self) -> int:
        """Row version for this write: microseconds since the epoch, strictly increasing."""
        self._last_version = max(self._last_version + 1, time.time_ns() // 1000)
        return self._last_version

    def _load(self, tables: dict[str, pa.Table]) -> duckdb.DuckDBPyConnection:
        """A fresh scratch database holding these rows; returns a cursor on it."""
        self.store.close()
        self.store = Store(":memory:")
        self.writer = DirectWriter(self.store)
        con = self.store.write_connection
        for name, rows in tables.items():
            if rows.num_rows:
                # Only the columns DuckDB's table has (ClickHouse's may have more, e.g. project).
                have = set(con.sql(f"SELECT * FROM {name} LIMIT 0").columns)
                con.register("_load", rows.select([c for c in rows.column_names if c in have]))
                try:
                    con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM _load")
                finally:
                    con.unregister("_load")
        return self.store.cursor()

    def _scratch(self, sql: str, **tables: pa.Table) -> pa.Table:
        """Rows of the scratch database, as Arrow, with its exact column types."""
        con = self.store.cursor()
        try:
            for name, rows in tables.items():
                con.register(name, rows)
            return con.sql(sql).to_arrow_table()
        finally:
            con.close()

    # ── one run ───────────────────────────────────────────────────────────────────────────────
    @contextmanager
    def _reading(self) -> Iterator[None]:
        """One client for the whole run."""
        self._ch = self.client_factory()
        try:
            self._database = self.ch.query("SELECT currentDatabase()").result_rows[0][0]
            yield
        finally:
            self._ch = None  # the factory's to close: a store may hand out its thread's client

    def _read_state(self, job: str) -> tuple[datetime | None, str | None]:
        return chsql.read_state(self.ch, job)

    def _new_spans(self, watermark: datetime | None, now: datetime) -> tuple[int, datetime | None]:
        return chsql.new_span_range(self.ch, watermark, now - self.settle)

    def _chunk_bounds(self, lo: datetime, hi: datetime, spans: int) -> Iterable[datetime]:
        return chsql.chunk_bounds(self.ch, lo, hi, spans)

    @contextmanager
    def _chunk_reader(self, lo: datetime, hi: datetime) -> Iterator[duckdb.DuckDBPyConnection]:
        self._chunk_lo = lo
        cur = self._load(chsql.chunk_slice(self.ch, SPAN_COLUMNS, lo, hi))
        try:
            yield cur
        finally:
            cur.close()

    @contextmanager
    def _window_reader(self, affected_from: datetime | None, now: datetime) -> Iterator[duckdb.DuckDBPyConnection]:
        cur = self._load(chsql.window_slice(self.ch, *self._window_range(affected_from, now)))
        try:
            yield cur
        finally:
            cur.close()

    def _window_range(self, affected_from: datetime | None, now: datetime) -> tuple[datetime, datetime]:
        """(first minute_rollup minute, first anomaly window end) the window and alert steps read."""
        cfg = self.rules.detection
        longest = max((r.window_minutes for r in self.rules.alerts), default=0)
        recent = now - timedelta(minutes=longest)
        judged_to, _ = chsql.read_state(self.ch, WINDOW_JOB)
        starts = [t for t in (judged_to, affected_from) if t is not None]
        width = timedelta(minutes=cfg.error_rate_window_minutes)
        margin = timedelta(minutes=cfg.series_baseline_minutes) + width
        return min([recent, *(t - margin for t in starts)]), recent

    # ── where results go: ClickHouse (after the scratch database, which later steps read) ─────
    def _save_costs(self, costs: pa.Table) -> None:
        if costs.num_rows == 0:
            return
        changed = self._scratch(
            "SELECT c.trace_id, c.span_id, c.cost_usd FROM _costs c JOIN spans s USING (trace_id, span_id) "
            "WHERE s.cost_usd IS DISTINCT FROM c.cost_usd",
            _costs=costs.select(["trace_id", "span_id", "cost_usd"]),
        )

        def write(con: duckdb.DuckDBPyConnection) -> None:
            rollups.replace_rows(con, "span_costs", costs, ["trace_id", "span_id"])
            rollups.set_span_costs(con, costs)

        self._write(write)
        rows = self._scratch(
            "SELECT t.* FROM span_costs t SEMI JOIN _keys k USING (trace_id, span_id)",
            _keys=costs.select(["trace_id", "span_id"]),
        )
        chsql.insert(self.ch, "span_costs", rows, self._version())
        if self.settings.clickhouse_cluster:
            # span_store is Distributed over the shards; the join table the mutation reads would
            # hold this run's costs on one node only. Costs stay in span_costs (cost_by_* views).
            if not self._warned_cluster:
                logger.warning("analytics: on a cluster, LLM costs are in span_costs only (spans.cost_usd not filled)")
                self._warned_cluster = True
            return
        chsql.update_span_costs(self.ch, self._database, changed)

    def _save_features(self, summaries: pa.Table, traces: pa.Table) -> None:
        super()._save_features(summaries, traces)
        rows = self._scratch(
            "SELECT t.* FROM trace_features t SEMI JOIN _keys k USING (trace_id)",
            _keys=traces.select(["trace_id"]),
        )
        chsql.insert(self.ch, "trace_features", rows, self._version())

    def _save_minutes(self, minutes: pa.Table, rollup: pa.Table, errors: pa.Table,
                      calls: pa.Table) -> None:  # fmt: skip
        super()._save_minutes(minutes, rollup, errors, calls)
        if minutes.num_rows == 0:
            return
        lo, hi = rollups.earliest(minutes, "minute"), pc.max(minutes["minute"]).as_py()
        version = self._version()
        for table, keys in MINUTE_KEYS.items():
            rows = self._scratch(
                f"SELECT t.* FROM {table} t SEMI JOIN _minutes m USING (minute)",
                _minutes=minutes.select(["minute"]),
            )
            keys = tuple(k for k in keys if k in rows.column_names)
            stored = chsql.stored_keys(self.ch, table, keys, lo, hi)
            match = " AND ".join(f"t.{k} IS NOT DISTINCT FROM s.{k}" for k in keys)
            gone = self._scratch(
                f"""SELECT s.* FROM _stored s SEMI JOIN _minutes m USING (minute)
                    WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE {match})""",
                _stored=stored, _minutes=minutes.select(["minute"]),
            )  # fmt: skip
            chsql.insert(self.ch, table, rows, version, deleted=False)
            chsql.insert(self.ch, table, gone, version, deleted=True)

    def _finish(self, found: pa.Table, job: str, watermark: datetime, fingerprint: str | None,
                now: datetime) -> dict[tuple[str, str], int]:  # fmt: skip
        counts: dict[tuple[str, str], int] = {}
        if found.num_rows:
            found = first_per_id(found)
            stored = chsql.stored_anomaly_ids(self.ch, found["anomaly_id"].to_pylist())
            new = found.filter(pc.invert(pc.is_in(found["anomaly_id"], pa.array(sorted(stored), pa.string()))))
            if new.num_rows:
                self._write(lambda con: queries.insert_anomalies(con, new))
                rows = self._scratch(
                    "SELECT t.* FROM anomalies t SEMI JOIN _keys k USING (anomaly_id)",
                    _keys=new.select(["anomaly_id"]),
                )
                chsql.insert(self.ch, "anomalies", rows, self._version())
                # as queries.insert_anomalies counts them
                pairs = zip(new["project"].to_pylist(), new["kind"].to_pylist(), strict=True)
                counts = {(str(p), str(k)): n for (p, k), n in Counter(pairs).items()}
        projects: list[tuple[str, datetime]] = []
        if job == JOB:  # each project's newest span of this chunk (projects without one keep theirs)
            seen = self._scratch(
                "SELECT project, max(received_at) AS seen FROM spans, _lo WHERE received_at > _lo.lo AND received_at <= _lo.hi "
                "GROUP BY project", _lo=pa.table({"lo": [self._chunk_lo], "hi": [watermark]}),
            ).to_pylist()  # fmt: skip
            projects = [(str(r["project"]), r["seen"]) for r in seen]
        chsql.write_state(self.ch, job, watermark, fingerprint, now, self._version(), projects)
        return counts

    def _save_alerts(self, rows: pa.Table) -> None:
        super()._save_alerts(rows)
        stored = self._scratch(
            "SELECT t.* FROM alerts t SEMI JOIN _keys k USING (alert_id)", _keys=rows.select(["alert_id"])
        )
        chsql.insert(self.ch, "alerts", stored, self._version())

    def _baseline(self, cur: duckdb.DuckDBPyConnection, lo: datetime, hi: datetime, per_group: int) -> pa.Table:
        return chsql.baseline_traces(self.ch, lo, hi, per_group)
