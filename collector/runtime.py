"""Process tuning of the collector and its workers: garbage collector, allocator, packages kept out.

Ingest allocates ~10 container objects per span (attribute dicts, value tuples, lists), so
CPython's generation-0 collection (every 700 net allocations) runs several times per request,
and each older-generation pass walks every object the libraries created at import (pyarrow,
DuckDB, FastAPI: hundreds of thousands). Those are frozen out of collection once the collector
has started, and collections run ten times less often: the span objects are acyclic and freed
by reference counting. ~2 µs per span less, 7 % of the preparation (bench/RESULTS.md, "Ingest
round 3").

glibc gives each thread that allocates its own malloc arena, up to 8 per core, and each keeps
its own free memory: the collector has ~40 threads (gRPC, DuckDB, decode, writer, summary,
analytics, the API's worker threads), and at its peak 14 thread arenas held 74 MB.
:func:`cap_malloc_arenas` caps them at two: peak RSS under the ingest benchmark 328-334 MB
against 337-347 MB in five alternating pairs, rate inside the noise (bench/RESULTS.md, "Round
7"; in round 3, at 500 MB peaks dominated by DuckDB, the same cap had shown nothing).

Trimming glibc's heap (``malloc_trim`` every 2 s) after analytics runs was measured with
bench/memory.py and gave nothing back (RSS 500-534 MB between runs with it, 503 without), so it
is not done.

pyarrow imports pandas, when it is installed, whenever it converts Python objects it has to
inspect (a list to ``pa.array``, type inference, ``from_pylist``), only to ask whether they are
pandas objects: ~50 MB of RSS for good, in the collector and in every ingest worker, though no
collector code uses pandas (issue 2). :func:`keep_out` makes a process refuse to import it;
pyarrow takes that as "not installed". An ingest worker refuses numpy too (pyarrow imports it
at its own import when installed; 11 MB of RSS, and preparing a request never uses it); the
collector process keeps numpy for its analytics.
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import gc
import importlib.abc
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

GC_THRESHOLDS = (7_000, 10, 10)  # CPython's defaults are (700, 10, 10)
MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)


def tune_gc() -> None:
    """Freeze the objects alive now (imports, configuration) and collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    # Frozen objects are skipped by the collection at interpreter exit too; DuckDB's bindings
    # (nanobind) then report them as leaked on stderr. Give them back before that.
    atexit.register(gc.unfreeze)


def cap_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Threads share at most ``arenas`` glibc malloc arenas (as ``MALLOC_ARENA_MAX`` would); call
    before the process starts its threads. False where the C library is not glibc (no mallopt)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_ARENA_MAX, arenas))
    except (OSError, AttributeError):
        return False


class _RefuseImports(importlib.abc.MetaPathFinder):
    def __init__(self, packages: frozenset[str]) -> None:
        self.packages = packages

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> ModuleSpec | None:  # fmt: skip
        top = fullname.partition(".")[0]
        if top in self.packages:
            raise ModuleNotFoundError(f"{top} is kept out of this collector process", name=fullname)
        return None


def keep_out(*packages: str) -> None:
    """From now on importing any of ``packages`` fails in this process. Called at process start;
    a package already imported stays. tests/analytics/test_memory.py checks that a running
    collector, its workers and its analytics work without pandas, tests/collector/
    test_ingest_workers.py that workers work without numpy."""
    refused = frozenset(p for p in packages if p not in sys.modules)
    if refused and not any(isinstance(f, _RefuseImports) and refused <= f.packages for f in sys.meta_path):
        sys.meta_path.insert(0, _RefuseImports(refused))


def keep_pandas_out() -> None:
    """``import pandas`` fails from now on (a collector process: its analytics need numpy)."""
    keep_out("pandas")


def use_malloc_for_arrow() -> None:
    """Arrow allocates through malloc in this process, before its first conversion.

    Arrow's default pool (mimalloc) keeps the segments of every batch conversion: ~30 MB more
    peak RSS than malloc for the same work (measured over 150,000 bench spans), ~8 MB more in an
    ingest worker after 300 requests.
    """
    import pyarrow

    pyarrow.set_memory_pool(pyarrow.system_memory_pool())
