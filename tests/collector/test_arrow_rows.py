"""SpanRow → Arrow: every column but received_at, typed from SpanRow, agent names overridable."""

from __future__ import annotations

from datetime import datetime, timedelta

import pyarrow as pa

from collector.arrow_rows import EPOCH, micros, rows_to_arrow
from collector.model import SPAN_COLUMNS
from tests.collector.rows import span_row


def test_columns_and_types_follow_the_row_model() -> None:
    table = rows_to_arrow([span_row(agent="A", input_tokens=12), span_row()])
    assert table.column_names == [c for c in SPAN_COLUMNS if c != "received_at"]
    assert table.schema.field("start_time").type == pa.timestamp("us")
    assert table.schema.field("input_tokens").type == pa.int64()
    assert table.column("input_tokens").to_pylist() == [12, None]
    assert rows_to_arrow([]).num_rows == 0


def test_agent_names_replace_the_rows_values() -> None:
    table = rows_to_arrow([span_row(agent="own"), span_row()], agent_names=["own", "inherited"])
    assert table.column("agent_name").to_pylist() == ["own", "inherited"]


def test_micros_reads_every_chunk_and_slice_and_times_before_1970() -> None:
    times = [datetime(1969, 12, 31, 23, 59, 59, 999999), datetime(2026, 1, 2, 3, 4, 5, 6)]
    table = pa.table({"t": pa.array(times, pa.timestamp("us"))})
    column = pa.concat_tables([table, table.slice(1)]).column("t")  # two chunks, one a slice
    values = micros(column)
    assert values == [-1, 1767323045000006, 1767323045000006]
    assert [EPOCH + timedelta(microseconds=v) for v in values] == [*times, times[1]]
