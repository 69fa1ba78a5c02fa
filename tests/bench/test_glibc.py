"""bench/glibc.py: glibc malloc's heap accounting that bench/memory.py samples, in a fresh interpreter."""

from __future__ import annotations

from tests.conftest import run_python


def test_glibc_heap_reports_what_malloc_holds() -> None:
    """bench/memory.py reads glibc's heap through this: objects allocated show as in use, freed ones as free."""
    result = run_python(
        """
        from bench.glibc import glibc_heap

        used, free = glibc_heap()
        blocks = [bytes(4000) + bytes([i % 256]) for i in range(30_000)]  # ~120 MB of malloc'd objects
        grown, _ = glibc_heap()
        assert grown - used > 100 << 20, (used, grown)
        keep = blocks[::20]  # every 20th stays alive, so the freed chunks stay in the heap
        del blocks
        after, free_after = glibc_heap()
        assert grown - after > 90 << 20, (grown, after)
        assert free_after - free > 90 << 20, (free, free_after)
        print("ok", len(keep))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")
