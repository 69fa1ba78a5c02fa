"""TRACEHOUSE_STORE: the URLs it takes, and one clear line at start-up for a bad or unreachable one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from collector.clickhouse.url import parse_store_url
from collector.settings import Settings, SettingsError
from tests.conftest import REPO_ROOT


@pytest.mark.parametrize(
    "url, engine, database, host, port, secure",
    [
        ("clickhouse://writer:s3cret@ch.internal:8123/traces", "server", "traces", "ch.internal", 8123, False),
        ("clickhouses://ch.example.com/tracehouse", "server", "tracehouse", "ch.example.com", 8443, True),
        ("clickhouse://127.0.0.1", "server", "tracehouse", "127.0.0.1", 8123, False),
        ("chdb:///var/lib/tracehouse/chdb", "chdb", "tracehouse", "", 0, False),
        ("chdb:///data/dir?database=prod_1", "chdb", "prod_1", "", 0, False),
    ],
)
def test_store_urls_parse(url: str, engine: str, database: str, host: str, port: int, secure: bool) -> None:
    parsed = parse_store_url(url)
    assert (parsed.engine, parsed.database, parsed.host, parsed.port, parsed.secure) == (
        engine, database, host, port, secure
    )
    assert "s3cret" not in parsed.display


@pytest.mark.parametrize(
    "url",
    ["mysql://h/db", "clickhouse:///db", "clickhouse://h:port/db", "chdb://", "chdb:///d?database=no-dash",
     "clickhouse://h:8123/drop;table"],
)
def test_bad_store_url_is_one_line_at_start_up(url: str) -> None:
    with pytest.raises(SettingsError) as excinfo:
        Settings.from_env({"TRACEHOUSE_STORE": url})
    message = str(excinfo.value)
    assert message.startswith("TRACEHOUSE_STORE=") and "\n" not in message and "must" in message


def _collector(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "collector"],
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", "TRACEHOUSE_GRPC_PORT": "0", "TRACEHOUSE_HTTP_PORT": "0",
             "TRACEHOUSE_DB": str(tmp_path / "x.duckdb"), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_collector_with_a_bad_store_url_says_so_and_exits(tmp_path: Path) -> None:
    done = _collector(tmp_path, TRACEHOUSE_STORE="postgres://h/db")
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tracehouse collector: error: TRACEHOUSE_STORE=")


def test_collector_with_an_unreachable_clickhouse_says_so_and_exits(tmp_path: Path) -> None:
    done = _collector(tmp_path, TRACEHOUSE_STORE="clickhouse://default:pw@127.0.0.1:1/tracehouse")
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert lines == ["tracehouse collector: error: cannot open the ClickHouse store "
                     "clickhouse://default@127.0.0.1:1/tracehouse: Connection refused"]
    assert "pw" not in done.stderr


@pytest.mark.parametrize("store", ["", "chdb:///data/dir"])
def test_a_cluster_needs_a_clickhouse_server(store: str) -> None:
    with pytest.raises(SettingsError) as excinfo:
        Settings.from_env({"TRACEHOUSE_STORE": store, "TRACEHOUSE_CLICKHOUSE_CLUSTER": "two_shards"})
    assert str(excinfo.value).startswith("TRACEHOUSE_CLICKHOUSE_CLUSTER='two_shards' needs a ClickHouse server")
    settings = Settings.from_env({"TRACEHOUSE_STORE": "clickhouse://h/db", "TRACEHOUSE_CLICKHOUSE_CLUSTER": "two_shards"})
    assert settings.clickhouse_cluster == "two_shards"
