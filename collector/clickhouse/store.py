"""Owns the connection to ClickHouse: a client per thread, the database and the schema.

Unlike the DuckDB file, a ClickHouse store may be shared by any number of collectors: nothing
here holds state that another collector would need (exactly-once comes from the table engine,
see schema.sql). ``clickhouse://`` reaches a server over HTTP through clickhouse-connect;
``chdb://`` runs the same SQL on ClickHouse embedded in this process (one data directory per
process, as chdb allows).
"""

from __future__ import annotations

import logging
import re
import threading
from importlib import resources
from typing import Any

from collector.clickhouse.url import StoreURL, parse_store_url
from collector.errors import one_line

# The tables and views users may read through SQL on this backend, besides analytics tables.
SPAN_RELATIONS = ("spans", "traces", "sessions")
_CREATE = re.compile(r"^(CREATE\s+(?:TABLE|VIEW)\s+IF\s+NOT\s+EXISTS\s+)(\w+)", re.IGNORECASE)


class StoreUnavailable(RuntimeError):
    """ClickHouse cannot be reached or refused the schema; one line."""


def schema_sql() -> str:
    return resources.files("collector.clickhouse").joinpath("schema.sql").read_text(encoding="utf-8")


def statements(sql: str) -> list[str]:
    """The statements of a DDL file: comments dropped, split at a ';' that ends a line."""
    text = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [part.strip() for part in re.split(r";\s*(?:\n|$)", text) if part.strip()]


def cluster_statements(sql: str, cluster: str, database: str) -> list[str]:
    """schema.sql for a sharded cluster: every object created ON CLUSTER; span rows live in
    ``span_store_local`` on each shard and ``span_store`` is a Distributed table over them,
    sharded by trace id so every copy of a span (and every span of a trace) lands on one shard,
    where ReplacingMergeTree and FINAL deduplicate it."""
    out: list[str] = []
    for statement in statements(sql):
        match = _CREATE.match(statement)
        if match is None:
            out.append(statement)
            continue
        name = match.group(2)
        local = "span_store_local" if name == "span_store" else name
        out.append(f"{match.group(1)}{local} ON CLUSTER {cluster}{statement[match.end():]}")
        if name == "span_store":
            out.append(
                f"CREATE TABLE IF NOT EXISTS span_store ON CLUSTER {cluster} AS span_store_local "
                f"ENGINE = Distributed({cluster}, {database}, span_store_local, cityHash64(trace_id))"
            )
    return out


