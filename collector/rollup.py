"""Keeps ``trace_summary`` (behind the ``traces`` and ``sessions`` views) up to date with ``spans``.

Grouping millions of spans per query is too slow for the ``traces`` view (about 2 s for 5 M
spans on two cores), so every trace has one summary row. Spans stored since the last run (the
``received_at`` watermark) are grouped into partial aggregates and merged into the summary in one
transaction: cost is proportional to the new spans, not to the table. A large backlog (the first
run over an existing file) is merged in chunks of ``CHUNK_SPANS``, one transaction each, so it
fits a small ``TRACEHOUSE_DUCKDB_MEMORY_LIMIT``. Readers call
:func:`catch_up` before they query traces, so the view is never behind the spans a query can see.

This assumes what the single writer guarantees: batches are stamped with ``received_at`` in
commit order, and a span re-sent with the same ids is not stored twice. A job that changes
stored spans later (the cost job filling ``cost_usd``) calls :func:`refresh_traces`.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Iterable
from datetime import datetime

import duckdb

from collector.project_scope import unscoped
from collector.store import Store

logger = logging.getLogger(__name__)

# One merge at a time per database: two would both try to move the same watermark.
_locks: weakref.WeakKeyDictionary[Store, threading.Lock] = weakref.WeakKeyDictionary()
_locks_guard = threading.Lock()

# Orders spans so the root comes first, then the earliest; the first one names the trace.
_ROOT_FIRST = "(parent_span_id IS NOT NULL, start_time)"


def _pick(column: str) -> str:
    return f"arg_min({column}, {_ROOT_FIRST}) FILTER (WHERE {column} IS NOT NULL) AS {column}"


# A number standing for the trace id (its last 16 hex digits): joining and looking up on it reads
# 8 bytes per summary row instead of a 32-character string, ten times faster. Not unique in
# principle, so every use also compares trace_id on the few rows it finds.
TRACE_KEY = "coalesce(try_cast('0x' || right({0}, 16) AS UBIGINT), 0)"

# Partial aggregates of the spans matching {where}, one row per trace, in trace_summary's shape.
_PARTIAL = f"""
SELECT trace_id,
       {TRACE_KEY.format("trace_id")} AS trace_key,
       {_pick("project")},
       bool_or(parent_span_id IS NULL) AS has_root,
       arg_min(name, {_ROOT_FIRST}) AS root_name,
       {_pick("workflow_name")},
       {_pick("service_name")},
       {_pick("session_id")},
       {_pick("user_id")},
       min(start_time) AS start_time,
       max(end_time) AS end_time,
       date_diff('microsecond', min(start_time), max(end_time)) / 1000.0 AS duration_ms,
       count(*) AS span_count,
       count(*) FILTER (WHERE status = 'error') AS error_count,
       count(*) FILTER (WHERE kind = 'llm') AS llm_calls,
       count(*) FILTER (WHERE kind = 'tool') AS tool_calls,
       count(*) FILTER (WHERE kind = 'handoff') AS handoffs,
       list_sort(list_distinct(list(agent_name))) AS agents,
       list_sort(list_distinct(list(model))) AS models,
       coalesce(sum(input_tokens), 0) AS input_tokens,
       coalesce(sum(output_tokens), 0) AS output_tokens,
       coalesce(sum(cached_tokens), 0) AS cached_tokens,
       coalesce(sum(reasoning_tokens), 0) AS reasoning_tokens,
       sum(cost_usd) AS cost_usd
