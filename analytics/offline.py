"""Running the analytics jobs without a collector: on the database file, in this process.

Only when no collector holds the file (DESIGN.md decision 1): the Store's single connection is
then ours, and :class:`DirectWriter` stands in for the collector's writer thread with the same
``execute(fn) -> Future`` contract (fn runs inside a transaction).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

import duckdb

from collector.store import Store

T = TypeVar("T")


class DirectWriter:
    """Runs each write on the store's write connection, in a transaction, in the caller's thread."""

    def __init__(self, store: Store) -> None:
        self._con = store.write_connection
        self._lock = threading.Lock()

    def execute(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            self._con.execute("BEGIN")
            try:
                result = fn(self._con)
                self._con.execute("COMMIT")
            except BaseException as exc:  # noqa: BLE001 - handed to the caller through the future
                self._con.execute("ROLLBACK")
                future.set_exception(exc)
                return future
        future.set_result(result)
        return future
