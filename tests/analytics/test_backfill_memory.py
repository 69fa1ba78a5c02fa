"""The analytics backfill fits a small DuckDB memory limit, and its chunks add up to one pass.

A chunk's trace features need memory in proportion to the chunk (at 64 MB a 250,000-span chunk
failed), the chunks were cut at quantiles of every pending ``received_at`` (one sort of 8 bytes per
span, growing with the backlog), and the forests' baseline sample was a window over a week of whole
trace rows. Now each chunk's end is a top-N of ``CHUNK_SPANS`` stamps and the sample is picked per
group before its rows are read.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from analytics import rollups
from analytics import runner as runner_module
from analytics.runner import AnalyticsRunner
from bench.synth import Synth, generate
from collector.store import Store
from tests.analytics.test_runner import _snapshot
from tests.collector.test_rollup_memory import _SPANS

TRAFFIC = Synth(traces=70_000, minutes=24 * 60, salt=3)  # ~400,000 spans
# Between what a default chunk needs and what one chunk of every span needs, with room both ways:
# measured on this traffic, default chunks ran out at 44MB and fitted at 48MB, one chunk ran out
# at 80MB and fitted at 96MB. (At ~200,000 spans and 48MB the chunked run had under 10 % to spare
# and once ran out of memory under a loaded machine.)
LIMIT = "60MB"
THREADS = 2  # DuckDB's memory per query grows with its threads: the same on every machine
NOW = TRAFFIC.end + timedelta(minutes=10)


def traffic(path: Path, memory_limit: str | None = None) -> Store:
    store = Store(path)
    generate(store.write_connection, TRAFFIC)
    store.close()
    store = Store(path, memory_limit=memory_limit)
    store.write_connection.execute(f"SET threads = {THREADS}")
    return store


def watermark(store: Store) -> list[tuple[object, ...]]:
    return store.cursor().execute("SELECT watermark FROM analytics_state WHERE job = 'spans'").fetchall()


def assert_same(chunked: dict[str, list[tuple[object, ...]]], once: dict[str, list[tuple[object, ...]]]) -> None:
    """Equal rows; sums of floats may differ in the last bits with the order they were added in
    (one more than ``_snapshot``'s rounding hides when it falls on a boundary)."""
    assert chunked.keys() == once.keys()
    for table, rows in chunked.items():
        assert len(rows) == len(once[table]), table
        for got, want in zip(rows, once[table], strict=True):
            assert len(got) == len(want)
            for x, y in zip(got, want, strict=True):
                assert x == (pytest.approx(y, abs=2e-6) if isinstance(y, float) else y), (table, got, want)


def test_backfill_in_chunks_fits_a_small_memory_limit_and_equals_one_pass(
    tmp_path: Path, make_runner: Callable[..., AnalyticsRunner], monkeypatch: pytest.MonkeyPatch
) -> None:
    # In one chunk the backfill runs out of memory under the limit ...
    monkeypatch.setattr(runner_module, "CHUNK_SPANS", 10**9)
    unchunked = traffic(tmp_path / "unchunked.duckdb", LIMIT)
    with pytest.raises(duckdb.OutOfMemoryException):
        make_runner(unchunked).run_now(now=NOW)
    unchunked.close()

    # ... in chunks of the default size it fits, and every derived table is the one a single pass
    # without a limit gives.
    monkeypatch.undo()
    assert runner_module.CHUNK_SPANS < 200_000
    limited = traffic(tmp_path / "limited.duckdb", LIMIT)
    report = make_runner(limited).run_now(now=NOW)
    spans = limited.cursor().execute("SELECT count(*) FROM spans").fetchall()[0][0]
    assert report.spans == spans and report.backfill and report.traces == TRAFFIC.traces
    chunked, chunked_watermark = _snapshot(limited), watermark(limited)
    limited.close()

    monkeypatch.setattr(runner_module, "CHUNK_SPANS", 10**9)
    once = traffic(tmp_path / "once.duckdb")
    assert make_runner(once).run_now(now=NOW).spans == spans
    assert_same(chunked, _snapshot(once))
    assert len(chunked["trace_features"]) == TRAFFIC.traces
    assert watermark(once) == chunked_watermark
    once.close()


TRACES = 4_000  # in BATCHES batches of 5,000 spans
BATCHES = 8


def build(path: Path) -> Store:
    """Ten spans per trace in BATCHES batches, stamped in commit order like the writer's."""
    store = Store(path)
    per = TRACES // BATCHES
    for batch in range(BATCHES):
        store.write_connection.execute(_SPANS, {"batch": batch, "lo": batch * per, "hi": (batch + 1) * per})
    return store


def test_chunk_bounds_end_on_batch_stamps(tmp_path: Path) -> None:
    """A chunk never splits a batch (one received_at), and each bound is found when asked."""
    store = build(tmp_path / "b.duckdb")
    cur = store.cursor()
    stamps = [r[0] for r in cur.execute("SELECT DISTINCT received_at FROM spans ORDER BY 1").fetchall()]
    epoch = datetime(1970, 1, 1)
    assert list(rollups.chunk_bounds(cur, epoch, stamps[-1], 7_000)) == stamps[1::2]
    assert list(rollups.chunk_bounds(cur, epoch, stamps[-1], 5_000)) == stamps
    assert list(rollups.chunk_bounds(cur, stamps[2], stamps[4], 1)) == stamps[3:5]
    assert list(rollups.chunk_bounds(cur, epoch, stamps[-1], 10**9)) == [stamps[-1]]
    store.close()
