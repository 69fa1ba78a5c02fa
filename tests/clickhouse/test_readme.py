"""Every ClickHouse SQL example of the README's ClickHouse section runs through the sandbox and answers."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from collector.clickhouse import sandbox
from collector.clickhouse.store import ClickHouseStore
from collector.clickhouse.writer import ClickHouseWriter
from collector.settings import Settings
from tests.collector.query_data import standard_traces

README = Path(__file__).resolve().parents[2] / "README.md"


def examples() -> list[str]:
    section = README.read_text(encoding="utf-8").split("## ClickHouse (scale-out)", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sql\n(.*?)```", section, flags=re.DOTALL)


@pytest.fixture(scope="module")
def store(chdb_dir: Path) -> ClickHouseStore:
    store = ClickHouseStore(f"chdb://{chdb_dir}?database=t_readme")
    writer = ClickHouseWriter(store, Settings.from_env({}))
    shift = datetime.now(UTC).replace(tzinfo=None) - datetime(2026, 11, 20, 12)  # recent traffic
    for rows in standard_traces():
        writer.submit([replace(r, start_time=r.start_time + shift, end_time=r.end_time + shift) for r in rows]).result(30)
    writer.close()
    return store


def test_the_section_has_examples() -> None:
    assert len(examples()) >= 4


@pytest.mark.parametrize("query", examples())
def test_example_runs_and_answers(store: ClickHouseStore, query: str) -> None:
    result = sandbox.run(store, query, timeout_s=10, max_rows=100)
    assert result.rows, query
