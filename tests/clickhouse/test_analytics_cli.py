"""`tracehouse analytics run` on a ClickHouse store: TRACEHOUSE_STORE or a --db store URL."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from bench.synth import Synth, generate
from collector.cli import main as cli_main
from collector.store import Store
from tests.clickhouse.chdb_helpers import copy_spans, open_store


def test_offline_run_on_a_clickhouse_store(tmp_path: Path, chdb_url: str, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    duck = Store(tmp_path / "source.duckdb")
    try:
        n = generate(duck.write_connection, Synth(traces=60, start=datetime(2026, 1, 5, 9), minutes=20, salt=5))
        clickhouse = open_store(chdb_url)
        copy_spans(duck.cursor(), clickhouse.client())
    finally:
        duck.close()
    monkeypatch.setenv("TRACEHOUSE_STORE", chdb_url)
    assert cli_main(["analytics", "run", "--offline", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["spans"] == n and report["backfill"] and report["llm_spans"] > 0
    assert clickhouse.rows("SELECT count() FROM span_costs") == [(report["llm_spans"],)]

    monkeypatch.delenv("TRACEHOUSE_STORE")
    assert cli_main(["analytics", "run", "--offline", "--db", chdb_url]) == 0
    out = capsys.readouterr().out
    assert out.startswith("analytics run on chdb ") and ": 0 new spans" in out


def test_unreachable_store_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["analytics", "run", "--offline", "--db", "clickhouse://u:secret@127.0.0.1:1/db"]) != 0
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err and "secret" not in err
