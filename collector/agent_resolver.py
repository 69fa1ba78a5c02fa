"""Agent attribution across spans: a span without an agent name gets its nearest agent ancestor's.

Conventions leave ``agent_name`` empty on LLM and tool spans (and the normalizer turns
placeholders such as contrib's "OpenAI Agent" into NULL), so the name must come from the
nearest ancestor of kind ``agent``. Children end, and so arrive, before their agent span, often
in an earlier batch; their rows are stored with a NULL agent and fixed later by an UPDATE in
the transaction that stores the ancestor.

Runs in the writer thread only (no locks). Memory is bounded: ``max_spans`` recent spans
(parent link, agent name, kind) in arrival order, and at most ``max_pending`` spans waiting for
a missing ancestor, forgotten after about ``pending_ttl_s``. At ~350 bytes a span that is
~17 MB and ~10 MB at the defaults. State is lost on restart: a child stored before a crash
whose agent arrives after it keeps a NULL agent.
"""

from __future__ import annotations

import time
from itertools import islice
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from collector.model import SpanKind, SpanRow

_AGENT = SpanKind.AGENT.value
_MAX_DEPTH = 256  # guards against parent cycles in malformed traces

StartTime = int | datetime  # microseconds since the epoch (SpanRow, the writer's columns) or a datetime
Update = tuple[str, str, StartTime, str]  # trace_id, span_id, start_time, agent_name


@dataclass(slots=True)
class _Known:
    parent: str | None
    agent: str | None  # own or inherited agent name, None while unknown
    is_agent: bool


@dataclass(slots=True)
class _Waiter:
    span_id: str
    start_time: StartTime
    since: float  # monotonic arrival time


class AgentResolver:
    """Fills NULL agent names from ancestors, for this batch and for stored rows."""

    def __init__(
        self, max_spans: int = 50_000, max_pending: int = 50_000, pending_ttl_s: float = 600.0
    ) -> None:
        self._max_spans = max_spans
        self._max_pending = max_pending
        self._ttl = pending_ttl_s
        self._known: dict[tuple[str, str], _Known] = {}
        # (trace_id, missing ancestor span_id) → stored spans waiting for it
        self._pending: dict[tuple[str, str], list[_Waiter]] = {}
        self._pending_count = 0
        self._next_expiry = 0.0

    @property
    def pending(self) -> int:
        """Spans stored without an agent, waiting for a missing ancestor."""
        return self._pending_count

    @property
    def tracked(self) -> int:
        """Recent spans whose parent link and agent are remembered."""
        return len(self._known)

    def process(self, rows: Sequence[SpanRow]) -> tuple[list[str | None] | None, list[Update]]:
        """For a batch about to be inserted: agent names to store (None if unchanged) and updates."""
        return self.process_columns(
            [r.trace_id for r in rows],
            [r.span_id for r in rows],
            [r.parent_span_id for r in rows],
            [r.kind for r in rows],
            [r.agent_name for r in rows],
            [r.start_time for r in rows],
        )

    def process_columns(
        self,
        trace_ids: Sequence[str],
        span_ids: Sequence[str],
        parents: Sequence[str | None],
        kinds: Sequence[str],
        agents: Sequence[str | None],
        starts: Sequence[StartTime],
    ) -> tuple[list[str | None] | None, list[Update]]:
        """:meth:`process` over a batch's columns (the writer's Arrow columns as lists)."""
        now = time.monotonic()
        known = self._known
        for trace_id, span_id, parent, agent, kind in zip(trace_ids, span_ids, parents, agents, kinds):
            known[(trace_id, span_id)] = _Known(parent, agent, kind == _AGENT)
        names: list[str | None] | None = None
        for i, agent in enumerate(agents):
            if agent is not None:
                continue
            found = self._resolve(trace_ids[i], span_ids[i], starts[i], now)
            if found is not None:
                if names is None:
                    names = list(agents)
                names[i] = found
        updates: list[Update] = []
        if self._pending:
            for trace_id, span_id in zip(trace_ids, span_ids):
                waiters = self._pending.pop((trace_id, span_id), None)
                if waiters:
                    self._pending_count -= len(waiters)
                    self._release(trace_id, span_id, waiters, updates)
        self._trim(now)
        return names, updates

    def _resolve(self, trace_id: str, span_id: str, start_time: StartTime, now: float) -> str | None:
        """Walk up from a span; cache the answer, or queue the span on the first missing link."""
        agent, gap = self._walk(trace_id, span_id)
        if agent is not None:
            self._known[(trace_id, span_id)].agent = agent
        elif gap is not None:
            self._wait(trace_id, gap, [_Waiter(span_id, start_time, now)])
        return agent

    def _walk(self, trace_id: str, span_id: str) -> tuple[str | None, str | None]:
        """(agent name, None) if found; (None, missing span id) at a gap; (None, None) at the root."""
        known = self._known
        entry = known[(trace_id, span_id)]
        for _ in range(_MAX_DEPTH):
            if entry.agent is not None:  # an agent span, or a span that already inherited one
                return entry.agent, None
            parent = entry.parent
            if parent is None:
                return None, None
            ancestor = known.get((trace_id, parent))
            if ancestor is None:
                return None, parent
            entry = ancestor
        return None, None

    def _release(
        self, trace_id: str, span_id: str, waiters: list[_Waiter], updates: list[Update]
    ) -> None:
        """span_id has arrived: give its agent to the spans that waited for it, or move them up a gap."""
        agent, gap = self._walk(trace_id, span_id)
        if agent is None:
            if gap is not None:
                self._wait(trace_id, gap, waiters)
            return
        known = self._known
        for waiter in waiters:
            waiting = known.get((trace_id, waiter.span_id))
            if waiting is not None:
                waiting.agent = agent
            updates.append((trace_id, waiter.span_id, waiter.start_time, agent))

    def _wait(self, trace_id: str, missing: str, waiters: list[_Waiter]) -> None:
        self._pending.setdefault((trace_id, missing), []).extend(waiters)
        self._pending_count += len(waiters)

    def _trim(self, now: float) -> None:
        known = self._known
        excess = len(known) - self._max_spans
        if excess > 0:
            # One pass for the whole excess: next(iter(known)) per deletion rescans the holes that
            # earlier deletions left at the front of the dict, quadratic (11 % of the collector's
            # CPU under load, measured with py-spy).
            for key in list(islice(known, excess)):
                del known[key]
        pending = self._pending
        if now >= self._next_expiry or self._pending_count > self._max_pending:
            self._next_expiry = now + min(self._ttl / 10, 10.0)
            horizon = now - self._ttl
            # Dict order is arrival order of the first waiter: drop from the oldest end.
            while pending and (
                self._pending_count > self._max_pending or _oldest(pending) < horizon
            ):
                waiters = pending.pop(next(iter(pending)))
                self._pending_count -= len(waiters)


def _oldest(pending: dict[tuple[str, str], list[_Waiter]]) -> float:
    return pending[next(iter(pending))][0].since
