"""Span rows → Arrow: how the writer hands a batch to DuckDB (``con.register`` + INSERT BY NAME).

The ingest path builds each request's table from the value tuples of
``collector.normalize.normalize_values`` (one ``zip`` into columns and one ``pa.array`` per
column); SpanRows from tools and tests go through one C-level getter per row first. The column
types follow SpanRow's annotations, so a new column needs no edit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import fields
from datetime import datetime
from operator import attrgetter

import pyarrow as pa

from collector.model import ROW_COLUMNS, RowValues, SpanRow

_ARROW_TYPES = {
    "str": pa.string(),
    "datetime": pa.timestamp("us"),
    "float": pa.float64(),
    "int": pa.int64(),
    "bool": pa.bool_(),
}


def _arrow_type(annotation: str) -> pa.DataType:
    base = annotation.split("|")[0].strip()
    return _ARROW_TYPES[base]


# Every column but received_at, which the writer stamps once per batch.
_ARROW_SCHEMA = pa.schema(
    [(f.name, _arrow_type(str(f.type))) for f in fields(SpanRow) if f.name in ROW_COLUMNS]
)
_row_values = attrgetter(*ROW_COLUMNS)
_AGENT_COLUMN = ROW_COLUMNS.index("agent_name")
_PROJECT_COLUMN = ROW_COLUMNS.index("project")


def rows_to_arrow(
    rows: Sequence[SpanRow], agent_names: Sequence[str | None] | None = None
) -> pa.Table:
    """SpanRows → an Arrow table with the spans schema (one C-level getter per row).

    ``agent_names``, when given, replaces the rows' agent_name (attribution from ancestors).
    """
    columns: list[Sequence[object]] = list(zip(*map(_row_values, rows)))
    if columns and agent_names is not None:
        columns[_AGENT_COLUMN] = agent_names
    return _table(columns)


def values_to_arrow(values: Iterable[RowValues], project: str | None = None) -> pa.Table:
    """Value tuples in ``ROW_COLUMNS`` order → an Arrow table; ``project`` replaces every row's."""
    columns: list[Sequence[object]] = list(zip(*values))
    if columns and project is not None:
        columns[_PROJECT_COLUMN] = [project] * len(columns[0])
    return _table(columns)


def _table(columns: list[Sequence[object]]) -> pa.Table:
    if not columns:
        return _ARROW_SCHEMA.empty_table()
    arrays = [pa.array(col, type=field.type) for col, field in zip(columns, _ARROW_SCHEMA)]
    return pa.Table.from_arrays(arrays, schema=_ARROW_SCHEMA)


EPOCH = datetime(1970, 1, 1)  # what a timestamp[us] column counts its microseconds from


def micros(column: pa.ChunkedArray) -> list[int]:
    """A timestamp[us] column as integers, by a zero-copy view of each chunk. pyarrow's cast and
    min_max give up the GIL, and in the writer under load each such call waits milliseconds to
    get it back (bench/RESULTS.md, "Round 6: the serial writer")."""
    return [value for chunk in column.chunks for value in chunk.view(pa.int64()).to_pylist()]
