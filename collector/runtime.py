"""Process tuning of the collector for ingest: Python's cyclic garbage collector.

Ingest allocates ~10 container objects per span (attribute dicts, value tuples, lists), so
CPython's generation-0 collection (every 700 net allocations) runs several times per request,
and each older-generation pass walks every object the libraries created at import (pandas,
pyarrow, FastAPI: hundreds of thousands). Those are frozen out of collection once the collector
has started, and collections run ten times less often: the span objects are acyclic and freed
by reference counting. ~2 µs per span less, 7 % of the preparation (bench/RESULTS.md, "Ingest
round 3"). Capping glibc's malloc arenas was measured too and changed nothing (DuckDB allocates
through its own jemalloc), so it is not done.
"""

from __future__ import annotations

import atexit
import gc

GC_THRESHOLDS = (7_000, 10, 10)  # CPython's defaults are (700, 10, 10)


def tune_gc() -> None:
    """Freeze the objects alive now (imports, configuration) and collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    # Frozen objects are skipped by the collection at interpreter exit too; DuckDB's bindings
    # (nanobind) then report them as leaked on stderr. Give them back before that.
    atexit.register(gc.unfreeze)
