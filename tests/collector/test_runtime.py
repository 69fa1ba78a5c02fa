"""Process tuning of the collector (collector.runtime), in a fresh interpreter each time."""

from __future__ import annotations

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
