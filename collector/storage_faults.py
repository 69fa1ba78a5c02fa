"""When the database cannot be written (disk full, read-only or unwritable directory).

Such a failure is transient for exporters: the batch is not acknowledged, ingest answers
UNAVAILABLE / 503 and they retry. It is logged once when it starts and once when writes
succeed again, not once per batch. A failed checkpoint makes DuckDB invalidate the database
("must be restarted"); then the store's connection is reopened, which replays the WAL, so the
collector recovers by itself once space returns, with every acknowledged span intact.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

import duckdb

from collector.errors import one_line

if TYPE_CHECKING:
    from collector.store import Store

log = logging.getLogger(__name__)

# Phrases of OS and DuckDB errors that mean "cannot write the database files".
_MARKERS = (
    "no space left",
    "read-only file system",
    "permission denied",
    "could not write",
    "disk quota",
    "input/output error",
    "file too large",
    "database has been invalidated",
    "failed to create checkpoint",
)


def is_storage_error(exc: BaseException) -> bool:
    """True for errors of the disk or file system under the database, not of the data."""
    if isinstance(exc, (duckdb.IOException, duckdb.FatalException, OSError)):
        return True
    text = str(exc).lower()
    return any(marker in text for marker in _MARKERS)


class StorageHealth:
    """Tracks whether the database can be written; logs the transitions only."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.failing_since_batches = 0  # failed batches since the failure began; 0 = healthy
        self.failures = 0  # failure episodes since start

    @property
    def failing(self) -> bool:
        return self.failing_since_batches > 0

    def failed(self, exc: BaseException, store: Store) -> duckdb.DuckDBPyConnection:
        """Record one failed write; return the connection to use next (reopened if DuckDB gave up)."""
        with self._lock:
            if not self.failing:
                self.failures += 1
                log.error(
                    "database %s cannot be written: %s; ingest answers UNAVAILABLE / 503 until it can",
                    store.path, one_line(exc),
                )
            self.failing_since_batches += 1
        if isinstance(exc, duckdb.FatalException) or "invalidated" in str(exc).lower():
            try:
                return store.reopen()
            except duckdb.Error as reopen_error:  # still cannot open: try again on the next batch
                log.debug("reopening %s failed: %s", store.path, one_line(reopen_error))
        return store.write_connection

    def recovered(self, store: Store) -> None:
        """Called after a successful commit while failing."""
        with self._lock:
            if self.failing:
                log.warning(
                    "database %s writable again after %d refused batches; ingest resumed",
                    store.path, self.failing_since_batches,
                )
                self.failing_since_batches = 0
