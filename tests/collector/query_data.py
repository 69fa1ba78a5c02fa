"""Realistic agent traces for the query tests, and a way to store them.

Each trace mirrors what the OpenAI Agents SDK instrumentations send (CONVENTIONS.md): a
workflow root, agents, LLM calls with token counts and prompt text, tool calls and a handoff.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from hashlib import md5

import pandas as pd

from collector.model import SPAN_COLUMNS, SpanRow
from collector.store import Store

BASE = datetime(2026, 11, 20, 9, 0, 0)


def _id(*parts: object, length: int) -> str:
    return md5("/".join(map(str, parts)).encode()).hexdigest()[:length]


def trace_id(n: int) -> str:
    return _id("trace", n, length=32)


def agent_trace(
    n: int,
    *,
    start: datetime,
    service: str = "support-bot",
    session: str | None = "sess-1",
    user: str | None = "user-1",
    agents: tuple[str, ...] = ("triage", "billing"),
    model: str = "gpt-4o",
    tool: str = "lookup_order",
    tool_fails: bool = False,
    question: str = "Where is my order 1234?",
    workflow: str = "Customer support",
    seconds: float = 4.0,
) -> list[SpanRow]:
    """One workflow: root → agent per name, each with an LLM call and a tool; handoffs between."""
    tid = trace_id(n)
    common = {
        "service_name": service,
        "scope_name": "openai.agents",
        "convention": "openai_agents",
        "session_id": session,
        "user_id": user,
        "workflow_name": workflow,
    }

    def span(
        key: tuple, parent: str | None, name: str, kind: str, at: datetime, secs: float, **fields
    ) -> SpanRow:
        values = {
            "span_kind": "internal",
            "status": "ok",
            "status_message": None,
            **common,
            **fields,
        }
        return SpanRow(
            trace_id=tid,
            span_id=_id(n, *key, length=16),
            parent_span_id=parent,
            name=name,
            kind=kind,
            start_time=at,
            end_time=at + timedelta(seconds=secs),
            duration_ms=secs * 1000,
            **values,
        )

    root = span(
        ("root",),
        None,
        workflow,
        "workflow",
        start,
        seconds,
        span_kind="server",
        status="error" if tool_fails else "ok",
        input=question,
    )
    rows = [root]
    step = seconds / (len(agents) + 1)
    for i, agent in enumerate(agents):
        a_start = start + timedelta(seconds=step * i + 0.01)
        a_end = a_start + timedelta(seconds=step)
        parent = _id(n, "agent", i, length=16)
        rows.append(
            span(
                ("agent", i),
                root.span_id,
                f"invoke_agent {agent}",
                "agent",
                a_start,
                step,
                span_kind="client",
                agent_name=agent,
            )
        )
        llm_start = a_start + timedelta(milliseconds=5)
        rows.append(
            span(
                ("llm", i),
                parent,
                f"chat {model}",
                "llm",
                llm_start,
                step / 2,
                span_kind="client",
                agent_name=agent,
                model=model,
                provider="openai" if model.startswith("gpt") else "anthropic",
                input_tokens=1200 + 10 * n,
                output_tokens=300 + n,
                cached_tokens=100,
                reasoning_tokens=0,
                input=f'[{{"role": "user", "content": "{question}"}}]',
                output=f'[{{"role": "assistant", "content": "Answer {n} from {agent}: your order ships soon."}}]',
                attributes=f'{{"gen_ai.request.model": "{model}", "gen_ai.operation.name": "chat"}}',
                resource=f'{{"service.name": "{service}"}}',
            )
        )
        failed = tool_fails and i == len(agents) - 1
        exception = '[{"name": "exception", "attributes": {"exception.type": "TimeoutError"}}]'
        rows.append(
            span(
                ("tool", i),
                parent,
                f"execute_tool {tool}",
                "tool",
                llm_start + timedelta(seconds=step / 2 + 0.01),
                0.2,
                status="error" if failed else "ok",
                agent_name=agent,
                tool_name=tool,
                status_message="TimeoutError: order service did not answer" if failed else None,
                error_type="TimeoutError" if failed else None,
                input='{"order_id": 1234}',
                output=None if failed else '{"status": "shipped"}',
                events=exception if failed else "[]",
            )
        )
        if i + 1 < len(agents):
            rows.append(
                span(
                    ("handoff", i),
                    parent,
                    f"handoff {agent} -> {agents[i + 1]}",
                    "handoff",
                    a_end - timedelta(milliseconds=20),
                    0.02,
                    agent_name=agent,
                    handoff_from=agent,
                    handoff_to=agents[i + 1],
                )
            )
    return rows


def insert_spans(store: Store, rows: list[SpanRow], received_at: datetime | None = None) -> None:
    """Store rows as one committed batch, the way the writer does (one received_at per batch)."""
    stamp = received_at or datetime.now(UTC).replace(tzinfo=None)
    frame = pd.DataFrame(
        [{**asdict(r), "received_at": stamp} for r in rows], columns=list(SPAN_COLUMNS)
    )
    con = store.write_connection
    con.register("new_spans", frame)
    try:
        con.execute("INSERT INTO spans BY NAME SELECT * FROM new_spans")
    finally:
        con.unregister("new_spans")


def standard_traces() -> list[list[SpanRow]]:
    """Six traces across two services, three sessions, two models; one failed tool; one slow."""
    return [
        agent_trace(1, start=BASE, session="sess-1"),
        agent_trace(
            2, start=BASE + timedelta(minutes=5), session="sess-1", question="Can I get a refund?"
        ),
        agent_trace(
            3,
            start=BASE + timedelta(hours=1),
            service="sales-bot",
            session="sess-2",
            user="user-2",
            agents=("sales",),
            model="claude-sonnet-4",
            tool="quote",
            workflow="Sales quote",
        ),
        agent_trace(
            4,
            start=BASE + timedelta(hours=2),
            session="sess-3",
            user="user-3",
            tool_fails=True,
            tool="refund",
        ),
        agent_trace(5, start=BASE + timedelta(hours=3), session=None, user=None, seconds=30.0),
        agent_trace(
            6,
            start=BASE - timedelta(days=2),
            service="sales-bot",
            session="sess-2",
            user="user-2",
            agents=("sales", "billing"),
            model="claude-sonnet-4",
            tool="quote",
            workflow="Sales quote",
        ),
    ]


def store_through_writer(store: Store, traces: list[list[SpanRow]]) -> None:
    """Store traces through the collector's real BatchWriter (dedup, received_at stamp, commit)."""
    from collector.settings import Settings
    from collector.writer import BatchWriter

    writer = BatchWriter(store, Settings.from_env({}))
    try:
        for rows in traces:
            writer.submit(rows).result(timeout=30)
    finally:
        writer.close()
