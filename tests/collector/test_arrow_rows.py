"""SpanRow → Arrow: every column but received_at, typed from SpanRow, agent names overridable."""

from __future__ import annotations

import pyarrow as pa

from collector.arrow_rows import rows_to_arrow
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