class ClickHouseStore:
    """The ClickHouse database of a collector (or of several: it holds no collector state).

    ``project`` set (see :meth:`scoped`): the query functions read that project's rows only.
    """

    def __init__(self, url: str | StoreURL, *, cluster: str = "", apply_schema: bool = True) -> None:
        self.url = parse_store_url(url) if isinstance(url, str) else url
        self.database = self.url.database
        self.cluster = cluster
        self.project: str | None = None
        self._local = threading.local()
        self._clients: list[Any] = []
        self._lock = threading.Lock()
        if apply_schema:
            self._create()

    @property
    def path(self) -> str:
        """Where the store is (no password), for banners and messages."""
        return self.url.display

    @property
    def storage_table(self) -> str:
        """The table that holds span rows on this server (the local table on a cluster)."""
        return "span_store_local" if self.cluster else "span_store"

    @property
    def insert_settings(self) -> dict[str, Any]:
        """On a cluster, an insert returns once every shard has its rows (not when the Distributed
        table has queued them): the writer acknowledges only what is stored."""
        return {"distributed_foreground_insert": 1} if self.cluster else {}

    @property
    def on_cluster(self) -> str:
        return f" ON CLUSTER {self.cluster}" if self.cluster else ""

    def scoped(self, project: str) -> ClickHouseStore:
        """The same store seen by a reader of one project (shares this store's clients)."""
        view = object.__new__(ClickHouseStore)
        view.__dict__.update(self.__dict__)
        view.project = project
        return view

    # -- clients -------------------------------------------------------------------------------

    def _connect(self, database: str) -> Any:
        import clickhouse_connect

        with _Quiet():  # the driver's retry warnings would repeat our one line
            return self._client(clickhouse_connect, self.url, database)

    def _client(self, clickhouse_connect: Any, url: StoreURL, database: str) -> Any:
        try:
            if url.engine == "chdb":
                return clickhouse_connect.get_client(dsn=f"chdb://{url.path}", database=database)
            return clickhouse_connect.get_client(
                host=url.host,
                port=url.port,
                username=url.username,
                password=url.password,
                database=database,
                secure=url.secure,
                # One request per query; the HTTP session's default pool is per client already.
                autogenerate_session_id=False,
            )
        except Exception as exc:  # noqa: BLE001 - driver errors vary by engine
            raise StoreUnavailable(f"cannot open the ClickHouse store {url.display}: {_reason(exc)}") from None

    def client(self) -> Any:
        """This thread's client (clickhouse-connect clients are not shared between threads)."""
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._connect(self.database)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def _create(self) -> None:
        """Create the database and apply schema.sql (idempotent; every collector does it at start)."""
        admin = self._connect("default")
        try:
            admin.command(f"CREATE DATABASE IF NOT EXISTS {self.database}{self.on_cluster}")
        except Exception as exc:  # noqa: BLE001
            raise StoreUnavailable(f"cannot create database {self.database}: {_reason(exc)}") from None
        finally:
            if self.url.engine != "chdb":  # chdb clients share the one embedded engine
                admin.close()
        sql = schema_sql()
        ddl = cluster_statements(sql, self.cluster, self.database) if self.cluster else statements(sql)
        client = self.client()
        for statement in ddl:
            try:
                client.command(statement)
            except Exception as exc:  # noqa: BLE001
                raise StoreUnavailable(f"ClickHouse refused the schema: {_reason(exc)}") from None

    # -- shorthands ----------------------------------------------------------------------------

    def command(self, sql: str, parameters: dict[str, Any] | None = None, settings: dict[str, Any] | None = None) -> Any:
        return self.client().command(sql, parameters=parameters, settings=settings)

    def rows(self, sql: str, parameters: dict[str, Any] | None = None, settings: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return self.client().query(sql, parameters=parameters, settings=settings).result_rows

    def records(
        self, sql: str, parameters: dict[str, Any] | None = None, settings: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        result = self.client().query(sql, parameters=parameters, settings=settings)
        names = result.column_names
        return [dict(zip(names, row)) for row in result.result_rows]

    @property
    def write_connection(self) -> None:
        """None: every thread writes through its own client (the writer asks collector.writer's way)."""
        return None

    def reopen(self) -> None:
        """Forget this thread's client after a failure; the next call connects again."""
        self._local.client = None

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        if self.url.engine == "chdb":
            return  # the embedded engine lives as long as the process; its clients hold nothing else
        for client in clients:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass


class _Quiet:
    """Hold the HTTP driver's warnings back while connecting; a failure is reported once, by us."""

    _NAMES = ("urllib3.connectionpool", "clickhouse_connect.driver._backend.http_sync", "clickhouse_connect.driver.httpclient")

    def __enter__(self) -> None:
        self._levels = [(logging.getLogger(n), logging.getLogger(n).level) for n in self._NAMES]
        for logger, _ in self._levels:
            logger.setLevel(logging.CRITICAL)

    def __exit__(self, *exc: object) -> None:
        for logger, level in self._levels:
            logger.setLevel(level)


_OS_ERROR = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")


def _reason(exc: BaseException) -> str:
    """The reason, in one line: an OS error's own words when the driver wraps one."""
    text = str(exc).strip()
    os_error = _OS_ERROR.search(text)
    if os_error:
        return os_error.group(1).strip()
    return one_line(exc)[:300]
