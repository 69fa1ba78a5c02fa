"""Process tuning of the collector for ingest: glibc malloc arenas and Python's cyclic GC.

**Malloc arenas.** glibc gives each thread that contends for the heap its own arena, up to 8 per core. The
collector's decode threads, writer, receivers and DuckDB's threads each allocate and free
megabytes of request bodies, span values and Arrow buffers; spread over many arenas, the freed
space stays mapped and the process's RSS grows well past what it holds (measured in
bench/RESULTS.md, "Ingest round 3"). Two arenas keep the memory in reuse; ``MALLOC_ARENA_MAX``
in the environment, when set, wins. On other C libraries (musl, macOS) this does nothing.

**Garbage collector.** Ingest allocates ~10 container objects per span (attribute dicts, value
tuples, lists), so CPython's generation-0 collection (every 700 net allocations) runs several
times per request, and each older-generation pass walks every object the libraries created at
import (pandas, pyarrow, FastAPI: hundreds of thousands). Those are frozen out of collection once
the collector has started, and collections run ten times less often: the span objects are
acyclic and freed by reference counting; ~2 µs per span less (bench/RESULTS.md, "Ingest round 3").
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import gc
import logging
import os

log = logging.getLogger(__name__)

_M_ARENA_MAX = -8  # mallopt parameter from glibc's malloc.h
ARENAS = 2
GC_THRESHOLDS = (7_000, 10, 10)  # CPython's defaults are (700, 10, 10)


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt  # noqa: B018 - glibc only
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


def limit_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas (before the threads start); True if applied."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    libc = _libc()
    if libc is None:
        return False
    applied = bool(libc.mallopt(_M_ARENA_MAX, arenas))
    if not applied:
        log.debug("mallopt(M_ARENA_MAX) refused")
    return applied


def trim() -> None:
    """Give the free memory at the top of each arena back to the system (after a big job)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def tune_gc() -> None:
    """Freeze the objects alive now (imports, configuration) and collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    # Frozen objects are skipped by the collection at interpreter exit too; DuckDB's bindings
    # (nanobind) then report them as leaked on stderr. Give them back before that.
    atexit.register(gc.unfreeze)
