"""`tracehouse sql` and `tracehouse export` straight from a ClickHouse store (--db URL)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from collector.cli import main as cli_main
from collector.clickhouse.backend import ClickHouseBackend
from collector.clickhouse.store import ClickHouseStore
from collector.settings import Settings
from tests.collector.query_data import standard_traces


@pytest.fixture
def filled(chdb_url: str) -> str:
    backend = ClickHouseBackend(ClickHouseStore(chdb_url))
    writer = backend.open_writer(Settings.from_env({}))
    for rows in standard_traces():
        writer.submit(rows).result(timeout=30)
    writer.close()
    return chdb_url


def test_sql_reads_a_clickhouse_store(filled: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_main(["sql", "--db", filled, "--format", "json", "SELECT count() AS n, uniqExact(trace_id) AS t FROM spans"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["rows"] == [[44, 6]]


def test_sql_refusal_on_clickhouse_is_one_line(filled: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["sql", "--db", filled, "SELECT * FROM file('/etc/passwd')"]) != 0
    err = capsys.readouterr().err.strip()
    assert "file() is not allowed" in err and "\n" not in err


def test_export_reads_a_clickhouse_store(filled: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "spans.parquet"
    assert cli_main(["export", "--db", filled, "--since", "2026-11-20T00:00:00Z", "--out", str(out)]) == 0
    table = pq.read_table(out)
    assert table.num_rows == 36 and {"trace_id", "attributes", "received_at"} <= set(table.column_names)
    assert "wrote 36 spans" in capsys.readouterr().out


def test_bad_store_url_for_db_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["sql", "--db", "clickhouse://u:secret@:8123/x", "SELECT 1"]) != 0
    err = capsys.readouterr().err.strip()
    assert "must name a host" in err and "secret" not in err and "\n" not in err


def test_keys_refuse_to_write_a_duckdb_file_a_clickhouse_collector_never_reads(
    chdb_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRACEHOUSE_STORE", chdb_url)
    monkeypatch.setenv("TRACEHOUSE_DB", str(tmp_path / "keys.duckdb"))
    assert cli_main(["keys", "create", "--project", "shop", "--kind", "ingest"]) != 0
    err = capsys.readouterr().err.strip()
    assert "TRACEHOUSE_INGEST_KEYS" in err and "\n" not in err
    assert not (tmp_path / "keys.duckdb").exists()
    assert cli_main(["keys", "generate", "--kind", "read"]) == 0
    assert capsys.readouterr().out.startswith("th_read_")
