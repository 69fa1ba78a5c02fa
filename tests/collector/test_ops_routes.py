"""/healthz and /metrics (Prometheus text) report what ingest did."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.collector.otlp_payloads import (
    make_request,
    make_span,
    new_span_id,
    new_trace_id,
    spans_request,
)
from tests.conftest import RunningCollector


def scrape(collector: RunningCollector) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(f"{collector.http_url}/metrics", timeout=10)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def post(collector: RunningCollector, body: bytes) -> httpx.Response:
    return httpx.post(
        f"{collector.http_url}/v1/traces",
        content=body,
        headers={"Content-Type": "application/x-protobuf"},
        timeout=30,
    )


def test_healthz(collector: RunningCollector) -> None:
    response = httpx.get(f"{collector.http_url}/healthz", timeout=10)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "queue_spans": 0}


def test_metrics_count_received_stored_duplicates_rejected_and_commits(
    collector: RunningCollector,
) -> None:
    request = spans_request(6)
    assert post(collector, request.SerializeToString()).status_code == 200
    assert post(collector, request.SerializeToString()).status_code == 200  # all duplicates
    trace = new_trace_id()
    partial = make_request([make_span(trace, new_span_id()), make_span(trace, b"\x00" * 8, "bad")])
    assert post(collector, partial.SerializeToString()).status_code == 200
    assert post(collector, b"\xff\xff not protobuf").status_code == 400

    metrics = scrape(collector)
    assert metrics[("tracehouse_spans_received_total", ())] == 14
    assert metrics[("tracehouse_spans_stored_total", ())] == 7
    assert metrics[("tracehouse_spans_duplicate_total", ())] == 6
    assert metrics[("tracehouse_spans_rejected_total", (("reason", "invalid_span"),))] == 1
    assert metrics[("tracehouse_spans_rejected_total", (("reason", "malformed_request"),))] == 1
    assert metrics[("tracehouse_ingest_queue_spans", ())] == 0
    assert metrics[("tracehouse_batch_commit_seconds_count", ())] >= 1
    assert metrics[("tracehouse_batch_spans_sum", ())] == 13


def test_healthz_is_503_once_the_writer_has_stopped(collector: RunningCollector) -> None:
    assert collector.server.writer is not None
    collector.server.writer.close()
    response = httpx.get(f"{collector.http_url}/healthz", timeout=10)
    assert response.status_code == 503 and response.json()["status"] == "unavailable"
    # Ingest now answers "retry later", not an error in the data.
    refused = post(collector, spans_request(1).SerializeToString())
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
