"""The spans of a time range as Arrow record batches: `tracehouse export` and GET /api/export.

A count first (its ``received_at`` bound keeps the export to the spans it counted), then the rows
in start_time order, sorted window by window so no sort holds more than a few MB of span text.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from collector.store import Store

# Export: JSON columns go out as text so Parquet/CSV writers need no extension types.
_EXPORT_SELECT = (
    "SELECT * REPLACE (attributes::VARCHAR AS attributes, resource::VARCHAR AS resource, "
    "events::VARCHAR AS events, links::VARCHAR AS links) FROM spans"
)


def _export_where(since: datetime | None, until: datetime | None) -> tuple[str, list[Any]]:
    clauses, params = [], []
    if since is not None:
        clauses.append("start_time >= ?")
        params.append(since)
    if until is not None:
        clauses.append("start_time < ?")
        params.append(until)
    return " AND ".join(clauses) or "true", params


def count_spans(
    store: Store, since: datetime | None, until: datetime | None
) -> tuple[int, datetime | None]:
    """How many spans start in [since, until), and the received_at bound that count saw."""
    where, params = _export_where(since, until)
    cur = store.cursor()
    try:
        total, high = cur.execute(
            f"SELECT count(*), max(received_at) FROM spans WHERE {where}", params
        ).fetchone()
        return int(total), high
    finally:
        cur.close()


# Bytes of span text one export query sorts at most (a window of start times): DuckDB's sort of
# whole rows did not fit the 64MB default with ~256 KiB payloads (bench/RESULTS.md, "Large payloads
# at the 64MB default"), so the export is cut into windows that each do.
EXPORT_WINDOW_BYTES = 8 * 1024 * 1024
_SPAN_BYTES = (
    "1024 + coalesce(strlen(input), 0) + coalesce(strlen(output), 0) + coalesce(strlen(status_message), 0) "
    "+ coalesce(strlen(attributes::VARCHAR), 0) + coalesce(strlen(resource::VARCHAR), 0) "
    "+ coalesce(strlen(events::VARCHAR), 0) + coalesce(strlen(links::VARCHAR), 0)"
)


def iter_span_batches(
    store: Store,
    since: datetime | None,
    until: datetime | None,
    received_until: datetime | None,
    rows_per_batch: int = 20_000,
) -> Iterator[Any]:
    """Arrow record batches of the spans counted by count_spans, in start_time order (no time limit:
    an export may be long; it stops when the consumer stops). The schema comes first.

    Sorted window by window of start times, each holding at most ``rows_per_batch`` spans or
    EXPORT_WINDOW_BYTES of text (more only where spans share a start time).
    """
    where, params = _export_where(since, until)
    if received_until is None:
        where += " AND false"
    else:
        where += " AND received_at <= ?"
        params.append(received_until)
    cur = store.cursor()
    try:
        yield cur.sql(f"{_EXPORT_SELECT} LIMIT 0").to_arrow_reader().schema
        sizes = [*params, EXPORT_WINDOW_BYTES, rows_per_batch]
        starts = [row[0] for row in cur.execute(_window_starts(where), sizes).fetchall()]
        for index, start in enumerate(starts):
            window = "start_time >= ?" + (" AND start_time < ?" if index + 1 < len(starts) else "")
            bounds = [start, starts[index + 1]] if index + 1 < len(starts) else [start]
            relation = cur.sql(
                f"{_EXPORT_SELECT} WHERE {where} AND {window} ORDER BY start_time, trace_id, span_id",
                params=[*params, *bounds],
            )
            yield from relation.to_arrow_reader(rows_per_batch)
    finally:
        cur.close()


def _window_starts(where: str) -> str:
    """SQL for the first start time of each export window, in order (parameters: the filter's, then
    the window's bytes and rows): a window closes where either running total passes a multiple."""
    # Sizes first, materialized: computed inside the window operator they made it buffer the texts.
    return (
        f"WITH sized AS MATERIALIZED (SELECT start_time, {_SPAN_BYTES} AS size FROM spans WHERE {where}) "
        "SELECT min(start_time) AS start FROM ("
        "SELECT start_time, sum(size) OVER w // ? + (row_number() OVER w - 1) // ? AS window_no "
        "FROM sized WINDOW w AS (ORDER BY start_time ROWS UNBOUNDED PRECEDING)"
        ") GROUP BY window_no ORDER BY start"
    )
