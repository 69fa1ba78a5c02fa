"""The trace-summary backfill fits a small DuckDB memory limit because it merges in chunks.

A file whose spans were never summarized (written before the summary table, or by a build
script) gets its whole summary on the first catch_up. In one transaction that grouping and its
uncommitted rows outgrow a small ``TRACEHOUSE_DUCKDB_MEMORY_LIMIT`` (DuckDB's out-of-memory
error, seen with 5 M spans at 64 MB); chunked, it fits, and the summary is the one-pass one.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from collector import rollup
from collector.store import Store

TRACES = 30_000  # 300,000 spans with some text: well over LIMIT when grouped at once
BATCHES = 30
LIMIT = "32MB"
# One DuckDB thread, the same on every machine: with it the unchunked catch-up and refresh run out
# of memory even at 64MB and the chunked ones fit in 24MB; with two threads both sat near 32MB and
# the unchunked backfill once fitted under a loaded machine's scheduling.
THREADS = 1
COMPARED = "SELECT * EXCLUDE (has_root) FROM trace_summary ORDER BY trace_id"

# Ten spans per trace, stored in BATCHES batches stamped in commit order like the writer's.
_SPANS = """
INSERT INTO spans BY NAME
SELECT md5(t::VARCHAR) AS trace_id,
       substr(md5(t::VARCHAR || '-' || k), 1, 16) AS span_id,
       CASE WHEN k > 0 THEN substr(md5(t::VARCHAR || '-0'), 1, 16) END AS parent_span_id,
       'step ' || k || ' of job ' || t AS name,
       CASE WHEN k = 0 THEN 'workflow' WHEN k % 2 = 0 THEN 'llm' ELSE 'tool' END AS kind,
       'internal' AS span_kind,
       CASE WHEN (t + k) % 97 = 0 THEN 'error' ELSE 'ok' END AS status,
       TIMESTAMP '2026-01-01' + to_milliseconds(t * 1000 + k * 10) AS start_time,
       TIMESTAMP '2026-01-01' + to_milliseconds(t * 1000 + k * 10 + 5) AS end_time,
       5.0 AS duration_ms,
       'service-' || t % 7 AS service_name,
       'test' AS convention,
       'session-' || t // 3 AS session_id,
       'agent-' || (t + k) % 5 AS agent_name,
       CASE WHEN k % 2 = 0 THEN 'model-' || k % 3 END AS model,
       k * 10 AS input_tokens, k AS output_tokens,
       TIMESTAMP '2026-02-01' + to_seconds($batch) AS received_at
