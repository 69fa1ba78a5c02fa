"""The single writer: one thread owns the DuckDB write connection and group-commits spans.

Receivers ``submit`` the spans of one request (an Arrow table from collector.prepare, made in
a worker process or a decode thread) and get a Future that resolves only after the
transaction holding those rows has committed (DESIGN.md decision 3). Memory is bounded: rows
are counted from submit until their batch commits, and a submit that would pass
``queue_max_spans`` raises :class:`QueueFull` at once (the receivers answer UNAVAILABLE / 503).

Exactly once (decision 4): each batch drops the spans already stored or repeated in it first
(collector.dedup). The plan of its INSERTs is collector.insert_plan's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import duckdb
import pyarrow as pa

from collector.agent_resolver import AgentResolver
from collector.arrow_rows import micros, rows_to_arrow
from collector.dedup import first_unstored, stored_keys
from collector.errors import one_line
from collector.insert_plan import INSERT_SLICE_BYTES, agent_updates_table, is_heavy, row_groups, slices
from collector.model import SpanRow
from collector.settings import Settings
from collector.storage_faults import StorageHealth, is_storage_error
from collector.store import Store

log = logging.getLogger(__name__)
T = TypeVar("T")

# A batch holds at most BATCH_MAX_BYTES of Arrow data (one larger request goes alone): at the 64MB
# DuckDB default four 15 MB requests of long prompts in one transaction failed at COMMIT. How a
# batch's rows then go in (slices, heavy spans' row groups) is collector.insert_plan's.
BATCH_MAX_BYTES = 16 * 1024 * 1024


class QueueFull(Exception):
    """The writer holds as many spans as it may; retry later (transient)."""


class WriterClosed(Exception):
    """The writer has stopped and accepts nothing more (transient for a client: retry elsewhere)."""


@dataclass(slots=True)
class _Spans:
    table: pa.Table  # the spans schema of collector.arrow_rows, without received_at
    future: Future[int]
    queued_at: float  # monotonic; the group-commit window counts from the oldest submission
    nbytes: int  # the table's Arrow buffers: bounds a batch's memory (BATCH_MAX_BYTES)


@dataclass(slots=True)
class _Task:
    fn: Callable[[duckdb.DuckDBPyConnection], Any]
    future: Future[Any]


@dataclass
class WriterStats:
    """Counters since start; read by /metrics."""

    received: int = 0  # spans submitted
    stored: int = 0  # spans newly stored (committed)
    duplicates: int = 0  # spans dropped as already stored or repeated
    failed: int = 0  # spans whose batch failed to commit
    batches: int = 0
    updates: int = 0  # stored rows updated by agent attribution


class BatchWriter:
    """Group commit through one thread.

    ``resolver`` fills agent names from ancestors (collector.agent_resolver); ``observer(seconds,
    spans)`` sees each commit (metrics).
    """

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        resolver: AgentResolver | None = None,
        observer: Callable[[float, int], None] | None = None,
    ) -> None:
        self._store = store
        self._con = self._open_connection()
        self.storage = StorageHealth()  # disk full / unwritable: logged once, connection reopened
        self._max_batch = settings.batch_max_spans
        self._interval = settings.batch_interval_ms / 1000.0
        self._max_queued = settings.queue_max_spans
        self._resolver = resolver
        self._observer = observer
        self._cond = threading.Condition()
        self._queue: deque[_Spans | _Task] = deque()
        self._pending_spans = 0  # submitted and not yet committed (or failed)
        self._closing = False
        self.stats = WriterStats()
        self._last_stamp = datetime.min
        self._open_rows = False  # rows committed since the writer's last checkpoint
        self._thread = threading.Thread(target=self._run, name="tracehouse-writer", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        """True while the writer thread runs and accepts work."""
        return self._thread.is_alive() and not self._closing

    @property
    def queue_depth(self) -> int:
        """Spans submitted and not yet committed."""
        return self._pending_spans

    def submit(self, spans: pa.Table | list[SpanRow]) -> Future[int]:
        """Queue spans (an Arrow table from collector.prepare, or rows); the Future gives how
        many were newly stored, after commit."""
        table = spans if isinstance(spans, pa.Table) else rows_to_arrow(spans)
        count = table.num_rows
        future: Future[int] = Future()
        with self._cond:
            if self._closing:
                raise WriterClosed("the collector is shutting down")
            if self._pending_spans + count > self._max_queued:
                raise QueueFull(
                    f"ingest queue is full ({self._pending_spans} spans waiting, limit {self._max_queued})"
                )
            self.stats.received += count
            if not count:
                future.set_result(0)
                return future
            self._pending_spans += count
            self._queue.append(_Spans(table, future, time.monotonic(), table.nbytes))
            self._cond.notify()
        return future

    def execute(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> Future[T]:
        """Run fn(connection) in the writer thread inside its own transaction."""
        future: Future[T] = Future()
        with self._cond:
            if self._closing:
                raise WriterClosed("the collector is shutting down")
            self._queue.append(_Task(fn, future))
            self._cond.notify()
        return future

    def close(self, timeout: float | None = None) -> None:
        """Commit everything queued, then stop the thread."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout)

    # -- writer thread -------------------------------------------------------------------------

    def _next_work(self) -> tuple[list[_Spans], _Task | None] | None:
        """Wait for work: a batch of span submissions (up to max_batch spans) or one task."""
        with self._cond:
            while not self._queue:
                if self._closing:
                    return None
                self._cond.wait()
            if isinstance(self._queue[0], _Task):
                return [], self._queue.popleft()  # type: ignore[return-value]
            # Group commit: let concurrent requests join for up to one interval after the oldest
            # was queued (spans that waited through the previous commit go at once).
            deadline = self._queue[0].queued_at + self._interval  # type: ignore[union-attr]
            while not self._closing and self._queued_spans() < self._max_batch:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            batch: list[_Spans] = []
            count = size = 0
            while self._queue and isinstance(self._queue[0], _Spans):
                item = self._queue[0]
                if batch and (count + item.table.num_rows > self._max_batch  # type: ignore[union-attr]
                              or size + item.nbytes > BATCH_MAX_BYTES):  # type: ignore[union-attr]  # fmt: skip
                    break
                self._queue.popleft()
                if not item.future.set_running_or_notify_cancel():
                    # The caller gave up (client went away) before commit: nothing to acknowledge.
                    self._pending_spans -= item.table.num_rows  # type: ignore[union-attr]
                    continue
                batch.append(item)  # type: ignore[arg-type]
                count += item.table.num_rows  # type: ignore[union-attr]
                size += item.nbytes  # type: ignore[union-attr]
            return batch, None

    def _queued_spans(self) -> int:
        return sum(item.table.num_rows for item in self._queue if isinstance(item, _Spans))

    def _open_connection(self) -> Any:
        """The connection the writer thread uses (a subclass for another store overrides it)."""
        return self._store.write_connection

    def _last_received_at(self) -> datetime | None:
        """received_at of the last stored batch: stamps continue above it after a restart."""
        # fetchall: a result left unfinished would make the next register() fail
        rows = self._con.execute("SELECT max(received_at) FROM spans").fetchall()
        return rows[0][0] if rows else None

    def _run(self) -> None:
        try:
            self._last_stamp = self._last_received_at() or datetime.min
        except Exception as exc:  # noqa: BLE001 - stamps then start from the clock
            log.error("writer: cannot read the last received_at: %s", one_line(exc, with_type=True))
        while True:
            work = self._next_work()
            if work is None:
                return
            batch, task = work
            try:
                if task is not None:
                    self._run_task(task)
                elif batch:
                    self._commit_batch(batch)
            except Exception:
                log.exception("writer: unexpected error; continuing")

    def _run_task(self, task: _Task) -> None:
        if not task.future.set_running_or_notify_cancel():
            return
        con = self._con
        try:
            con.execute("BEGIN")
            result = task.fn(con)
            con.execute("COMMIT")
        except BaseException as exc:  # noqa: BLE001 - the caller gets the error via the future
            self._rollback()
            if is_storage_error(exc):
                self._con = self.storage.failed(exc, self._store)
            task.future.set_exception(exc)
        else:
            task.future.set_result(result)

    def _commit_batch(self, batch: list[_Spans], *, isolate: bool = True) -> None:
        total = sum(item.table.num_rows for item in batch)
        started = time.perf_counter()
        try:
            counts, duplicates, updates = self._write(batch)
        except Exception as exc:  # noqa: BLE001 - a failed commit must not stop the writer
            self._rollback()
            if is_storage_error(exc):  # not this batch's fault: refuse it whole, say so once
                self._con = self.storage.failed(exc, self._store)
                self._fail(batch, total, exc)
                return
            if isolate and len(batch) > 1 and not isinstance(exc, duckdb.IOException):
                # One request's bad row must not fail the others: retry each in its own transaction.
                for item in batch:
                    self._commit_batch([item], isolate=False)
                return
            log.error(
                "batch of %d spans not stored (nothing acknowledged): %s", total, one_line(exc, with_type=True)
            )
            self._fail(batch, total, exc)
            return
        if self.storage.failing:
            self.storage.recovered(self._store)
        elapsed = time.perf_counter() - started
        self.stats.stored += total - duplicates
        self.stats.duplicates += duplicates
        self.stats.updates += updates
        self.stats.batches += 1
        if self._observer is not None:
            self._observer(elapsed, total)
        self._finish(total, failed=False)
        for item, count in zip(batch, counts):
            item.future.set_result(count)

    def _fail(self, batch: list[_Spans], total: int, exc: BaseException) -> None:
        error = RuntimeError(f"spans not stored: {one_line(exc, with_type=True)}")
        self._finish(total, failed=True)
        for item in batch:
            item.future.set_exception(error)

    def _finish(self, total: int, *, failed: bool) -> None:
        with self._cond:
            self._pending_spans -= total
            if failed:
                self.stats.failed += total

    def _write(self, batch: list[_Spans]) -> tuple[list[int], int, int]:
        """One transaction: skip stored and repeated spans, insert the rest, apply agent updates.

        Works on the batch's Arrow columns; Python touches only the key columns (one set of them
        per batch, a lookup per span only when some were stored) and the resolver's six columns.
        """
        tables = [item.table for item in batch]
        table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
        trace_ids = table.column("trace_id").to_pylist()
        span_ids = table.column("span_id").to_pylist()
        # The batch stays registered for the dedup query and the insert (one call each way: under
        # load every call into DuckDB gives up the GIL and waits to get it back).
        con = self._con
        con.register("_th_batch", table)
        try:
            return self._write_registered(batch, table, trace_ids, span_ids)
        finally:
            con.unregister("_th_batch")

    def _write_registered(
        self, batch: list[_Spans], table: pa.Table, trace_ids: list[str], span_ids: list[str]
    ) -> tuple[list[int], int, int]:
        """:meth:`_write` once the batch is registered as ``_th_batch``."""
        con = self._con
        registered = table
        keys = list(zip(trace_ids, span_ids))
        starts = micros(table.column("start_time"))
        keep, counts = first_unstored([item.table.num_rows for item in batch], keys,
                                      stored_keys(con, "_th_batch", starts))
        duplicates = 0 if keep is None else len(keys) - len(keep)
        if duplicates:  # keep is a list then
            table = table.take(pa.array(keep, pa.int64()))
            keys = [keys[index] for index in keep]
            trace_ids, span_ids = [k[0] for k in keys], [k[1] for k in keys]
            starts = [starts[index] for index in keep]
        updates: list[tuple[str, str, Any, str]] = []
        if self._resolver is not None and keys:
            agent_names, updates = self._resolver.process_columns(
                trace_ids,
                span_ids,
                table.column("parent_span_id").to_pylist(),
                table.column("kind").to_pylist(),
                table.column("agent_name").to_pylist(),
                starts,
            )
            if agent_names is not None:
                column = table.schema.get_field_index("agent_name")
                table = table.set_column(
                    column, table.schema.field(column), pa.array(agent_names, pa.string())
                )
        # One call for the whole transaction: BEGIN, the INSERTs, the agent updates, COMMIT. A large
        # batch is inserted slice by slice (DuckDB's working memory is per statement).
        sources: list[str] = []
        parts: list[pa.Table] = []
        nbytes = table.nbytes if keys else 0  # summed over every buffer: read once
        if keys:
            parts = slices(table, nbytes, INSERT_SLICE_BYTES)
            if len(parts) == 1:
                if table is not registered:
                    con.register("_th_batch", table)  # replaces the registration above
                sources = ["_th_batch"]
            else:
                sources = [f"_th_slice{index}" for index in range(len(parts))]
                for name, part in zip(sources, parts, strict=True):
                    con.register(name, part)
        heavy = is_heavy(len(keys), nbytes)
        # The transactions' INSERTs: the whole batch, or heavy spans' row groups. Each transaction
        # has one received_at of its own (readers follow `spans` by that watermark).
        groups = row_groups(sources, [p.nbytes for p in parts]) if heavy else [sources] if sources else []
        transactions = []
        for names in groups:
            stamp = self._stamp_sql()
            transactions.append(
                [f"INSERT INTO spans BY NAME SELECT *, {stamp} AS received_at FROM {name}" for name in names]
            )
        tail: list[str] = []
        if updates:
            con.register("_th_agents", agent_updates_table(updates))
            tail.append(
                "UPDATE spans SET agent_name = u.agent_name FROM _th_agents u "
                "WHERE spans.trace_id = u.trace_id AND spans.span_id = u.span_id "
                "AND spans.start_time = u.start_time AND spans.agent_name IS NULL"
            )
        try:
            if heavy:
                self._insert_in_row_groups(transactions, tail)
            else:
                con.execute(";\n".join(["BEGIN", *(transactions[0] if transactions else []), *tail, "COMMIT"]))
                self._open_rows = self._open_rows or bool(transactions)
        finally:
            extra = [name for name in sources if name != "_th_batch"]  # _write unregisters _th_batch
            for name in extra + (["_th_agents"] if updates else []):
                con.unregister(name)
        return counts, duplicates, len(updates)

    def _insert_in_row_groups(self, transactions: list[list[str]], tail: list[str]) -> None:
        """Heavy spans: each transaction's rows become a row group of their own (collector.insert_plan)."""
        if self._open_rows:
            self._close_row_group()
        for index, inserts in enumerate(transactions):
            last = index == len(transactions) - 1
            self._con.execute(";\n".join(["BEGIN", *inserts, *(tail if last else []), "COMMIT"]))
            self._open_rows = True
            self._close_row_group()

    def _close_row_group(self) -> None:
        """CHECKPOINT: the rows committed so far become a row group of their own."""
        try:
            self._con.execute("CHECKPOINT")
        except duckdb.Error as exc:  # the rows stay in the open group; reads may need more memory
            log.warning("writer: checkpoint after large spans failed: %s", one_line(exc, with_type=True))
        else:
            self._open_rows = False

    def _stamp_sql(self) -> str:
        return f"TIMESTAMP '{self._stamp().isoformat(sep=' ')}'"

    def _stamp(self) -> datetime:
        """received_at for a batch: strictly increasing in commit order, even if the clock steps
        back, so readers can follow ``spans`` with a received_at watermark (collector.rollup)."""
        now = datetime.now(UTC).replace(tzinfo=None)
        if now <= self._last_stamp:
            now = self._last_stamp + timedelta(microseconds=1)
        self._last_stamp = now
        return now

    def _rollback(self) -> None:
        try:
            self._con.execute("ROLLBACK")
        except duckdb.Error:
            pass  # no transaction was open
