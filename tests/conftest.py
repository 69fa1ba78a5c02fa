"""Shared fixtures: a real collector (gRPC + HTTP on ephemeral loopback ports, DuckDB in tmp_path).

``collector`` runs in-process on a background thread; ``make_collector(**settings)`` builds one
with other settings (a tiny queue, a small size limit). ``start_collector_process`` runs
``python -m collector`` as a child process, for kill -9 and SIGTERM tests.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from collector.serve import CollectorServer
from collector.settings import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class RunningCollector:
    """A collector serving on loopback; ``sql`` reads its store (through a reader cursor)."""

    server: CollectorServer
    db_path: Path

    @property
    def settings(self) -> Settings:
        return self.server.settings

    @property
    def grpc_endpoint(self) -> str:
        """host:port, as grpc channels and OTLPSpanExporter(endpoint=..., insecure=True) take it."""
        return self.server.grpc_endpoint

    @property
    def http_url(self) -> str:
        """Base URL of OTLP/HTTP and the API, e.g. http://127.0.0.1:PORT (no trailing slash)."""
        return self.server.http_url

    def sql(self, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run SQL on the live store and return all rows."""
        assert self.server.store is not None
        cursor = self.server.store.cursor()
        try:
            return cursor.execute(query, params or []).fetchall()
        finally:
            cursor.close()

    def stop(self) -> None:
        self.server.stop()


def collector_settings(db_path: Path, **overrides: Any) -> Settings:
    """Settings for a test collector: loopback, ephemeral ports, the given DB file."""
    base = Settings(
        host="127.0.0.1",
        grpc_port=0,
        http_port=0,
        db=str(db_path),
        batch_interval_ms=5.0,
        ingest_workers=0,  # in-process: no spawn per test; the worker path has its own tests
    )
    return replace(base, **overrides)


@pytest.fixture
def make_collector(tmp_path: Path) -> Iterator[Callable[..., RunningCollector]]:
    started: list[RunningCollector] = []

    def make(**overrides: Any) -> RunningCollector:
        db_path = Path(overrides.pop("db", tmp_path / f"tracehouse-{len(started)}.duckdb"))
        server = CollectorServer(collector_settings(db_path, **overrides)).start()
        running = RunningCollector(server, db_path)
        started.append(running)
        return running

    yield make
    for running in started:
        running.stop()


@pytest.fixture
def collector(make_collector: Callable[..., RunningCollector]) -> RunningCollector:
    """A running collector with default settings (ephemeral ports, DuckDB in tmp_path)."""
    return make_collector()


# -- ClickHouse embedded in this process (chdb) ---------------------------------------------------
# chdb opens one data directory per process, ever: every test of the session that uses chdb
# (tests/clickhouse and the store-parametrized contract tests) shares this one directory and gets
# a database of its own, addressed as ``chdb://<dir>?database=<name>``.


@pytest.fixture(scope="session")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one chdb data directory of this test process."""
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture
def chdb_url(chdb_dir: Path) -> str:
    """A TRACEHOUSE_STORE value for a fresh, empty database in the session's chdb directory."""
    return f"chdb://{chdb_dir}?database=t_{uuid.uuid4().hex[:12]}"


# -- a collector in a child process ---------------------------------------------------------------

_BANNER = re.compile(r"OTLP gRPC (?P<grpc>\S+:\d+) · OTLP/HTTP and API (?P<http>http://\S+:\d+)")


@dataclass
class CollectorProcess:
    """``python -m collector`` as a child; ports come from its start-up line."""

    process: subprocess.Popen[str]
    db_path: Path
    grpc_endpoint: str = ""
    http_url: str = ""
    output: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        """kill -9."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM and wait; returns the exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def wait_output(self, timeout: float = 30) -> str:
        """Everything the process printed (stdout and stderr) after it exits."""
        self.process.wait(timeout)
        self._reader.join(timeout)
        return "".join(self.output)

    _reader: threading.Thread = field(init=False, repr=False)


def start_collector_process(
    db_path: Path, *, wait: bool = True, timeout: float = 60, **env: str
) -> CollectorProcess:
    """Start ``python -m collector`` on ephemeral ports; with wait, return once it serves."""
    environ = {
        **os.environ,
        "TRACEHOUSE_DB": str(db_path),
        "TRACEHOUSE_GRPC_PORT": "0",
        "TRACEHOUSE_HTTP_PORT": "0",
        "TRACEHOUSE_HOST": "127.0.0.1",
        "PYTHONUNBUFFERED": "1",
    }
    environ.update(
        {k if k.startswith("TRACEHOUSE_") else f"TRACEHOUSE_{k.upper()}": v for k, v in env.items()}
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "collector"],
        cwd=REPO_ROOT,
        env=environ,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    child = CollectorProcess(process, db_path)
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            child.output.append(line)
            match = _BANNER.search(line)
            if match:
                child.grpc_endpoint, child.http_url = match["grpc"], match["http"]
                ready.set()
        ready.set()

    child._reader = threading.Thread(target=read, daemon=True)
    child._reader.start()
    if wait and (not ready.wait(timeout) or not child.grpc_endpoint):
        process.kill()
        raise RuntimeError("collector process did not start: " + "".join(child.output)[-2000:])
    return child


@pytest.fixture
def collector_process(tmp_path: Path) -> Iterator[Callable[..., CollectorProcess]]:
    """Factory: start_collector_process; every child still running at teardown is killed."""
    children: list[CollectorProcess] = []

    def start(db_path: Path | None = None, **kwargs: Any) -> CollectorProcess:
        child = start_collector_process(db_path or tmp_path / "tracehouse.duckdb", **kwargs)
        children.append(child)
        return child

    yield start
    for child in children:
        if child.process.poll() is None:
            child.process.kill()
            child.process.wait(30)


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` (dedented) in a fresh interpreter from the repo root: for process-wide state
    (GC settings, imports, malloc) that a test must not leave in the pytest process."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=120,
    )
