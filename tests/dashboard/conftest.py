"""A real collector, seeded once per module with known agent traffic, for the dashboard tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from collector.settings import Settings
from tests.dashboard import seed

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"


@dataclass
class SeededCollector:
    http_url: str
    grpc_endpoint: str
    seeded: seed.Seeded
    server: object

    def sql(self, query: str) -> list[tuple[object, ...]]:
        """Ground truth, read from the collector's own store."""
        cursor = self.server.store.cursor()  # type: ignore[attr-defined]
        try:
            return cursor.execute(query).fetchall()
        finally:
            cursor.close()


    def has_analytics(self) -> bool:
        return bool(self.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'span_costs'")[0][0])

    def priced_total(self) -> float | None:
        """Sum of priced span costs (None before the analytics jobs exist)."""
        return self.sql("SELECT sum(cost_usd) FROM span_costs")[0][0] if self.has_analytics() else None


def _run_analytics(server: object, settings: Settings) -> None:
    """Compute costs, rollups and anomalies now instead of waiting for the collector's timer."""
    try:
        from analytics.runner import AnalyticsRunner
    except ImportError:  # analytics not present: cost figures stay unknown, pages must say so
        return
    runner = AnalyticsRunner(server.store, server.writer, settings)  # type: ignore[attr-defined]
    try:
        runner.run_now()
    finally:
        with contextlib.suppress(Exception):
            runner.notifier.stop()


@contextlib.contextmanager
def _seeded(folder: Path, analyse: bool = True, **overrides: object) -> Iterator[SeededCollector]:
    """An in-process collector holding the seeded traffic, its analytics jobs run once (unless
    ``analyse`` is false: nothing priced yet)."""
    serve = pytest.importorskip("collector.serve", reason="needs the collector's CollectorServer (ingest path)")
    CollectorServer = serve.CollectorServer  # noqa: N806

    settings = Settings(host="127.0.0.1", grpc_port=0, http_port=0, db=str(folder / "tracehouse.duckdb"),
                        batch_interval_ms=5.0, **overrides)
    server = CollectorServer(settings).start()
    try:
        sent = seed.send(server.grpc_endpoint)
        seed.wait_stored(server.http_url, sent.spans)
        if analyse:
            _run_analytics(server, server.settings)
        yield SeededCollector(server.http_url, server.grpc_endpoint, sent, server)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def seeded_collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeededCollector]:
    with _seeded(tmp_path_factory.mktemp("dashboard")) as collector:
        yield collector


@pytest.fixture(scope="module")
def alerting_collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeededCollector]:
    """The seeded collector with an alert rule of every severity, each fired by the traffic."""
    rules = pytest.importorskip("analytics.rules", reason="needs the analytics jobs (alert rules)")
    folder = tmp_path_factory.mktemp("alerting")
    (folder / "rules.toml").write_text(seed.severity_rules(rules.SEVERITIES))
    with _seeded(folder, rules_file=str(folder / "rules.toml")) as collector:
        yield collector


@pytest.fixture
def api(seeded_collector: SeededCollector, monkeypatch: pytest.MonkeyPatch) -> SeededCollector:
    """The seeded collector, with the dashboard pointed at it."""
    monkeypatch.setenv("TRACEHOUSE_API_URL", seeded_collector.http_url)
    return seeded_collector
