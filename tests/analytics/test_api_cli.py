"""`POST /api/analytics/run`, the overview route and `tracehouse analytics run` (collector or offline)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from analytics.runner import AnalyticsRunner
from bench.synth import Synth, generate
from collector.api import create_app
from collector.cli import main
from collector.settings import Settings
from collector.store import Store

TRAFFIC = Synth(traces=300, start=datetime(2026, 3, 1, 8), minutes=30, salt=11)


@pytest.fixture
def app(analytics_store: Store, make_runner: Callable[..., AnalyticsRunner]) -> FastAPI:
    generate(analytics_store.write_connection, TRAFFIC)
    app = create_app(Settings.from_env({}), analytics_store)
    app.state.analytics = make_runner()
    return app


def test_run_route_runs_the_jobs_and_overview_reads_the_rollup(app: FastAPI) -> None:
    with TestClient(app) as client:
        run = client.post("/api/analytics/run")
        assert run.status_code == 200 and run.json()["traces"] == TRAFFIC.traces
        assert client.post("/api/analytics/run").json()["spans"] == 0  # nothing new
        at = {"now": "2026-03-01T09:30:00+01:00"}  # 08:30 UTC
        view = client.get("/api/analytics/overview", params=at)
    body = view.json()
    assert (
        view.status_code == 200 and body["traces"] == TRAFFIC.traces and body["active_agents"] == 6
    )
    assert body["cost_today_usd"] > 0 and body["top_errors"]


def test_run_route_without_a_runner_is_a_clear_503(analytics_store: Store) -> None:
    with TestClient(create_app(Settings.from_env({}), analytics_store)) as client:
        response = client.post("/api/analytics/run")
    assert (
        response.status_code == 503
        and response.json()["detail"] == "analytics are not running in this collector"
    )


@pytest.fixture
def served(app: FastAPI) -> Iterator[str]:
    """The app on a real HTTP server on 127.0.0.1 (ephemeral port)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        thread.join(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(10)
    sock.close()


def test_cli_asks_the_running_collector(served: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analytics", "run", "--api-url", served, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["traces"] == TRAFFIC.traces and report["backfill"]


def test_cli_runs_offline_on_the_file_when_no_collector_answers(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    db = tmp_path / "offline.duckdb"
    store = Store(db)
    generate(store.write_connection, TRAFFIC)
    store.close()
    with socket.socket() as free:  # a port nobody listens on
        free.bind(("127.0.0.1", 0))
        nobody = f"http://127.0.0.1:{free.getsockname()[1]}"
    assert main(["analytics", "run", "--api-url", nobody, "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"analytics run on {db}: ") and f"{TRAFFIC.traces:,} traces" in out
    assert main(["analytics", "run", "--offline", "--db", str(db)]) == 0
    assert " 0 new spans" in capsys.readouterr().out


def test_cli_reports_a_bad_rules_file_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    bad = tmp_path / "rules.toml"
    bad.write_text("[detection]\nslow_trace_ms = -1\n")
    monkeypatch.setenv("TRACEHOUSE_RULES_FILE", str(bad))
    assert main(["analytics", "run", "--offline", "--db", str(tmp_path / "x.duckdb")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"tracehouse analytics: error: {bad} [detection].slow_trace_ms=-1: must be >= 0"]
