"""Agent attribution from the nearest agent ancestor, with children arriving before their agent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.agent_resolver import AgentResolver
from collector.settings import Settings
from collector.store import Store
from collector.writer import BatchWriter
from tests.collector.rows import new_id, span_row


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[BatchWriter]:
    store = Store(tmp_path / "agents.duckdb")
    w = BatchWriter(store, Settings(batch_interval_ms=1.0), resolver=AgentResolver())
    yield w
    w.close()
    store.close()


def agents(writer: BatchWriter, trace_id: str) -> dict[str, str | None]:
    """name → stored agent_name for one trace (read in the writer thread, after all commits)."""
    rows = writer.execute(
        lambda con: con.execute(
            "SELECT name, agent_name FROM spans WHERE trace_id = ?", [trace_id]
        ).fetchall()
    ).result(10)
    return dict(rows)


def test_children_stored_before_their_agent_get_its_name(writer: BatchWriter) -> None:
    trace, root, agent, llm = new_id() * 2, new_id(), new_id(), new_id()
    # Batch 1: the LLM call and its tool end first, under an agent span not yet seen.
    writer.submit(
        [
            span_row(trace, llm, parent=agent, kind="llm", name="llm"),
            span_row(trace, new_id(), parent=llm, kind="tool", name="tool", offset_ms=1),
        ]
    ).result(10)
    assert agents(writer, trace) == {"llm": None, "tool": None}
    # Batch 2: the agent span, then the workflow root.
    writer.submit(
        [span_row(trace, agent, parent=root, kind="agent", agent="Planner", name="agent")]
    ).result(10)
    writer.submit([span_row(trace, root, kind="workflow", name="root")]).result(10)
    assert agents(writer, trace) == {
        "llm": "Planner",
        "tool": "Planner",
        "agent": "Planner",
        "root": None,
    }


def test_missing_middle_link_arriving_last(writer: BatchWriter) -> None:
    trace, agent, middle = new_id() * 2, new_id(), new_id()
    writer.submit([span_row(trace, new_id(), parent=middle, kind="tool", name="leaf")]).result(10)
    writer.submit([span_row(trace, agent, kind="agent", agent="Researcher", name="agent")]).result(
        10
    )
    assert agents(writer, trace)["leaf"] is None  # still a gap between leaf and agent
    writer.submit([span_row(trace, middle, parent=agent, kind="chain", name="middle")]).result(10)
    assert agents(writer, trace) == {
        "leaf": "Researcher",
        "agent": "Researcher",
        "middle": "Researcher",
    }


def test_nearest_agent_wins_and_placeholders_inherit(writer: BatchWriter) -> None:
    trace, outer, inner, placeholder = new_id() * 2, new_id(), new_id(), new_id()
    writer.submit(
        [
            span_row(trace, new_id(), parent=inner, kind="llm", name="inner-llm"),
            span_row(trace, new_id(), parent=placeholder, kind="llm", name="placeholder-llm"),
            # An agent span whose name the normalizer set to NULL (contrib's "OpenAI Agent").
            span_row(trace, placeholder, parent=outer, kind="agent", name="placeholder"),
            span_row(trace, inner, parent=outer, kind="agent", agent="Writer", name="inner"),
            span_row(trace, outer, kind="agent", agent="Triage", name="outer"),
        ]
    ).result(10)
    assert agents(writer, trace) == {
        "inner-llm": "Writer",
        "placeholder-llm": "Triage",
        "placeholder": "Triage",
        "inner": "Writer",
        "outer": "Triage",
    }


def test_own_agent_name_is_kept(writer: BatchWriter) -> None:
    trace, agent = new_id() * 2, new_id()
    writer.submit(
        [span_row(trace, new_id(), parent=agent, kind="llm", agent="Explicit", name="llm")]
    ).result(10)
    writer.submit([span_row(trace, agent, kind="agent", agent="Other", name="agent")]).result(10)
    assert agents(writer, trace)["llm"] == "Explicit"


def test_memory_stays_bounded() -> None:
    resolver = AgentResolver(max_spans=100, max_pending=50)
    for _ in range(20):
        trace = new_id() * 2
        # 30 orphans per batch, each waiting on a parent that never comes.
        resolver.process(
            [span_row(trace, new_id(), parent=new_id(), kind="llm") for _ in range(30)]
        )
        assert resolver.pending <= 50
    assert resolver.tracked <= 100


def test_pending_spans_expire() -> None:
    resolver = AgentResolver(pending_ttl_s=0.0)
    trace = new_id() * 2
    resolver.process([span_row(trace, new_id(), parent=new_id(), kind="llm")])
    resolver.process([span_row(trace, new_id(), kind="workflow")])
    assert resolver.pending == 0


def test_waiters_survive_eviction_of_their_own_entries() -> None:
    resolver = AgentResolver(max_spans=10)
    trace, agent, llm, tool = new_id() * 2, new_id(), new_id(), new_id()
    resolver.process([span_row(trace, tool, parent=llm, kind="tool")])
    resolver.process(
        [span_row(new_id() * 2, new_id(), kind="workflow") for _ in range(20)]
    )  # evicts `tool`
    resolver.process([span_row(trace, llm, parent=agent, kind="llm")])
    _, updates = resolver.process([span_row(trace, agent, kind="agent", agent="Coder")])
    assert sorted((span_id, name) for _, span_id, _, name in updates) == sorted(
        [(tool, "Coder"), (llm, "Coder")]
    )
    assert resolver.pending == 0
