"""Process tuning of the collector: Python's cyclic garbage collector, and pandas kept out.

Ingest allocates ~10 container objects per span (attribute dicts, value tuples, lists), so
CPython's generation-0 collection (every 700 net allocations) runs several times per request,
and each older-generation pass walks every object the libraries created at import (pyarrow,
DuckDB, FastAPI: hundreds of thousands). Those are frozen out of collection once the collector
has started, and collections run ten times less often: the span objects are acyclic and freed
by reference counting. ~2 µs per span less, 7 % of the preparation (bench/RESULTS.md, "Ingest
round 3"). Capping glibc's malloc arenas was measured too and changed nothing (DuckDB allocates
through its own jemalloc), so it is not done.

Trimming glibc's heap (``malloc_trim`` every 2 s) after analytics runs was measured with
bench/memory.py and gave nothing back (RSS 500-534 MB between runs with it, 503 without), so it
is not done.

pyarrow imports pandas, when it is installed, whenever it converts Python objects it has to
inspect (a list to ``pa.array``, type inference, ``from_pylist``), only to ask whether they are
pandas objects: ~50 MB of RSS for good, in the collector and in every ingest worker, though no
collector code uses pandas (issue 2). :func:`keep_pandas_out` makes a collector process refuse
to import it; pyarrow takes that as "not installed".
"""

from __future__ import annotations

import atexit
import gc
import importlib.abc
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

GC_THRESHOLDS = (7_000, 10, 10)  # CPython's defaults are (700, 10, 10)


def tune_gc() -> None:
    """Freeze the objects alive now (imports, configuration) and collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    # Frozen objects are skipped by the collection at interpreter exit too; DuckDB's bindings
    # (nanobind) then report them as leaked on stderr. Give them back before that.
    atexit.register(gc.unfreeze)


class _RefusePandas(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> ModuleSpec | None:  # fmt: skip
        if fullname.partition(".")[0] == "pandas":
            raise ModuleNotFoundError("pandas is kept out of the collector process", name=fullname)
        return None


def keep_pandas_out() -> None:
    """From now on ``import pandas`` fails in this process (a collector's, or an ingest worker's).
    Called at process start; tests/analytics/test_memory.py checks that a running collector, its
    workers and its analytics work without it."""
    if "pandas" not in sys.modules and not any(isinstance(f, _RefusePandas) for f in sys.meta_path):
        sys.meta_path.insert(0, _RefusePandas())