FROM spans
WHERE {{where}}
GROUP BY trace_id
ORDER BY min(start_time)  -- summary rows land in time order: start_time zone maps stay tight
"""

_COLUMNS = (
    "trace_id, trace_key, project, has_root, root_name, workflow_name, service_name, session_id, user_id, "
    "start_time, end_time, duration_ms, span_count, error_count, llm_calls, tool_calls, handoffs, "
    "agents, models, input_tokens, output_tokens, cached_tokens, reasoning_tokens, cost_usd"
)

# The stored row names the trace unless the new spans bring the root it lacked, or started earlier.
_NEW_WINS = "(NOT s.has_root AND (p.has_root OR p.start_time < s.start_time))"


def _prefer(column: str) -> str:
    return f"CASE WHEN {_NEW_WINS} THEN coalesce(p.{column}, s.{column}) ELSE coalesce(s.{column}, p.{column}) END AS {column}"


def _add(column: str) -> str:
    return f"s.{column} + p.{column} AS {column}"


# A stored summary (s, in _rollup_old) merged with the partial of its new spans (p, in _rollup_new).
_MERGED = f"""
SELECT s.trace_id, s.trace_key,
    {_prefer("project")},
    s.has_root OR p.has_root AS has_root,
    CASE WHEN {_NEW_WINS} THEN p.root_name ELSE s.root_name END AS root_name,
    {_prefer("workflow_name")},
    {_prefer("service_name")},
    {_prefer("session_id")},
    {_prefer("user_id")},
    least(s.start_time, p.start_time) AS start_time,
    greatest(s.end_time, p.end_time) AS end_time,
    date_diff('microsecond', least(s.start_time, p.start_time),
              greatest(s.end_time, p.end_time)) / 1000.0 AS duration_ms,
    {_add("span_count")}, {_add("error_count")}, {_add("llm_calls")}, {_add("tool_calls")},
    {_add("handoffs")},
    list_sort(list_distinct(list_concat(s.agents, p.agents))) AS agents,
    list_sort(list_distinct(list_concat(s.models, p.models))) AS models,
    {_add("input_tokens")}, {_add("output_tokens")}, {_add("cached_tokens")}, {_add("reasoning_tokens")},
    CASE WHEN s.cost_usd IS NULL THEN p.cost_usd
         WHEN p.cost_usd IS NULL THEN s.cost_usd
         ELSE s.cost_usd + p.cost_usd END AS cost_usd
