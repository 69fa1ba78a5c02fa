"""SpanRow → Arrow: how the writer hands a batch to DuckDB (``con.register`` + INSERT BY NAME).

One C-level getter per row and one ``pa.array`` per column keep the per-span Python work to a
few microseconds; the column types follow SpanRow's annotations, so a new column needs no edit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from operator import attrgetter

import pyarrow as pa

from collector.model import SPAN_COLUMNS, SpanRow

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
_INSERT_COLUMNS = tuple(c for c in SPAN_COLUMNS if c != "received_at")
_ARROW_SCHEMA = pa.schema(
    [(f.name, _arrow_type(str(f.type))) for f in fields(SpanRow) if f.name in _INSERT_COLUMNS]
)
_row_values = attrgetter(*_INSERT_COLUMNS)
_AGENT_COLUMN = _INSERT_COLUMNS.index("agent_name")


def rows_to_arrow(
    rows: Sequence[SpanRow], agent_names: Sequence[str | None] | None = None
) -> pa.Table:
    """SpanRows → an Arrow table with the spans schema (one C-level getter per row).

    ``agent_names``, when given, replaces the rows' agent_name (attribution from ancestors).
    """
    if not rows:
        return _ARROW_SCHEMA.empty_table()
    columns: list[Sequence[object]] = list(zip(*map(_row_values, rows)))
    if agent_names is not None:
        columns[_AGENT_COLUMN] = agent_names
    arrays = [pa.array(col, type=field.type) for col, field in zip(columns, _ARROW_SCHEMA)]
    return pa.Table.from_arrays(arrays, schema=_ARROW_SCHEMA)
