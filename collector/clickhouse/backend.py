"""The ClickHouse backend (TRACEHOUSE_STORE=clickhouse://... or chdb://...): collector.backend's
interface over collector/clickhouse/. Nothing in it is collector state: any number of
collectors may serve one store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from collector.backend import Queries, Service
from collector.clickhouse import query, sandbox
from collector.clickhouse.retention import ClickHouseRetention
from collector.clickhouse.store import ClickHouseStore
from collector.clickhouse.writer import ClickHouseWriter
from collector.settings import Settings


class ClickHouseBackend:
    kind = "clickhouse"
    stores_keys = False  # keys come from the environment (TRACEHOUSE_*_KEYS)

    def __init__(self, store: ClickHouseStore) -> None:
        self.store = store
        self.queries: Queries = query  # type: ignore[assignment]
        self.run_sql = sandbox.run

    @classmethod
    def open(cls, settings: Settings) -> ClickHouseBackend:
        """Connect, create the database and apply the schema (StoreUnavailable otherwise)."""
        return cls(ClickHouseStore(settings.store, cluster=settings.clickhouse_cluster))

    @property
    def location(self) -> str:
        return f"store {self.store.path}"

    def open_writer(self, settings: Settings, *, observer: Callable[[float, int], None] | None = None) -> Any:
        return ClickHouseWriter(self.store, settings, observer=observer)

    def scoped(self, store: Any, project: str) -> Any:
        return store.scoped(project)

    def load_access(self, settings: Settings) -> Any:
        """Keys from the environment (TRACEHOUSE_INGEST_KEYS / TRACEHOUSE_READ_KEYS): every
        collector of a shared store gets the same ones from its deployment."""
        from collector.auth import load_access

        return load_access(None, settings)

    def summarizer(self) -> Service | None:
        return None  # `traces` and `sessions` are computed when read

    def retention(self, writer: Any, settings: Settings) -> Service:
        return ClickHouseRetention(self.store, settings)

    def analytics(self, writer: Any, settings: Settings, *, prices: Any, rules: Any) -> Any:
        """The analytics jobs, computed on slices of this store (analytics/clickhouse_runner.py)."""
        from analytics.clickhouse_runner import ClickHouseAnalyticsRunner

        return ClickHouseAnalyticsRunner(self.store.client, settings, prices=prices, rules=rules)

    def close(self) -> None:
        self.store.close()
