"""Owns the DuckDB file: opens it once per process, applies the schema, hands out cursors.

DuckDB allows one read-write process per file (DESIGN.md decision 1). Inside that process the
writer thread uses ``write_connection`` and every reader takes its own ``cursor()``; cursors of
one database see each other's committed data.
"""

from __future__ import annotations

import threading
from importlib import resources
from pathlib import Path

import duckdb

SCHEMA_VERSION = 6

# Rows written under an older schema, brought up to date once, when a file's version is below the
# key (schema.sql itself stays idempotent DDL, applied at every start).
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    6: (  # analytics per project
        # Per-minute rollups are derived: the next analytics run recomputes them (ROLLUP_VERSION).
        "DELETE FROM minute_rollup WHERE project IS NULL",
        "DELETE FROM error_minutes WHERE project IS NULL",
        "DELETE FROM call_minutes WHERE project IS NULL",
        # An anomaly about a trace is its trace's; per-service windows are judged again, per project.
        "UPDATE anomalies SET project = f.project FROM trace_features f "
        "WHERE anomalies.project IS NULL AND anomalies.trace_id = f.trace_id",
        "DELETE FROM anomalies WHERE project IS NULL",
        # With a single project every alert is its; otherwise an old alert stays unattributed (seen
        # only by unscoped readers) and resolves at the next run, which fires per project.
        "UPDATE alerts SET project = (SELECT min(project) FROM spans) "
        "WHERE project IS NULL AND (SELECT count(DISTINCT project) FROM spans) = 1",
    ),
}

# External access stays off for the whole database: SQL typed by users (read_csv, COPY, ATTACH,
# INSTALL ...) can then never reach a file or the network, whatever slips past the sandbox.
_CONNECT_CONFIG: dict[str, str | bool | int] = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    # No row-group merging at checkpoints. With it, every checkpoint (each 16 MB of WAL, ~12,000
    # spans) read back the table's last, partly filled row group and compressed it again with the
    # new rows: up to a whole row group (122,880 spans, ~170 MB uncompressed) in memory each time,
    # the +150 MB RSS spikes under ingest, and most of the checkpoint's CPU. Row groups stay the
    # size of one checkpoint; row groups whose rows are all deleted are still dropped
    # (bench/RESULTS.md, "Round 4: DuckDB memory").
    "max_vacuum_tasks": 0,
}


class StoreLockedError(RuntimeError):
    """Another process holds the database file."""


def schema_sql() -> str:
    return resources.files("collector").joinpath("schema.sql").read_text(encoding="utf-8")


class Store:
    """The database of one collector process."""

    def __init__(self, path: str | Path, *, read_only: bool = False, memory_limit: str | None = None) -> None:
        self.path = str(path)
        self.read_only = read_only
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            config: dict[str, str | bool | int] = dict(_CONNECT_CONFIG)
            if memory_limit:
                config["memory_limit"] = memory_limit
            self._con = duckdb.connect(self.path, read_only=read_only, config=config)
            self._config = config
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise StoreLockedError(
                    f"database {self.path} is in use by another process (is a collector running? "
                    "stop it or query through its API)"
                ) from exc
            raise
        self._lock = threading.Lock()
        if not read_only:
            self._apply_schema()

    def _apply_schema(self) -> None:
        con = self._con
        con.execute("BEGIN")
        con.execute(schema_sql())
        row = con.execute("SELECT max(version) FROM schema_version").fetchone()
        current = row[0] if row else None
        if current is not None:  # a new file has nothing to migrate
            for version in sorted(v for v in _MIGRATIONS if current < v <= SCHEMA_VERSION):
                for statement in _MIGRATIONS[version]:
                    con.execute(statement)
        if current is None or current < SCHEMA_VERSION:
            con.execute("INSERT INTO schema_version (version) VALUES (?)", [SCHEMA_VERSION])
        con.execute("COMMIT")

    @property
    def write_connection(self) -> duckdb.DuckDBPyConnection:
        """The connection the single writer thread uses; nobody else writes."""
        return self._con

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A new connection to the same database, for one reader thread."""
        with self._lock:
            return self._con.cursor()

    def reopen(self) -> duckdb.DuckDBPyConnection:
        """Replace the connection after DuckDB invalidated it (a failed checkpoint); replays the WAL.

        Cursors handed out before keep failing; new ones come from the new connection.
        """
        with self._lock:
            try:
                self._con.close()
            except duckdb.Error:
                pass
            self._con = duckdb.connect(self.path, read_only=self.read_only, config=dict(self._config))
            return self._con

    def close(self) -> None:
        with self._lock:
            try:
                self._con.execute("CHECKPOINT")
            except duckdb.Error:
                pass
            self._con.close()