FROM _rollup_old AS s JOIN _rollup_new AS p USING (trace_id)
"""

# Before any run the watermark is NULL; this then takes every stored span.
_EPOCH = datetime(1, 1, 1)

# Spans merged per transaction. The grouping of a chunk (one row per trace with lists and
# arg_min values) and its uncommitted summary rows must fit DuckDB's memory limit: the one-off
# backfill of a file from before the summary table (5 M spans) in one step failed at 64 MB;
# 300,000 spans did not fit 32 MB, 30,000 did (tests/collector/test_rollup_memory.py), and the
# grouping's memory grows with DuckDB's threads, so 100,000 leaves room at 64 MB on bigger
# machines. Ingest's catch-up once a second is far below this.
CHUNK_SPANS = 100_000
# Spans recomputed per transaction by refresh_traces (the cost job's traces), while ingest shares
# the same limit: 300,000 spans' traces did not fit 32 MB at once (tests/collector/test_rollup_memory.py).
REFRESH_SPANS = 20_000


def _lock_for(store: Store) -> threading.Lock:
    with _locks_guard:
        lock = _locks.get(store)
        if lock is None:
            lock = _locks[store] = threading.Lock()
        return lock


def _watermark(con: duckdb.DuckDBPyConnection) -> datetime | None:
    row = con.execute("SELECT max(watermark) FROM trace_summary_state").fetchone()
    return row[0] if row else None


def catch_up(store: Store, con: duckdb.DuckDBPyConnection | None = None) -> int:
    """Merge every span stored since the last run into trace_summary; return how many spans.

    On a read-only store (the CLI on a stopped collector's file) the summary cannot be written:
    given the cursor that will run the query, the merge goes into TEMP copies on that cursor,
    which shadow the stored tables for the ``traces`` and ``sessions`` views of that cursor only.
    """
    store = unscoped(store)  # a project-scoped reader still merges into the stored summary
    if store.read_only:
        return _catch_up_overlay(con) if con is not None else 0
    merged = 0
    with _lock_for(store):
        cur = store.cursor()
        try:
            while True:  # one transaction per chunk: its memory is given back at each commit
                cur.execute("BEGIN")
                count, more = _merge_pending(cur)
                cur.execute("COMMIT")
                merged += count
                if not more:
                    return merged
        except BaseException:
            _rollback(cur)
            raise
        finally:
            cur.close()


def _catch_up_overlay(con: duckdb.DuckDBPyConnection) -> int:
    if _pending_until(con) is None:
        return 0
    con.execute("CREATE OR REPLACE TEMP TABLE trace_summary AS SELECT * FROM main.trace_summary")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE trace_summary_state AS SELECT * FROM main.trace_summary_state"
    )
    merged, more = _merge_pending(con)
    while more:
        count, more = _merge_pending(con)
        merged += count
    return merged


def _pending_until(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """The newest received_at not yet merged, or None when the summary is current."""
    low = _watermark(con) or _EPOCH
    return con.execute(
        "SELECT max(received_at) FROM spans WHERE received_at > ?", [low]
    ).fetchone()[0]


def chunk_end(con: duckdb.DuckDBPyConnection, low: datetime, high: datetime, spans: int) -> datetime:
    """The received_at that ends the next chunk of about ``spans`` spans after ``low``.

    A batch shares one stamp, so a chunk ends on a stamp and may hold a batch more. The top-N
    keeps ``spans`` timestamps (a few MB) whatever the backlog; the analytics jobs chunk with it too.
    """
    end = con.execute(
        "SELECT max(received_at) FROM (SELECT received_at FROM spans WHERE received_at > ? "
        "AND received_at <= ? ORDER BY received_at LIMIT ?)",
        [low, high, spans],
    ).fetchall()[0][0]  # fetchall: a finished result, so the cursor is free for the next query
    return end or high


def _chunk_end(con: duckdb.DuckDBPyConnection, low: datetime, high: datetime) -> datetime:
    return chunk_end(con, low, high, CHUNK_SPANS)


def _merge_pending(con: duckdb.DuckDBPyConnection) -> tuple[int, bool]:
    """Merge the next chunk of spans above the watermark into trace_summary; the caller holds the
    transaction. Returns (spans merged, whether more are pending)."""
    low = _watermark(con) or _EPOCH
    pending = _pending_until(con)
    if pending is None:
        return 0, False
    high = _chunk_end(con, low, pending)
    where = "received_at > ? AND received_at <= ?"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _rollup_new AS {_PARTIAL.format(where=where)}", [low, high]
    )
    stale = _stored_summaries(con, "_rollup_new")
    if stale:
        con.execute(
            "DELETE FROM trace_summary WHERE rowid IN (SELECT unnest(?::BIGINT[]))", [stale]
        )
        con.execute(f"INSERT INTO trace_summary ({_COLUMNS}) {_MERGED}")
    con.execute(
        f"INSERT INTO trace_summary ({_COLUMNS}) SELECT {_COLUMNS} FROM _rollup_new "
        "WHERE trace_id NOT IN (SELECT trace_id FROM _rollup_old) ORDER BY start_time"
    )
    merged = con.execute("SELECT sum(span_count) FROM _rollup_new").fetchone()[0]
    con.execute("DROP TABLE _rollup_new")
    con.execute("DROP TABLE _rollup_old")
    con.execute("DELETE FROM trace_summary_state")
    con.execute("INSERT INTO trace_summary_state (id, watermark) VALUES (1, ?)", [high])
    return int(merged or 0), high < pending


def _candidate_rowids(con: duckdb.DuckDBPyConnection, source: str) -> list[int]:
    """Rowids of summaries whose trace_key matches one in ``source``: a join on the narrow key
    column; the caller confirms on trace_id (two trace ids may share a key)."""
    return [
        r[0]
        for r in con.execute(
            f"SELECT s.rowid FROM trace_summary AS s JOIN {source} AS p ON s.trace_key = p.trace_key"
        ).fetchall()
    ]


def _stored_summaries(con: duckdb.DuckDBPyConnection, source: str) -> list[int]:
    """Copy the stored summaries of the traces in ``source`` (a temp table with trace_id and
    trace_key) into TEMP _rollup_old; return their rowids. Candidates come from a join on the
    narrow key column, then are fetched by rowid and confirmed on trace_id."""
    candidates = _candidate_rowids(con, source)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _rollup_old AS SELECT rowid AS rid, * FROM trace_summary "
        f"WHERE rowid IN (SELECT unnest(?::BIGINT[])) AND trace_id IN (SELECT trace_id FROM {source})",
        [candidates],
    )
    return [r[0] for r in con.execute("SELECT rid FROM _rollup_old").fetchall()]


class Summarizer:
    """Background catch_up every ``interval_s`` inside the collector, and a last one at stop.

    Queries catch up themselves anyway; this keeps the summary current between queries, so the
    first query after a burst of ingest is not the one that pays, and the file a stopped
    collector leaves has a current summary.
    """

    def __init__(self, store: Store, interval_s: float = 1.0) -> None:
        self.store = store
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="trace-summary", daemon=True)

    def start(self) -> None:
        if not self.store.read_only:
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                catch_up(self.store)
            except Exception:  # keep summarizing; the next run retries the same spans
                logger.exception("trace summary catch-up failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
            try:
                catch_up(self.store)
            except duckdb.Error:  # the store may already be closed by its owner
                logger.warning("last trace summary catch-up skipped: database not available")


def refresh_traces(store: Store, trace_ids: Iterable[str]) -> None:
    """Recompute the summaries of these traces from their spans (after spans were updated in place,
    e.g. ``cost_usd`` by the cost job). Traces not summarized yet are left to the next catch_up,
    and only spans under the watermark are counted: newer ones are merged by that catch_up.

    In slices of about ``REFRESH_SPANS`` spans, one transaction each, so the memory does not grow
    with the number of traces: an analytics chunk's 10,000 priced traces in one statement ran out
    of memory at a 64 MB limit under ingest. Each trace is recomputed whole in one slice.
    """
    ids = sorted(set(trace_ids))
    if not ids or store.read_only:
        return
    for part in _refresh_slices(store, ids):
        _refresh(store, part)


def _refresh_slices(store: Store, ids: list[str]) -> list[list[str]]:
    """The summarized ones of ``ids`` in slices of at most ``REFRESH_SPANS`` stored spans (a bigger
    trace alone), in start-time order: a slice's spans then sit in few row groups."""
    cur = store.cursor()
    try:
        _id_table(cur, ids)
        candidates = _candidate_rowids(cur, "_rollup_ids")
        rows = cur.execute(
            "SELECT trace_id, span_count FROM trace_summary WHERE rowid IN (SELECT unnest(?::BIGINT[])) "
            "AND trace_id IN (SELECT trace_id FROM _rollup_ids) ORDER BY start_time, trace_id",
            [candidates],
        ).fetchall()
        cur.execute("DROP TABLE _rollup_ids")
    finally:
        cur.close()
    slices: list[list[str]] = []
    spans = 0
    for trace_id, count in rows:
        if not slices or spans + count > REFRESH_SPANS:
            slices.append([])
            spans = 0
        slices[-1].append(trace_id)
        spans += count
    return slices


def _id_table(con: duckdb.DuckDBPyConnection, ids: list[str]) -> None:
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _rollup_ids AS SELECT trace_id, {TRACE_KEY.format('trace_id')} "
        "AS trace_key FROM (SELECT DISTINCT unnest(?::VARCHAR[]) AS trace_id)",
        [ids],
    )