FROM range($lo, $hi) a(t), range(10) b(k)
"""


def build(path: Path) -> Store:
    store = Store(path)
    per = TRACES // BATCHES
    for batch in range(BATCHES):
        store.write_connection.execute(_SPANS, {"batch": batch, "lo": batch * per, "hi": (batch + 1) * per})
    store.close()
    limited = Store(path, memory_limit=LIMIT)
    limited.write_connection.execute(f"SET threads = {THREADS}")
    return limited


def test_backfill_in_chunks_fits_a_small_memory_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Without chunks the first catch-up over every span fails under the limit ...
    unchunked = build(tmp_path / "unchunked.duckdb")
    monkeypatch.setattr(rollup, "CHUNK_SPANS", 10 * TRACES)
    with pytest.raises(duckdb.OutOfMemoryException):
        rollup.catch_up(unchunked)
    unchunked.close()

    # ... in chunks of 30,000 spans it fits, and equals the summary built in one pass without a limit.
    monkeypatch.setattr(rollup, "CHUNK_SPANS", 30_000)
    store = build(tmp_path / "chunked.duckdb")
    assert rollup.catch_up(store) == 10 * TRACES
    chunked = store.cursor().execute(COMPARED).fetchall()
    watermark = store.cursor().execute("SELECT watermark FROM trace_summary_state").fetchall()
    store.close()

    monkeypatch.setattr(rollup, "CHUNK_SPANS", 10 * TRACES)
    once = Store(tmp_path / "unchunked.duckdb")  # the same spans, no limit
    assert rollup.catch_up(once) == 10 * TRACES
    assert once.cursor().execute(COMPARED).fetchall() == chunked
    assert len(chunked) == TRACES
    assert watermark == once.cursor().execute("SELECT watermark FROM trace_summary_state").fetchall()
    assert rollup.catch_up(once) == 0


def test_a_chunk_ends_on_a_batch_stamp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A chunk never splits a batch (one received_at), so the watermark stays exact."""
    store = Store(tmp_path / "t.duckdb")
    per = 1_000  # traces per batch: 10,000 spans
    for batch in range(3):
        store.write_connection.execute(_SPANS, {"batch": batch, "lo": batch * per, "hi": (batch + 1) * per})
    cur = store.cursor()
    stamps = [row[0] for row in cur.execute("SELECT DISTINCT received_at FROM spans ORDER BY 1").fetchall()]
    monkeypatch.setattr(rollup, "CHUNK_SPANS", 2_500)  # a quarter of a batch
    assert rollup._chunk_end(cur, rollup._EPOCH, stamps[-1]) == stamps[0]
    monkeypatch.setattr(rollup, "CHUNK_SPANS", 10_001)  # one span into the second batch
    assert rollup._chunk_end(cur, rollup._EPOCH, stamps[-1]) == stamps[1]
    assert rollup._chunk_end(cur, stamps[1], stamps[-1]) == stamps[2]
    assert rollup.catch_up(store) == 30 * per
    assert cur.execute("SELECT count(*), sum(span_count) FROM trace_summary").fetchone() == (3 * per, 30 * per)


def test_refresh_in_slices_fits_a_small_memory_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """refresh_traces (after the cost job set spans.cost_usd) recomputes its traces in slices: at
    once, 300,000 spans' traces run out of memory under the limit; sliced they fit, and the
    summary is the one built from scratch over the same spans."""
    build(tmp_path / "built.duckdb").close()
    plain = Store(tmp_path / "built.duckdb")  # summarized, then costs set in place
    assert rollup.catch_up(plain) == 10 * TRACES
    plain.write_connection.execute("UPDATE spans SET cost_usd = input_tokens * 1e-6 + output_tokens * 3e-6 "
                                    "WHERE kind = 'llm'")
    ids = [r[0] for r in plain.cursor().execute("SELECT DISTINCT trace_id FROM spans").fetchall()]
    plain.close()
    for name in ("once", "sliced", "fresh"):
        shutil.copy(tmp_path / "built.duckdb", tmp_path / f"{name}.duckdb")

    monkeypatch.setattr(rollup, "REFRESH_SPANS", 10 * TRACES)
    once = Store(tmp_path / "once.duckdb", memory_limit=LIMIT)
    once.write_connection.execute(f"SET threads = {THREADS}")
    with pytest.raises(duckdb.OutOfMemoryException):
        rollup.refresh_traces(once, ids)
    once.close()

    monkeypatch.undo()
    assert rollup.REFRESH_SPANS < 10 * TRACES
    sliced = Store(tmp_path / "sliced.duckdb", memory_limit=LIMIT)
    sliced.write_connection.execute(f"SET threads = {THREADS}")
    rollup.refresh_traces(sliced, ids)
    got = sliced.cursor().execute(COMPARED).fetchall()
    sliced.close()

    fresh = Store(tmp_path / "fresh.duckdb")  # no limit: the summary of every span, costs included
    fresh.write_connection.execute("DELETE FROM trace_summary")
    fresh.write_connection.execute("DELETE FROM trace_summary_state")
    monkeypatch.setattr(rollup, "CHUNK_SPANS", 10 * TRACES)
    assert rollup.catch_up(fresh) == 10 * TRACES
    want = fresh.cursor().execute(COMPARED).fetchall()
    fresh_costs = fresh.cursor().execute("SELECT count(*) FROM trace_summary WHERE cost_usd > 0").fetchall()[0][0]
    fresh.close()
    assert got == want
    assert len(got) == TRACES
    assert fresh_costs == TRACES  # every trace has LLM spans: the refresh brought in their cost
