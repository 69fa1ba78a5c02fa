"""Process tuning of the collector: Python's cyclic garbage collector and glibc's free heap.

Ingest allocates ~10 container objects per span (attribute dicts, value tuples, lists), so
CPython's generation-0 collection (every 700 net allocations) runs several times per request,
and each older-generation pass walks every object the libraries created at import (pandas,
pyarrow, FastAPI: hundreds of thousands). Those are frozen out of collection once the collector
has started, and collections run ten times less often: the span objects are acyclic and freed
by reference counting. ~2 µs per span less, 7 % of the preparation (bench/RESULTS.md, "Ingest
round 3"). Capping glibc's malloc arenas was measured too and changed nothing (DuckDB allocates
through its own jemalloc), so it is not done.

glibc keeps memory freed by Python, pyarrow and gRPC in its arenas for reuse; after a burst (an
analytics run's pandas frames in bench/memory.py's trace) 140 MB of freed heap stayed with the
process. :class:`HeapTrimmer` hands such free heap back to the system.
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import functools
import gc
import logging
import threading
import time

GC_THRESHOLDS = (7_000, 10, 10)  # CPython's defaults are (700, 10, 10)
TRIM_ABOVE_BYTES = 32 * 1024 * 1024  # free glibc heap kept before a trim
TRIM_EVERY_S = 2.0

log = logging.getLogger(__name__)


def tune_gc() -> None:
    """Freeze the objects alive now (imports, configuration) and collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    # Frozen objects are skipped by the collection at interpreter exit too; DuckDB's bindings
    # (nanobind) then report them as leaked on stderr. Give them back before that.
    atexit.register(gc.unfreeze)


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")
    ]  # fmt: skip


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """glibc with mallinfo2 (2.33+) and malloc_trim, or None (musl, macOS: nothing to trim)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError):
        return None
    return libc


def glibc_heap() -> tuple[int, int] | None:
    """(bytes in use, bytes free in its arenas) of glibc malloc over all arenas, or None."""
    libc = _glibc()
    if libc is None:
        return None
    info = libc.mallinfo2()
    return info.uordblks + info.hblkhd, info.fordblks


class HeapTrimmer:
    """Every ``every_s``, give glibc's free heap back (``malloc_trim``) once over ``above_bytes``.

    A check is one mallinfo2 call. glibc still counts trimmed chunks as free, so once over the
    threshold every check trims: a walk of the free lists that gives back only the pages that
    became resident again (``seconds`` adds up the time; bench/memory.py prints it).
    """

    def __init__(self, above_bytes: int = TRIM_ABOVE_BYTES, every_s: float = TRIM_EVERY_S) -> None:
        self.above_bytes, self.every_s = above_bytes, every_s
        self.trimmed = 0  # trims done
        self.seconds = 0.0  # spent trimming
        self._libc = _glibc()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tracehouse-heap-trim", daemon=True)

    def start(self) -> HeapTrimmer:
        if self._libc is not None:
            self._thread.start()
        return self

    def trim_if_idle_heap(self) -> bool:
        """Trim now if glibc keeps more than ``above_bytes`` of free heap; whether it trimmed."""
        if self._libc is None or self._libc.mallinfo2().fordblks <= self.above_bytes:
            return False
        started = time.perf_counter()
        self._libc.malloc_trim(0)
        self.seconds += time.perf_counter() - started
        self.trimmed += 1
        return True

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.trim_if_idle_heap()
            except Exception:  # noqa: BLE001 - never let tuning stop the collector
                log.exception("heap trim failed")
                return

    def stop(self) -> None:
        self._stop.set()
