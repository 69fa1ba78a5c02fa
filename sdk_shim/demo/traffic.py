"""Demo traffic: the three workflows, continuously, at a steady rate of traces per minute.

``run_demo`` is what ``tracehouse demo`` and ``tracehouse up`` run; it can also run in a thread
(pass a ``threading.Event`` as ``stop``). Failed runs (tool errors the agents survive, guardrail
trips, declined payments, rate-limited models) are part of the show: they are traced and counted,
never raised.
"""

from __future__ import annotations

import asyncio
import logging
import random
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import sdk_shim
from sdk_shim.demo import workflows

logger = logging.getLogger("sdk_shim.demo")

STOP_GRACE_S = 10.0  # how long runs in flight may finish after the end

# (name, weight): customer service dominates, as in a real support-heavy deployment.
WORKFLOWS = (("customer-service", 5), ("content-pipeline", 2), ("order-workflow", 3))


class Pacer:
    """Grants trace starts at ``rate_per_min`` on average (Poisson arrivals); the first at once."""

    def __init__(self, rate_per_min: float, rng: random.Random) -> None:
        if rate_per_min <= 0:
            raise ValueError("rate must be above 0 traces per minute")
        self._rate_per_s = rate_per_min / 60.0
        self._rng = rng
        self._next = time.monotonic()
        self._lock = asyncio.Lock()
        self.granted = 0

    async def wait(self) -> None:
        async with self._lock:
            delay = self._next - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self._next = max(self._next, time.monotonic()) + self._rng.expovariate(self._rate_per_s)
            self.granted += 1


@dataclass
class DemoStats:
    traces: int = 0
    workflows: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    dropped_spans: int = 0

    def line(self) -> str:
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items()))
        return f"{self.traces} traces ({outcomes or 'none finished yet'})"


async def generate(
    rate_per_min: float,
    duration_s: float | None = None,
    stop: threading.Event | None = None,
    seed: int | None = None,
    latency_scale: float = 1.0,
    session_db: Path | str | None = None,
    on_progress: Callable[[DemoStats], None] | None = None,
) -> DemoStats:
    """Run workflows until ``duration_s`` passes or ``stop`` is set; returns what happened."""
    rng = random.Random(seed)
    pacer = Pacer(rate_per_min, rng)
    stats = DemoStats()
    deadline = None if duration_s is None else time.monotonic() + duration_s
    stop = stop or threading.Event()
    db = session_db or Path(tempfile.mkdtemp(prefix="tracehouse-demo-")) / "sessions.db"
    names, weights = zip(*WORKFLOWS)
    running: set[asyncio.Task[None]] = set()

    def done() -> bool:
        return stop.is_set() or (deadline is not None and time.monotonic() >= deadline)

    waiting = 0

    async def gate() -> None:
        nonlocal waiting
        waiting += 1
        try:
            if not done():
                await pacer.wait()
        finally:
            waiting -= 1
        if done():
            raise asyncio.CancelledError  # no new traces after the end
        stats.traces += 1

    async def one(name: str, run_rng: random.Random) -> None:
        stats.workflows[name] += 1
        try:
            if name == "customer-service":
                await workflows.customer_service(run_rng, latency_scale, gate, db)
            elif name == "content-pipeline":
                await workflows.content_pipeline(run_rng, latency_scale, gate)
            else:
                await workflows.order_workflow(run_rng, latency_scale, gate)
            stats.outcomes["ok"] += 1
        except asyncio.CancelledError:
            stats.outcomes["cut short"] += 1
        except Exception as exc:  # noqa: BLE001 - a traced failure is part of the demo
            stats.outcomes[type(exc).__name__] += 1
        if on_progress:
            on_progress(stats)

    while not done():
        # Keep one workflow waiting for the pacer: the rate stays exact and memory bounded.
        if waiting == 0 and len(running) < 200:
            name = rng.choices(names, weights)[0]
            task = asyncio.create_task(one(name, random.Random(rng.getrandbits(64))))
            running.add(task)
            task.add_done_callback(running.discard)
        await asyncio.sleep(min(0.05, 60.0 / rate_per_min / 4))
    if running:
        _, pending = await asyncio.wait(running, timeout=STOP_GRACE_S)
        for task in pending:
            task.cancel()
    handle = sdk_shim.current()
    stats.dropped_spans = handle.dropped_spans if handle else 0
    return stats


def run_demo(
    endpoint: str | None = None,
    rate_per_min: float = 30.0,
    duration_s: float | None = None,
    stop: threading.Event | None = None,
    protocol: str | None = None,
    service_name: str = "tracehouse-demo",
    seed: int | None = None,
    latency_scale: float = 1.0,
    on_progress: Callable[[DemoStats], None] | None = None,
) -> DemoStats:
    """Configure the shim for ``endpoint`` and generate traffic (blocking; fine in a thread)."""
    handle = sdk_shim.configure(endpoint=endpoint, protocol=protocol, service_name=service_name)
    try:
        stats = asyncio.run(
            generate(rate_per_min, duration_s, stop, seed, latency_scale, on_progress=on_progress)
        )
    finally:
        handle.shutdown(timeout_s=5)
    stats.dropped_spans = handle.dropped_spans
    return stats
