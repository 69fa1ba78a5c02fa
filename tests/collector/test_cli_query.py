"""`tracehouse sql` and `tracehouse export` run as subprocesses, against a running collector
(tests/conftest.py, ephemeral ports) and against a stopped collector's file (--db)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from collector.store import Store
from tests.collector.query_data import BASE, insert_spans, standard_traces
from tests.conftest import RunningCollector

ROOT = Path(__file__).resolve().parents[2]
SPANS = 44


def seed(path: Path) -> Store:
    store = Store(path)
    for n, rows in enumerate(standard_traces()):
        insert_spans(store, rows, received_at=BASE + timedelta(days=3, seconds=n))
    return store


def tracehouse(
    *args: str, url: str = "http://127.0.0.1:9", stdin: str | None = None
) -> subprocess.CompletedProcess:
    env = {**os.environ, "TRACEHOUSE_API_URL": url, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "collector.cli", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture()
def collector_url(collector: RunningCollector) -> str:
    """A running collector (tests/conftest.py) holding the standard traces, stored by its writer."""
    assert collector.server.writer is not None
    for rows in standard_traces():
        collector.server.writer.submit(rows).result(timeout=30)
    return collector.http_url


@pytest.fixture()
def stopped_db(tmp_path: Path) -> Path:
    """A database file whose collector has stopped; its trace summary was never brought up to date."""
    path = tmp_path / "stopped.duckdb"
    seed(path).close()
    return path


def test_sql_prints_a_table_from_the_collector(collector_url: str) -> None:
    result = tracehouse(
        "sql", "SELECT session_id, trace_count FROM sessions ORDER BY 1", url=collector_url
    )
    assert result.returncode == 0, result.stderr
    assert "session_id" in result.stdout and "sess-2" in result.stdout and "3 rows" in result.stderr


def test_sql_csv_and_json_formats(collector_url: str) -> None:
    text = "SELECT kind, count(*) AS n FROM spans GROUP BY kind ORDER BY kind"
    as_csv = tracehouse("sql", text, "--format", "csv", url=collector_url)
    rows = list(csv.reader(io.StringIO(as_csv.stdout)))
    assert rows[0] == ["kind", "n"] and ["llm", "11"] in rows and ["workflow", "6"] in rows
    as_json = json.loads(tracehouse("sql", text, "--format", "json", url=collector_url).stdout)
    assert as_json["columns"] == ["kind", "n"] and ["tool", 11] in as_json["rows"]
    from_stdin = tracehouse(
        "sql", "-", "--format", "json", url=collector_url, stdin="SELECT count(*) FROM traces"
    )
    assert json.loads(from_stdin.stdout)["rows"] == [[6]]


def test_sql_refusal_is_one_line(collector_url: str) -> None:
    result = tracehouse("sql", "COPY spans TO 'x.csv'", url=collector_url)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "tracehouse sql: error: COPY statements are not allowed: SQL here is read-only (one SELECT)"
    ]


def test_sql_without_a_collector_says_so(tmp_path: Path) -> None:
    result = tracehouse("sql", "SELECT 1", url="http://127.0.0.1:9")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "cannot reach the collector at http://127.0.0.1:9" in line and "--db" in line


def test_sql_on_a_stopped_collectors_file(stopped_db: Path) -> None:
    result = tracehouse(
        "sql",
        "SELECT count(*), sum(span_count) FROM traces",
        "--db",
        str(stopped_db),
        "--format",
        "json",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rows"] == [
        [6, SPANS]
    ]  # summary caught up in a read-only overlay
    refused = tracehouse("sql", "DELETE FROM spans", "--db", str(stopped_db))
    assert refused.returncode == 2 and "DELETE statements are not allowed" in refused.stderr
    assert (
        "no database file"
        in tracehouse("sql", "SELECT 1", "--db", str(stopped_db) + ".nope").stderr
    )


def test_sql_on_a_file_held_by_a_collector_points_to_the_collector(tmp_path: Path) -> None:
    store = seed(tmp_path / "held.duckdb")
    try:
        result = tracehouse("sql", "SELECT 1", "--db", str(tmp_path / "held.duckdb"))
    finally:
        store.close()
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "held by a running collector" in line and "drop --db" in line


def test_export_parquet_from_the_collector(collector_url: str, tmp_path: Path) -> None:
    out = tmp_path / "spans.parquet"
    result = tracehouse("export", "--format", "parquet", "--out", str(out), url=collector_url)
    assert result.returncode == 0, result.stderr
    table = pq.read_table(out)
    assert table.num_rows == SPANS and f"wrote {SPANS} spans" in result.stdout
    assert {"trace_id", "span_id", "attributes", "cost_usd", "received_at"} <= set(
        table.column_names
    )
    assert not (tmp_path / "spans.parquet.part").exists()


def test_export_csv_of_a_time_range_from_the_collector(collector_url: str, tmp_path: Path) -> None:
    out = tmp_path / "range.csv"
    result = tracehouse(
        "export",
        "--format",
        "csv",
        "--since",
        "2026-11-20T09:00:00Z",
        "--until",
        "2026-11-20T10:30:00Z",
        "--out",
        str(out),
        url=collector_url,
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 8 + 8 + 4  # traces 1, 2 and 3
    assert all("2026-11-20" in r["start_time"] for r in rows)


def test_export_from_a_stopped_collectors_file(stopped_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "old.parquet"
    result = tracehouse(
        "export", "--until", "2026-11-19T00:00:00Z", "--out", str(out), "--db", str(stopped_db)
    )
    assert result.returncode == 0, result.stderr
    assert pq.read_table(out).num_rows == 8  # trace 6, two days earlier


def test_export_bad_time_is_one_line(tmp_path: Path) -> None:
    result = tracehouse("export", "--since", "last week", "--out", str(tmp_path / "x.parquet"))
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("tracehouse export: error: --since:") and "ISO 8601" in line