def _refresh(store: Store, ids: list[str]) -> None:
    """One slice of :func:`refresh_traces`, in one transaction under the merge lock."""
    with _lock_for(store):
        con = store.cursor()
        try:
            con.execute("BEGIN")
            high = _watermark(con)
            _id_table(con, ids)
            stale = _stored_summaries(con, "_rollup_ids") if high is not None else []
            if not stale:
                con.execute("ROLLBACK")
                return
            low, top = con.execute(
                "SELECT min(start_time), max(end_time) FROM _rollup_old"
            ).fetchone()
            con.execute(
                "DELETE FROM trace_summary WHERE rowid IN (SELECT unnest(?::BIGINT[]))", [stale]
            )
            # The traces' time window lets zone maps skip the row groups of other times.
            where = (
                "trace_id IN (SELECT trace_id FROM _rollup_old) AND start_time >= ? AND start_time <= ? "
                "AND received_at <= ?"
            )
            con.execute(
                f"INSERT INTO trace_summary ({_COLUMNS}) {_PARTIAL.format(where=where)}",
                [low, top, high],
            )
            con.execute("DROP TABLE _rollup_ids")
            con.execute("DROP TABLE _rollup_old")
            con.execute("COMMIT")
        except BaseException:
            _rollback(con)
            raise
        finally:
            con.close()


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass
