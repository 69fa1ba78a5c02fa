"""How one batch's rows go into DuckDB: INSERT slices, heavy spans' own row groups, the agent updates.

Pure planning on Arrow tables; collector.writer runs the statements in its transactions.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

# DuckDB holds a transaction's new rows in memory until COMMIT writes them to the WAL, and
# converts a statement's Arrow input a vector at a time, all within TRACEHOUSE_DUCKDB_MEMORY_LIMIT.
# At the 64MB default one 15 MB request of 150 spans with 100 KB attributes ran out of memory as
# one INSERT; it fits as 4 MB slices. Ordinary batches (~1,500 spans, ~2 MB) are one slice.
INSERT_SLICE_BYTES = 4 * 1024 * 1024
# A checkpoint closes the table's open row group (max_vacuum_tasks=0: none is merged later), so a
# row group holds what was committed between two checkpoints: DuckDB's own come at 16 MB of WAL,
# i.e. 16-32 MB of rows. A scan decompresses a whole vector of a row group's column at once (up to
# 2,048 rows, whatever the LIMIT; long texts are ZSTD-compressed, the buffer rounded up to a power
# of two, the compressed pages pinned meanwhile). With spans of three ~256 KiB payloads, row groups
# of 34-51 rows made every `SELECT *` fail at the 64MB default, and groups of 17 (one 13 MB request)
# still failed a query extracting a JSON attribute beside input and output (bench/RESULTS.md,
# "Large payloads at the 64MB default"). So a batch of heavy spans (HEAVY_SPAN_BYTES of Arrow data
# a span, on average) goes in row groups of its own of at most HEAVY_ROW_GROUP_BYTES: each is one
# transaction of up to two INSERT slices, followed by a CHECKPOINT. Smaller groups compress worse
# (4 MB ones took 73% more disk than DuckDB's own on prompt-like text, 8 MB ones 30%). Ordinary
# spans (~1.5 KB) never take this path.
HEAVY_SPAN_BYTES = 32 * 1024
HEAVY_ROW_GROUP_BYTES = 8 * 1024 * 1024


def slices(table: pa.Table, nbytes: int, most_bytes: int) -> list[pa.Table]:
    """The table (``nbytes`` of Arrow data) in row slices of about ``most_bytes`` each (rows assumed
    alike in size)."""
    if nbytes <= most_bytes:
        return [table]
    rows = max(1, table.num_rows * most_bytes // nbytes)
    return [table.slice(start, rows) for start in range(0, table.num_rows, rows)]


def is_heavy(rows: int, nbytes: int) -> bool:
    """``rows`` spans of ``nbytes`` of Arrow data are HEAVY_SPAN_BYTES or more a span on average:
    their row groups must stay small."""
    return rows > 0 and nbytes >= rows * HEAVY_SPAN_BYTES


def row_groups(names: list[str], sizes: list[int]) -> list[list[str]]:
    """Consecutive slices (by name, alike in size) in row groups of at most HEAVY_ROW_GROUP_BYTES."""
    per_group = max(1, HEAVY_ROW_GROUP_BYTES // max(sizes, default=1))
    return [names[start : start + per_group] for start in range(0, len(names), per_group)]


def agent_updates_table(updates: list[tuple[str, str, Any, str]]) -> pa.Table:
    """The resolver's updates (trace_id, span_id, start_time, agent_name) as a table to join."""
    trace_ids, span_ids, starts, agents = zip(*updates)
    return pa.table(
        {
            "trace_id": pa.array(trace_ids, pa.string()),
            "span_id": pa.array(span_ids, pa.string()),
            "start_time": pa.array(starts, pa.timestamp("us")),
            "agent_name": pa.array(agents, pa.string()),
        }
    )
