"""Exactly-once without an index vs with a PRIMARY KEY: insert rate and peak RSS on ~2M spans.

Run: ``python -m bench.dedup_choice [--spans 2000000]``. Each variant runs in a child process
(fresh RSS); the figures go into collector/writer.py's docstring.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timedelta

from collector.model import SpanRow
from collector.settings import Settings
from collector.store import Store, schema_sql

BATCH = 10_000


_TEMPLATE = SpanRow(
    **dict.fromkeys(("trace_id", "span_id", "name", "scope_name", "service_name"), "bench"),
    **dict.fromkeys(("parent_span_id", "status_message"), None),
    kind="llm", span_kind="client", status="ok", convention="genai",
    start_time=datetime(2026, 1, 1), end_time=datetime(2026, 1, 1), duration_ms=5.0,
    model="gpt-4o", input_tokens=100, output_tokens=50, input="x" * 600, output="x" * 600,
    attributes='{"a":1}',
)  # fmt: skip


def _rows(batch_no: int, start: datetime) -> list[SpanRow]:
    """A batch of ~1.3 KB LLM spans with random ids and increasing start times."""
    rnd = random.Random(batch_no)
    rows = []
    for i in range(BATCH):
        t = start + timedelta(milliseconds=batch_no * BATCH + i)
        ids = {"trace_id": f"{rnd.getrandbits(128):032x}", "span_id": f"{rnd.getrandbits(64):016x}"}
        rows.append(replace(_TEMPLATE, **ids, start_time=t, end_time=t + timedelta(milliseconds=5)))
    return rows


def run_variant(variant: str, spans: int, folder: str, memory_limit: str | None) -> None:
    path = os.path.join(folder, f"{variant}.duckdb")
    start = datetime(2026, 1, 1)
    elapsed = 0.0
    if variant == "antijoin":
        from collector.writer import BatchWriter

        store = Store(path)
        if memory_limit:
            store.write_connection.execute(f"SET memory_limit = '{memory_limit}'")
        writer = BatchWriter(store, Settings(batch_max_spans=BATCH, queue_max_spans=BATCH * 2))
        for b in range(spans // BATCH):
            rows = _rows(b, start)
            t0 = time.perf_counter()
            writer.submit(rows).result()
            elapsed += time.perf_counter() - t0
        writer.close()
        store.close()
    else:
        import duckdb

        from collector.arrow_rows import rows_to_arrow

        con = duckdb.connect(path)
        if memory_limit:
            con.execute(f"SET memory_limit = '{memory_limit}'")
        ddl = schema_sql().replace(
            "received_at TIMESTAMP NOT NULL\n);",
            "received_at TIMESTAMP NOT NULL,\n    PRIMARY KEY (trace_id, span_id)\n);",
        )
        con.execute(ddl)
        for b in range(spans // BATCH):
            rows = _rows(b, start)
            t0 = time.perf_counter()
            con.register("batch", rows_to_arrow(rows))
            con.execute("BEGIN")
            con.execute(
                "INSERT OR IGNORE INTO spans BY NAME SELECT *, now()::TIMESTAMP AS received_at FROM batch"
            )
            con.execute("COMMIT")
            con.unregister("batch")
            elapsed += time.perf_counter() - t0
        con.close()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{variant} (memory_limit {memory_limit or 'default'}): {spans / elapsed:,.0f} spans/s inserted, peak RSS {rss_mb:,.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spans", type=int, default=2_000_000)
    parser.add_argument("--variant", choices=["antijoin", "primary_key"])
    parser.add_argument("--folder")
    parser.add_argument(
        "--memory-limit", help="DuckDB memory_limit, e.g. 256MB (default: DuckDB's)"
    )
    args = parser.parse_args()
    if args.variant:
        run_variant(args.variant, args.spans, args.folder, args.memory_limit)
        return
    with tempfile.TemporaryDirectory() as folder:
        for variant in ("antijoin", "primary_key"):
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.dedup_choice",
                    "--variant",
                    variant,
                    "--spans",
                    str(args.spans),
                    "--folder",
                    folder,
                ]
                + (["--memory-limit", args.memory_limit] if args.memory_limit else []),
                check=True,
            )


if __name__ == "__main__":
    main()
