"""Worker processes for :func:`collector.prepare.prepare_request`.

The collector's one GIL is shared by gRPC, HTTP, the writer thread and DuckDB's callers; the
~40 µs of Python per span that turn a request body into Arrow rows run here instead, in
``TRACEHOUSE_INGEST_WORKERS`` processes. Workers never open the database (the collector
process owns it, DESIGN.md): bytes go in, a pickled Arrow table and the refused spans come out.

Workers are spawned (not forked: the collector has DuckDB, gRPC and asyncio threads by then)
and exit on their own if the collector dies without closing the pool (``kill -9``).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor

_PARENT_POLL_S = 1.0


def create_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` spawned processes, started now so the first requests do not wait."""
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(os.getpid(),),
    )
    for _ in range(workers):
        pool.submit(_warm)  # imports decode/normalize/pyarrow in each worker before traffic
    return pool


def _init_worker(parent_pid: int) -> None:
    from collector.runtime import keep_out, use_malloc_for_arrow

    keep_out("pandas", "numpy")  # ~60 MB less per worker (collector.runtime)
    use_malloc_for_arrow()
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()


def _exit_with_parent(parent_pid: int) -> None:
    """A worker blocks on its task queue forever if the collector is killed: leave instead."""
    while os.getppid() == parent_pid:
        time.sleep(_PARENT_POLL_S)
    os._exit(0)


def _warm() -> None:
    import collector.prepare  # noqa: F401 - the import is the warm-up
