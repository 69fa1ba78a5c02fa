"""Ingest metrics on a per-app Prometheus registry (two collectors in one process never clash).

Hot-path counters are cheap: the pipeline bumps a counter once per request, and the writer's
own totals (stored, duplicates, queue depth) are read only when /metrics is scraped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

# The *_created series double the exposition and no dashboard of ours uses them.
disable_created_metrics()

# Why a span was refused, as a small closed set of label values.
REJECT_REASONS = (
    "invalid_span",
    "malformed_request",
    "too_large",
    "queue_full",
    "busy",
    "write_failed",
)


class IngestMetrics:
    """The collector's metrics; ``render()`` gives the Prometheus text exposition."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.received = Counter(
            "tracehouse_spans_received",
            "Spans received in OTLP requests that could be read.",
            registry=self.registry,
        )
        self.rejected = Counter(
            "tracehouse_spans_rejected",
            "Spans refused, by reason (malformed_request, too_large and busy count requests, not spans).",
            ["reason"],
            registry=self.registry,
        )
        for reason in REJECT_REASONS:
            self.rejected.labels(reason)
        self.commit_seconds = Histogram(
            "tracehouse_batch_commit_seconds",
            "Time to write and commit one batch of spans.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=self.registry,
        )
        self.batch_spans = Histogram(
            "tracehouse_batch_spans",
            "Spans per committed batch (group commit size).",
            buckets=(1, 10, 100, 500, 1000, 2500, 5000, 10000, 25000),
            registry=self.registry,
        )

    def observe_commit(self, seconds: float, spans: int) -> None:
        """Called by the writer thread after each committed batch."""
        self.commit_seconds.observe(seconds)
        self.batch_spans.observe(spans)

    def bind_writer(self, writer: Any) -> None:
        """Expose the writer's totals and queue depth, read at scrape time."""
        self.registry.register(_WriterCollector(writer))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _WriterCollector(Collector):
    def __init__(self, writer: Any) -> None:
        self._writer = writer

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        stats = self._writer.stats
        yield CounterMetricFamily(
            "tracehouse_spans_stored", "Spans newly stored (committed).", value=stats.stored
        )
        yield CounterMetricFamily(
            "tracehouse_spans_duplicate",
            "Spans not stored again: same trace and span id already stored.",
            value=stats.duplicates,
        )
        yield CounterMetricFamily(
            "tracehouse_spans_write_failed",
            "Spans whose batch failed to commit (never acknowledged).",
            value=stats.failed,
        )
        yield CounterMetricFamily(
            "tracehouse_agent_updates",
            "Stored spans given their agent name after their agent span arrived.",
            value=stats.updates,
        )
        yield GaugeMetricFamily(
            "tracehouse_ingest_queue_spans",
            "Spans accepted and waiting for commit.",
            value=self._writer.queue_depth,
        )
