"""Every SQL example of the README's "Querying" section runs through the sandbox and answers."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector import sql_sandbox
from collector.store import Store
from tests.collector.query_data import agent_trace, insert_spans, standard_traces

README = Path(__file__).resolve().parents[2] / "README.md"


def examples() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Querying", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sql\n(.*?)```", section, flags=re.DOTALL)


def test_the_readme_has_the_examples_people_ask_for() -> None:
    assert len(examples()) >= 5


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    store = Store(tmp_path_factory.mktemp("readme") / "readme.duckdb")
    now = datetime.now(UTC).replace(tzinfo=None)
    for n, rows in enumerate(standard_traces()):
        insert_spans(store, rows, received_at=now - timedelta(minutes=10 - n))
    # Today's traffic too, so "today" and "last 24 hours" examples find rows.
    insert_spans(
        store,
        agent_trace(50, start=now - timedelta(minutes=5), session="sess-1", tool_fails=True),
        received_at=now,
    )
    store.write_connection.execute(
        "UPDATE spans SET cost_usd = input_tokens * 2.5e-6 WHERE kind = 'llm'"
    )
    yield store
    store.close()


@pytest.mark.parametrize("sql", examples())
def test_readme_example_runs(store: Store, sql: str) -> None:
    result = sql_sandbox.run(store, sql, timeout_s=30, max_rows=1000)
    assert result.rows, f"no rows from:\n{sql}"
