"""The store behind a collector, whichever engine holds it: the seam between DuckDB and ClickHouse.

:func:`open_backend` reads ``TRACEHOUSE_STORE`` and returns a :class:`Backend`: the store object
(``app.state.store``), its writer, its named queries and SQL sandbox, and its background jobs.
Receivers, the pipeline, the API routes and pages call through it and never name an engine.
The DuckDB backend wraps the existing modules unchanged (collector.store, writer, query,
sql_sandbox, rollup, retention, project_scope); the ClickHouse one lives in collector/clickhouse/.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from types import ModuleType
from typing import Any, Protocol

from collector.settings import Settings


class Service(Protocol):
    """A background job of the collector (trace summaries, retention, analytics)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


class Queries(Protocol):
    """The named reads behind /api (collector.query on DuckDB, collector.clickhouse.query on ClickHouse).

    ``store`` is the backend's store or its project-scoped view (:meth:`Backend.scoped`).
    """

    def list_traces(
        self, store: Any, timeout_s: float, filters: Any, *, limit: int = 50, offset: int = 0,
        sort: str = "start_time", order: str = "desc",
    ) -> tuple[list[dict[str, Any]], int]: ...

    def get_trace(self, store: Any, timeout_s: float, trace_id: str) -> list[dict[str, Any]] | None: ...

    def list_sessions(
        self, store: Any, timeout_s: float, *, start: datetime | None = None, end: datetime | None = None,
        user: str | None = None, limit: int = 50, offset: int = 0, sort: str = "last_seen", order: str = "desc",
    ) -> tuple[list[dict[str, Any]], int]: ...

    def get_session(self, store: Any, timeout_s: float, session_id: str, *, limit: int = 1000) -> dict[str, Any] | None: ...

    def count_spans(self, store: Any, since: datetime | None, until: datetime | None) -> tuple[int, datetime | None]: ...

    def iter_span_batches(
        self, store: Any, since: datetime | None, until: datetime | None, received_until: datetime | None
    ) -> Iterator[Any]: ...


class SQLRunner(Protocol):
    """One read-only user query under the sandbox's rules; returns collector.sql_sandbox.SQLResult."""

    def __call__(
        self, store: Any, sql: str, *, timeout_s: float, max_rows: int, max_bytes: int | None = None,
        dialect: str | None = None,
    ) -> Any: ...


class Backend(Protocol):
    """What a collector needs from its store."""

    kind: str  # "duckdb" or "clickhouse": the SQL dialect users write
    stores_keys: bool  # API keys live in the store (/api/keys can create and revoke them)
    store: Any  # collector.store.Store or collector.clickhouse.store.ClickHouseStore
    queries: Queries
    run_sql: SQLRunner

    @property
    def location(self) -> str:
        """Where the spans are, for the start-up banner (no secrets)."""
        ...

    def open_writer(self, settings: Settings, *, observer: Callable[[float, int], None] | None = None) -> Any:
        """The single group-commit writer of this collector (collector.writer.BatchWriter's contract)."""
        ...

    def scoped(self, store: Any, project: str) -> Any:
        """``store`` as seen by a reader of one project."""
        ...

    def load_access(self, settings: Settings) -> Any:
        """collector.auth.Access with the stored and the environment's keys."""
        ...

    def summarizer(self) -> Service | None: ...

    def retention(self, writer: Any, settings: Settings) -> Service: ...

    def analytics(self, writer: Any, settings: Settings, *, prices: Any, rules: Any) -> Any:
        """The analytics runner (analytics.runner.AnalyticsRunner's interface), or None."""
        ...

    def close(self) -> None: ...


def _sql_runner(module: ModuleType) -> SQLRunner:
    def run(store: Any, sql: str, *, timeout_s: float, max_rows: int, max_bytes: int | None = None,
            dialect: str | None = None) -> Any:
        # DuckDB reads its own dialect only: the dashboard's "duckdb" is the identity here.
        if dialect not in (None, "duckdb"):
            raise module.SQLRefused(f"this collector stores spans in DuckDB: write DuckDB SQL, not {dialect}")
        return module.run(store, sql, timeout_s=timeout_s, max_rows=max_rows, max_bytes=max_bytes)

    return run


class DuckDBBackend:
    """The embedded default: one DuckDB file owned by this process (DESIGN.md decision 1)."""

    kind = "duckdb"
    stores_keys = True

    def __init__(self, store: Any) -> None:
        from collector import query, sql_sandbox

        self.store = store
        self.queries: Queries = query  # type: ignore[assignment]
        self.run_sql = _sql_runner(sql_sandbox)

    @classmethod
    def open(cls, settings: Settings) -> DuckDBBackend:
        from collector.store import Store

        # StoreLockedError when another process has the file.
        return cls(Store(settings.db, memory_limit=settings.duckdb_memory_limit))

    @property
    def location(self) -> str:
        return f"database {self.store.path}"

    def open_writer(self, settings: Settings, *, observer: Callable[[float, int], None] | None = None) -> Any:
        from collector.agent_resolver import AgentResolver
        from collector.writer import BatchWriter

        return BatchWriter(self.store, settings, resolver=AgentResolver(), observer=observer)

    def scoped(self, store: Any, project: str) -> Any:
        from collector.project_scope import ScopedStore

        return ScopedStore(store, project)

    def load_access(self, settings: Settings) -> Any:
        from collector.auth import load_access

        return load_access(self.store, settings)

    def summarizer(self) -> Service | None:
        from collector.rollup import Summarizer

        return Summarizer(self.store)

    def retention(self, writer: Any, settings: Settings) -> Service:
        from collector.retention import RetentionJob

        return RetentionJob(self.store, writer, settings)

    def analytics(self, writer: Any, settings: Settings, *, prices: Any, rules: Any) -> Any:
        from analytics.runner import AnalyticsRunner

        return AnalyticsRunner(self.store, writer, settings, prices=prices, rules=rules)

    def close(self) -> None:
        self.store.close()  # checkpoints the WAL into the file


def open_backend(settings: Settings) -> Backend:
    """The backend TRACEHOUSE_STORE names (empty: the DuckDB file at TRACEHOUSE_DB)."""
    if not settings.store:
        return DuckDBBackend.open(settings)
    from collector.clickhouse.backend import ClickHouseBackend

    return ClickHouseBackend.open(settings)


def backend_of(app_state: Any) -> Backend:
    """The backend of an app (create_app wraps a bare DuckDB store in one)."""
    return app_state.backend
