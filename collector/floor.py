"""The in-process floor of ingest: the collector's own path with no network in front of it.

Feeds OTLP request bodies straight into :class:`Pipeline` (parse → decode → normalize → writer
with dedup, agent attribution and group commit) for a fixed time, into a throwaway DuckDB file.
bench/ingest.py divides the network figure by this one.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, replace
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Protocol

from collector.agent_resolver import AgentResolver
from collector.metrics import IngestMetrics
from collector.pipeline import Pipeline, TransientIngestError
from collector.settings import Settings
from collector.store import Store
from collector.writer import BatchWriter


class BodySource(Protocol):
    def next(self) -> bytes: ...


@dataclass(frozen=True)
class FloorRun:
    """What one floor run committed, in how long, for how much CPU (every thread, DuckDB's too)."""

    spans: int
    seconds: float
    cpu_seconds: float

    @property
    def rate(self) -> float:
        return self.spans / self.seconds

    @property
    def cpu_us_per_span(self) -> float:
        return self.cpu_seconds / max(self.spans, 1) * 1e6


def measure_floor(
    source: BodySource,
    seconds: float,
    settings: Settings | None = None,
    progress: Callable[[int], None] | None = None,
) -> FloorRun:
    """Spans committed when requests from ``source`` are submitted as fast as the writer takes them."""
    # One submitting thread in this process (pipeline.submit): no worker processes to start.
    base = replace(settings or Settings(), ingest_workers=0)
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "floor.duckdb", memory_limit=base.duckdb_memory_limit)
        metrics = IngestMetrics()
        writer = BatchWriter(store, base, resolver=AgentResolver(), observer=metrics.observe_commit)
        pipeline = Pipeline(base, writer, metrics)
        futures: list[Future[int]] = []
        started, cpu_started = time.perf_counter(), time.process_time()
        deadline = started + seconds
        try:
            while time.perf_counter() < deadline:
                body = source.next()
                while True:
                    try:
                        futures.append(pipeline.submit(body, "protobuf")[0])
                        break
                    except TransientIngestError:  # queue full: wait like a retrying exporter
                        time.sleep(0.002)
                if progress is not None:
                    progress(len(futures))
            committed = sum(future.result() for future in futures)
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
        finally:
            writer.close()
            store.close()
    return FloorRun(committed, elapsed, cpu)
