"""Redaction at ingest and oversized payloads, through a real collector and the official exporter.

Secrets are planted everywhere a span carries text (input/output, attributes, resource, status
message, event and its attributes, JSON-encoded messages); afterwards no column of any stored row
may contain one. Payloads over the limit are kept truncated, flagged and counted in /metrics.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode
from prometheus_client.parser import text_string_to_metric_families

from collector.redaction import RedactionFileError, load_redactor
from tests.conftest import RunningCollector, start_collector_process

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"  # passes Luhn
NOT_A_CARD = "4111 1111 1111 1112"  # same shape, fails Luhn: an id, kept
PHONE = "+1 415-555-0132"
API_KEY = "sk-proj-Abcdefghijklmnop1234567890"
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRETS = (EMAIL, CARD, PHONE, API_KEY, AWS_KEY, "hunter2", "jane@corp.example")


def export(collector: RunningCollector, build: callable, resource: dict[str, str] | None = None) -> None:  # type: ignore[valid-type]
    provider = TracerProvider(resource=Resource.create({"service.name": "redaction", **(resource or {})}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=collector.grpc_endpoint, insecure=True)))
    build(provider.get_tracer("tests.redaction"))
    provider.shutdown()


def everything_stored(collector: RunningCollector) -> str:
    """Every column of every stored span, as one text."""
    rows = collector.sql("SELECT * FROM spans")
    return "\n".join(str(value) for row in rows for value in row)


def plant_secrets(tracer) -> None:  # type: ignore[no-untyped-def]
    with tracer.start_as_current_span(f"answer {EMAIL}") as span:
        span.set_attribute("openinference.span.kind", "LLM")
        span.set_attribute("llm.model_name", "gpt-4o")
        span.set_attribute("input.value", f"My card is {CARD}, call me on {PHONE}, order id {NOT_A_CARD}")
        span.set_attribute("output.value", f"Use key {API_KEY} and write to {EMAIL}")
        span.set_attribute("gen_ai.input.messages", json.dumps([{"role": "user", "content": f"mail {EMAIL}"}]))
        span.set_attribute("http.request.header.authorization", "Basic hunter2")
        span.set_attribute("db.password", "hunter2")
        span.set_attribute("user.email", "jane@corp.example")
        span.set_attribute("aws.config", f"key={AWS_KEY}")
        span.add_event("exception", {"exception.message": f"no account for {EMAIL}", "exception.type": "KeyError"})
        span.set_status(Status(StatusCode.ERROR, f"card {CARD} declined"))


@pytest.mark.parametrize("workers", [0, 1], ids=["in-process", "worker-process"])
def test_builtin_rules_leave_no_secret_in_any_column(make_collector, workers: int) -> None:  # type: ignore[no-untyped-def]
    collector: RunningCollector = make_collector(redaction_file="builtin", ingest_workers=workers)
    export(collector, plant_secrets, {"enduser.email": EMAIL})
    stored = everything_stored(collector)
    assert stored, "nothing was stored"
    leaked = [secret for secret in SECRETS if secret in stored]
    assert not leaked, leaked
    row = collector.sql("SELECT name, input, output, status_message, attributes, events, kind FROM spans")[0]
    name, input_, output, status_message, attributes, events, kind = row
    assert kind == "llm" and name == "answer [EMAIL]"
    assert input_ == f"My card is [CARD], call me on [PHONE], order id {NOT_A_CARD}"
    assert output == "Use key [API_KEY] and write to [EMAIL]"
    assert status_message == "card [CARD] declined"
    attrs = json.loads(attributes)
    assert "http.request.header.authorization" not in attrs and "db.password" not in attrs  # dropped
    assert attrs["user.email"] == "[REDACTED]"  # masked: the key stays
    assert attrs["aws.config"] == "key=[API_KEY]"
    assert "no account for [EMAIL]" in events


def test_rules_file_of_your_own(make_collector, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rules = tmp_path / "rules.toml"
    rules.write_text(
        'drop_keys = ["customer.*"]\nmask_keys = ["order.id"]\nmask = "***"\n'
        '[[patterns]]\nname = "ticket"\nregex = "TICKET-[0-9]+"\nreplace = "TICKET-?"\n',
        encoding="utf-8",
    )
    collector: RunningCollector = make_collector(redaction_file=str(rules))

    def build(tracer) -> None:  # type: ignore[no-untyped-def]
        with tracer.start_as_current_span("support") as span:
            span.set_attribute("openinference.span.kind", "CHAIN")
            span.set_attribute("customer.name", "Jane")
            span.set_attribute("customer.address.city", "Berlin")
            span.set_attribute("order.id", "A-77")
            span.set_attribute("input.value", f"see TICKET-4242 from {EMAIL}")

    export(collector, build)
    attributes, input_ = collector.sql("SELECT attributes, input FROM spans")[0]
    attrs = json.loads(attributes)
    assert not [k for k in attrs if k.startswith("customer.")] and attrs["order.id"] == "***"
    assert input_ == f"see TICKET-? from {EMAIL}"  # only the file's own rules apply


def test_without_rules_nothing_is_changed(collector: RunningCollector) -> None:
    export(collector, plant_secrets)
    assert EMAIL in everything_stored(collector)


@pytest.mark.parametrize(
    "content, reason",
    [("drop_keys = [", "redaction rules"), ('[[patterns]]\nname = "x"\nregex = "("\nreplace = ""\n', r"missing \)"),
     ('[[patterns]]\nname = "x"\n', "lacks regex, replace")],
)
def test_a_bad_rules_file_is_one_clear_line(tmp_path: Path, content: str, reason: str) -> None:
    rules = tmp_path / "bad.toml"
    rules.write_text(content, encoding="utf-8")
    with pytest.raises(RedactionFileError, match=reason):
        load_redactor(str(rules))
    child = start_collector_process(tmp_path / "x.duckdb", wait=False, REDACTION_FILE=str(rules))
    assert child.process.wait(60) == 2
    lines = [line for line in child.wait_output().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("tracehouse collector: error: redaction rules"), lines


def truncated_total(collector: RunningCollector) -> float:
    text = httpx.get(f"{collector.http_url}/metrics", timeout=10).text
    family = next(f for f in text_string_to_metric_families(text) if f.name == "tracehouse_spans_truncated")
    return sum(sample.value for sample in family.samples)


def test_oversized_payload_is_kept_truncated_flagged_and_counted(make_collector) -> None:  # type: ignore[no-untyped-def]
    collector: RunningCollector = make_collector(max_payload_bytes=1000)
    assert truncated_total(collector) == 0

    def build(tracer) -> None:  # type: ignore[no-untyped-def]
        with tracer.start_as_current_span("run"):
            with tracer.start_as_current_span("huge") as span:
                span.set_attribute("openinference.span.kind", "CHAIN")
                span.set_attribute("input.value", "x" * 50_000)
            with tracer.start_as_current_span("small") as span:
                span.set_attribute("openinference.span.kind", "CHAIN")
                span.set_attribute("input.value", "fine")

    export(collector, build)
    rows = dict((name, (flag, len(text or ""))) for name, flag, text in collector.sql("SELECT name, payload_truncated, input FROM spans"))
    assert set(rows) == {"run", "huge", "small"}  # one oversized value does not drop its batch
    assert rows["huge"][0] is True and 0 < rows["huge"][1] <= 1000
    assert rows["small"] == (False, 4)
    assert truncated_total(collector) == 1
