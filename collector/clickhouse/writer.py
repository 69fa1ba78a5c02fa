"""The ClickHouse writer: BatchWriter's contract (bounded queue, group commit, acknowledge after
the insert returned, QueueFull, close flushes) with one Arrow insert per batch.

Exactly-once is the table's job (ReplacingMergeTree, read through FINAL views), not this
writer's: a re-sent span is inserted again and collapses with its first copy, so no collector
needs to know what another one stored. The counters therefore see no duplicates here.

Agent attribution without collector state (collector.agent_resolver's job on DuckDB): a span's
agent is filled from ancestors in the same batch before the insert; after the insert, the
stored link columns of the batch's traces are read back and every stored span still without an
agent whose ancestor is now stored is inserted again with the agent (a newer ``received_at``
replaces it). Whichever of two collectors storing a child and its agent concurrently reads
last sees both, so the fill happens with any number of collectors.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from collector.agent_resolver import AgentResolver
from collector.clickhouse.store import ClickHouseStore
from collector.settings import Settings
from collector.writer import BatchWriter, _Spans, _Task

log = logging.getLogger(__name__)
T = TypeVar("T")

_LINK_COLUMNS = ("trace_id", "span_id", "parent_span_id", "kind", "agent_name", "start_time")


def _resolve(columns: dict[str, list[Any]]) -> list[str | None] | None:
    """Agent names of spans from their ancestors among the given spans (None: nothing to fill)."""
    resolver = AgentResolver(max_spans=len(columns["trace_id"]) + 1, max_pending=0)
    names, _ = resolver.process_columns(*(columns[c] for c in _LINK_COLUMNS))
    return names


class ClickHouseWriter(BatchWriter):
    """Group commit into ClickHouse through one thread; see the module docstring."""

    def __init__(
        self, store: ClickHouseStore, settings: Settings, *, observer: Callable[[float, int], None] | None = None
    ) -> None:
        super().__init__(store, settings, resolver=None, observer=observer)  # type: ignore[arg-type]

    def _open_connection(self) -> Any:
        return None  # the thread's clickhouse-connect client comes from the store

    def _last_received_at(self) -> datetime | None:
        # Stamps of several collectors interleave anyway; a scan of the whole table at start-up
        # would buy nothing.
        return None

    def _run_task(self, task: _Task) -> None:
        """Run fn(store) in the writer thread, in order with the inserts (no transaction)."""
        if not task.future.set_running_or_notify_cancel():
            return
        try:
            result = task.fn(self._store)
        except BaseException as exc:  # noqa: BLE001 - the caller gets the error via the future
            task.future.set_exception(exc)
        else:
            task.future.set_result(result)

    def _rollback(self) -> None:
        pass  # an insert that failed stored nothing the readers see as acknowledged

    def _write(self, batch: list[_Spans]) -> tuple[list[int], int, int]:
        store: ClickHouseStore = self._store  # type: ignore[assignment]
        tables = [item.table for item in batch]
        table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
        link = {c: table.column(c).to_pylist() for c in _LINK_COLUMNS if c != "start_time"}
        link["start_time"] = pc.cast(table.column("start_time"), pa.int64()).to_pylist()
        names = _resolve(link)
        if names is not None:
            index = table.schema.get_field_index("agent_name")
            table = table.set_column(index, table.schema.field(index), pa.array(names, pa.string()))
            link["agent_name"] = names
        stamp = self._stamp()
        table = table.append_column("received_at", pa.array([stamp] * table.num_rows, pa.timestamp("us")))
        store.client().insert_arrow("span_store", table, settings=store.insert_settings)
        updates = 0
        if any(a is not None for a in link["agent_name"]) or any(p is not None for p in link["parent_span_id"]):
            updates = self._fill_agents(store, sorted(set(link["trace_id"])))
        return [item.table.num_rows for item in batch], 0, updates

    def _fill_agents(self, store: ClickHouseStore, trace_ids: list[str]) -> int:
        """Give stored spans of these traces their ancestors' agent; returns spans updated."""
        result = store.client().query(
            "SELECT trace_id, span_id, parent_span_id, kind, agent_name, toUnixTimestamp64Micro(start_time) "
            "FROM spans WHERE trace_id IN {traces:Array(String)}",
            parameters={"traces": trace_ids},
        )
        rows = result.result_rows
        if not rows:
            return 0
        columns = dict(zip(_LINK_COLUMNS, (list(c) for c in zip(*rows))))
        names = _resolve(columns)
        if names is None:
            return 0
        keys, agents = [], []
        for trace_id, span_id, stored, name in zip(columns["trace_id"], columns["span_id"], columns["agent_name"], names):
            if stored is None and name is not None:
                keys.append(f"{trace_id}:{span_id}")
                agents.append(name)
        if not keys:
            return 0
        store.command(
            "INSERT INTO span_store SELECT * REPLACE ("
            "CAST(transform(concat(trace_id, ':', span_id), {keys:Array(String)}, {agents:Array(String)}, '') "
            "AS LowCardinality(Nullable(String))) AS agent_name, "
            # Newer than the row it replaces even when the collector that stored it runs ahead.
            "greatest({stamp:DateTime64(6, 'UTC')}, spans.received_at + toIntervalMicrosecond(1)) AS received_at) "
            # Qualified names: a bare agent_name here would be the REPLACE alias, not the column.
            "FROM spans WHERE spans.trace_id IN {traces:Array(String)} AND spans.agent_name IS NULL "
            "AND concat(spans.trace_id, ':', spans.span_id) IN {keys:Array(String)}",
            parameters={"keys": keys, "agents": agents, "stamp": self._stamp(), "traces": trace_ids},
            settings=store.insert_settings,
        )
        return len(keys)
