"""Process tuning of the collector (collector.runtime), in a fresh interpreter each time."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_python


def test_tune_gc_freezes_the_imports_and_exits_without_leak_reports() -> None:
    """DuckDB's bindings report objects still frozen at exit as leaks on stderr: none here."""
    result = run_python(
        """
        import gc
        import duckdb
        from collector.runtime import GC_THRESHOLDS, tune_gc
        con = duckdb.connect()
        con.execute("SELECT 42").fetchall()
        tune_gc()
        assert gc.get_freeze_count() > 1000, gc.get_freeze_count()
        assert gc.get_threshold() == GC_THRESHOLDS
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    assert "leaked" not in result.stderr, result.stderr


_COUNT_ARENAS = """
    import ctypes, ctypes.util, os, tempfile, threading
    from collector.runtime import cap_malloc_arenas

    if {cap}:
        assert cap_malloc_arenas(2)
    barrier = threading.Barrier(8)

    def allocate() -> None:
        barrier.wait()  # all eight allocate at once, each from its own thread
        blocks = [bytearray(100_000) for _ in range(50)]
        barrier.wait()
        del blocks

    threads = [threading.Thread(target=allocate) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.fopen.restype = ctypes.c_void_p
    path = os.path.join(tempfile.mkdtemp(), "malloc.xml")
    stream = libc.fopen(path.encode(), b"w")
    libc.malloc_info(0, ctypes.c_void_p(stream))
    libc.fclose(ctypes.c_void_p(stream))
    print(open(path).read().count("<heap nr="))
"""


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="glibc's malloc_info on Linux")
def test_capped_malloc_arenas_are_shared_by_all_threads() -> None:
    """Eight threads allocating at once get their own glibc arenas, unless the collector's cap
    (collector.runtime.cap_malloc_arenas, called at start by `tracehouse collector`) is set."""
    uncapped = run_python(_COUNT_ARENAS.format(cap=False))
    capped = run_python(_COUNT_ARENAS.format(cap=True))
    assert uncapped.returncode == 0 and capped.returncode == 0, (uncapped.stderr, capped.stderr)
    assert int(uncapped.stdout) > 4, uncapped.stdout  # main + one per thread up to 8 per core
    assert int(capped.stdout) <= 2, capped.stdout
