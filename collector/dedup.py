"""Exactly once without a PRIMARY KEY (DESIGN.md decision 4): which spans of a batch to insert.

Each batch first asks which of its (trace_id, span_id) are already stored, restricted to the
batch's start_time range so DuckDB's zone maps skip every row group outside it, then drops those
and repeats within the batch in Python (one set lookup per span). Measured with
``bench/dedup_choice.py`` (2,000,000 spans of ~1.3 KB in batches of 10,000, 2 shared cores,
DuckDB's default memory limit):

- anti-join, no index:            32,500 spans/s inserted, peak RSS 975 MB
- PRIMARY KEY + INSERT OR IGNORE: 20,500 spans/s inserted, peak RSS 1,202 MB (ART kept in memory)

so no index: the ART costs a third of the insert rate and its memory grows with the table.
A re-sent span keeps its start time, so the range restriction loses no duplicate.
"""

from __future__ import annotations

from datetime import timedelta

import duckdb

from collector.arrow_rows import EPOCH

Key = tuple[str, str]  # (trace_id, span_id)


def stored_keys(con: duckdb.DuckDBPyConnection, batch: str, starts: list[int]) -> set[Key]:
    """Keys of the spans in the registered table ``batch`` that ``spans`` already holds;
    ``starts``: their start times in microseconds since 1970."""
    if not starts:
        return set()
    found = con.execute(
        f"SELECT s.trace_id, s.span_id FROM spans s SEMI JOIN {batch} k "
        "ON s.trace_id = k.trace_id AND s.span_id = k.span_id "
        "WHERE s.start_time BETWEEN ? AND ?",
        [EPOCH + timedelta(microseconds=min(starts)), EPOCH + timedelta(microseconds=max(starts))],
    ).fetchall()
    return set(found)


def first_unstored(sizes: list[int], keys: list[Key], stored: set[Key]) -> tuple[list[int] | None, list[int]]:
    """The rows to insert, the first of each key not stored yet, and how many of each request's
    ``sizes`` rows that leaves. ``None`` for the rows: all of them (the usual batch, nothing stored
    or repeated, found by one C-level check instead of a loop per span)."""
    if not stored and len(set(keys)) == len(keys):
        return None, list(sizes)
    seen = set(stored)
    keep: list[int] = []
    counts: list[int] = []
    position = 0
    for size in sizes:
        before = len(keep)
        for index in range(position, position + size):
            if keys[index] not in seen:
                seen.add(keys[index])
                keep.append(index)
        position += size
        counts.append(len(keep) - before)
    return keep, counts
