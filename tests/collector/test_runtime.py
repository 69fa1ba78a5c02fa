"""Process tuning of the collector (collector.runtime), in a fresh interpreter each time."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )


def test_tune_gc_freezes_the_imports_and_exits_without_leak_reports() -> None:
    """DuckDB's bindings report objects still frozen at exit as leaks on stderr: none here."""
    result = _run(
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


def test_heap_trimmer_gives_idle_glibc_heap_back_to_the_system() -> None:
    """Freed Python objects leave glibc's heap resident; a trim returns it once over the threshold."""
    result = _run(
        """
        from pathlib import Path
        from collector.runtime import HeapTrimmer, glibc_heap

        def rss_mb():
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024

        trimmer = HeapTrimmer(above_bytes=32 << 20)
        assert not trimmer.trim_if_idle_heap()  # nothing idle yet
        blocks = [bytes(4000) + bytes([i % 256]) for i in range(60_000)]  # ~240 MB of malloc'd objects
        keep = blocks[::20]  # every 20th stays alive, so the heap's top cannot simply shrink
        del blocks
        used, free = glibc_heap()
        assert free > 150 << 20, free
        before = rss_mb()
        assert trimmer.trim_if_idle_heap()
        after = rss_mb()
        assert before - after > 100, (before, after)
        assert trimmer.trimmed == 1
        print("ok", len(keep))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")
