"""Fixtures for sdk_shim tests: the shim configured with the OTel SDK's in-memory exporter."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import sdk_shim


class Captured:
    """Finished spans, looked up by name or attribute."""

    def __init__(self, exporter: InMemorySpanExporter) -> None:
        self.exporter = exporter

    @property
    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def one(self, name: str) -> ReadableSpan:
        found = [s for s in self.spans if s.name == name]
        assert len(found) == 1, f"{len(found)} spans named {name!r}: {[s.name for s in self.spans]}"
        return found[0]

    def by_type(self, span_type: str) -> list[ReadableSpan]:
        return [
            s
            for s in self.spans
            if (s.attributes or {}).get("openai_agents.span_type") == span_type
        ]


def _capture(include_sensitive_data: bool) -> Iterator[Captured]:
    exporter = InMemorySpanExporter()
    handle = sdk_shim.configure(
        otlp=False,
        processors=[SimpleSpanProcessor(exporter)],
        include_sensitive_data=include_sensitive_data,
        service_name="shim-tests",
    )
    yield Captured(exporter)
    handle.shutdown()


@pytest.fixture
def captured() -> Iterator[Captured]:
    yield from _capture(True)


@pytest.fixture
def captured_redacted() -> Iterator[Captured]:
    yield from _capture(False)
