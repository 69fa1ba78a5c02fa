"""schemathesis against the collector's own OpenAPI schema (create_app in-process): no 500s.

Every operation the app documents (query API, SQL, export, analytics, key management, ops,
OTLP/HTTP) is called with generated parameters and bodies, positive and negative, against a store
holding real traces; a bad value must come back as a 4xx with a reason, never as a server error.
The app has keys, and each call carries the one its path needs (an ingest key for OTLP, else an
admin key), so the routes themselves are reached.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from analytics.pricing import load_prices
from analytics.rules import load_rules
from analytics.runner import AnalyticsRunner
from collector.api import create_app
from collector.auth import Access, request_kind
from collector.keys import KeyVerifier
from collector.metrics import IngestMetrics
from collector.pipeline import Pipeline
from collector.settings import Settings
from collector.store import Store
from collector.writer import BatchWriter
from tests.collector.query_data import standard_traces, store_through_writer


INGEST = "th_ingest_aaaaaaaaaaaa_" + "A" * 43
ADMIN = "th_admin_eeeeeeeeeeee_" + "E" * 43


def auth(path: str) -> dict[str, str]:
    """The key a path needs: an ingest key for OTLP, an admin key (which opens the rest) otherwise."""
    return {"authorization": f"Bearer {INGEST if request_kind(path) == 'ingest' else ADMIN}"}


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    db = Path(tmp_path_factory.mktemp("api-fuzz")) / "api.duckdb"
    store = Store(db)
    store_through_writer(store, standard_traces())
    config = Settings(db=str(db), sql_timeout_s=5.0, sql_max_rows=200)
    writer = BatchWriter(store, config)
    metrics = IngestMetrics()
    metrics.bind_writer(writer)
    pipeline = Pipeline(config, writer, metrics)
    verifier = KeyVerifier()
    cursor = store.cursor()
    verifier.load(cursor, ingest_env=f"fuzz={INGEST}", admin_env=ADMIN)
    cursor.close()
    app = create_app(config, store, writer, metrics, pipeline, Access(verifier))
    app.state.analytics = AnalyticsRunner(store, writer, config, prices=load_prices(None), rules=load_rules(None))
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    pipeline.close()
    writer.close()
    store.close()


def _labels() -> list[str]:
    """Every documented operation ("GET /api/traces", ...); the schema needs no database."""
    spec = create_app(Settings(), None).openapi()  # type: ignore[arg-type]
    return [f"{method.upper()} {path}" for path, item in spec["paths"].items() for method in item]


@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda m: m.value)
@pytest.mark.parametrize("label", _labels())
def test_no_operation_answers_a_server_error(api_schema: schemathesis.BaseSchema, label: str, mode: GenerationMode) -> None:
    operation = next(r.ok() for r in api_schema.get_all_operations() if r.ok().label == label)

    @settings(
        max_examples=int(os.environ.get("FUZZ_EXAMPLES", "25")),
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(operation.as_strategy(generation_mode=mode))
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=auth(operation.path), checks=[not_a_server_error])

    try:
        check()
    except Unsatisfiable:
        pytest.skip(f"{label} takes no input that could be invalid")


@pytest.mark.parametrize("path", ["/api/traces", "/api/sessions"])
def test_offset_past_duckdbs_range_is_a_client_error(api_schema: schemathesis.BaseSchema, path: str) -> None:
    """Found by the fuzzer above: an OFFSET over 2**63 - 1 was a DuckDB ConversionException, a 500."""
    operation = next(r.ok() for r in api_schema.get_all_operations() if r.ok().label == f"GET {path}")
    case = operation.Case(query={"limit": 1, "offset": 2**63})
    response = case.call(headers=auth(path))
    assert response.status_code == 422, response.text


@pytest.mark.parametrize("now", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"])
def test_overview_at_the_ends_of_the_calendar_is_a_client_error(api_schema: schemathesis.BaseSchema, now: str) -> None:
    """Found by the fuzzer above: `now` near year 1 overflowed the window arithmetic (a 500)."""
    operation = next(r.ok() for r in api_schema.get_all_operations() if r.ok().label == "GET /api/analytics/overview")
    response = operation.Case(query={"now": now}).call(headers=auth("/api/analytics/overview"))
    assert response.status_code == 400, response.text
