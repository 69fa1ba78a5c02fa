"""docker-compose.yml and the Dockerfile hold together (no Docker engine runs here, so: structure).

Every command a service runs must parse with our own CLI, every TRACEHOUSE_* variable must be a
real setting, published ports must match the ports the processes bind, the database must sit on
a volume, and every long-running service must have a health check on a route that exists.
"""

from __future__ import annotations

import argparse
import importlib
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
from fastapi.testclient import TestClient

from collector.api import create_app
from collector.cli import COMMANDS
from collector.settings import Settings, documented_settings
from collector.store import Store

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
ALL_SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
# Services that run our image; the rest are upstream images (the ClickHouse servers).
SERVICES = {name: s for name, s in ALL_SERVICES.items() if s.get("build") == "."}
SETTING_VARS = {env for env, _, _ in documented_settings()}
LONG_RUNNING = ("collector", "dashboard")
_INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?::(?P<op>[-?])(?P<arg>[^}]*))?\}")
# What an operator puts in .env: keys as `tracehouse keys create` makes them.
DOT_ENV = {"TRACEHOUSE_INGEST_KEY": "th_ingest_0123456789ab_" + "s" * 43, "TRACEHOUSE_READ_KEY": "th_read_0123456789ab_" + "r" * 43,
           "TRACEHOUSE_CLICKHOUSE_PASSWORD": "pw-Of_the.cluster"}  # profile clickhouse


def interpolate(text: str, environ: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} against ``environ``."""

    def one(match: re.Match[str]) -> str:
        value = environ.get(match["name"], "")
        if value:
            return value
        if match["op"] == "?":
            raise KeyError(f"{match['name']} is required: {match['arg']}")
        return match["arg"] or ""

    return _INTERPOLATION.sub(one, text)


def resolved_env(service: dict[str, Any], environ: dict[str, str] | None = None) -> dict[str, str]:
    """The service's environment as compose would pass it, given the .env values."""
    environ = DOT_ENV if environ is None else environ
    return {key: interpolate("" if value is None else str(value), environ)
            for key, value in (service.get("environment") or {}).items()}


def settings_of(service: dict[str, Any]) -> Settings:
    """The Settings the service's process would read (image ENV overridden by compose)."""
    image_env = dict(re.findall(r"(TRACEHOUSE_\w+)=(\S+)", DOCKERFILE))
    return Settings.from_env({**image_env, **resolved_env(service)})


def test_services_are_the_collector_and_the_dashboard() -> None:
    assert {"collector", "dashboard"} <= set(SERVICES)
    for name, service in SERVICES.items():
        assert service.get("image"), name
    for name in set(ALL_SERVICES) - set(SERVICES):  # only the optional ClickHouse example
        assert ALL_SERVICES[name]["profiles"] == ["clickhouse"], name


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_command_is_a_tracehouse_command_with_valid_arguments(name: str) -> None:
    command = SERVICES[name]["command"]
    if isinstance(command, str):
        command = shlex.split(command)
    assert command[0] == "tracehouse" and command[1] in COMMANDS, command
    module = importlib.import_module(COMMANDS[command[1]][0])
    parser = argparse.ArgumentParser(prog=f"tracehouse {command[1]}", exit_on_error=False)
    module.add_arguments(parser)
    parser.parse_args(command[2:])  # raises on an option the command does not have


def test_dockerfile_default_command_is_the_collector() -> None:
    cmd = re.search(r'^CMD \[(.*)\]$', DOCKERFILE, re.M)
    assert cmd and [part.strip().strip('"') for part in cmd[1].split(",")] == ["tracehouse", "collector"]


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_environment_names_real_settings_with_valid_values(name: str) -> None:
    env = resolved_env(SERVICES[name])
    unknown = {key for key in env if key.startswith("TRACEHOUSE_")} - SETTING_VARS
    assert not unknown, f"{name}: not settings in collector/settings.py: {unknown}"
    settings_of(SERVICES[name])  # values validate


def test_keys_are_required_from_the_environment_and_reach_every_service() -> None:
    """Without keys compose refuses to start (the collector would refuse a public bind anyway)."""
    for name in ("collector", "dashboard"):
        with pytest.raises(KeyError, match="TRACEHOUSE_READ_KEY|TRACEHOUSE_INGEST_KEY"):
            resolved_env(SERVICES[name], {})
    collector = settings_of(SERVICES["collector"])
    assert collector.ingest_keys == f"default={DOT_ENV['TRACEHOUSE_INGEST_KEY']}"
    assert collector.read_keys == f"default={DOT_ENV['TRACEHOUSE_READ_KEY']}"
    assert settings_of(SERVICES["dashboard"]).api_key == DOT_ENV["TRACEHOUSE_READ_KEY"]
    demo_headers = resolved_env(SERVICES["demo"])["OTEL_EXPORTER_OTLP_HEADERS"]
    assert demo_headers == f"x-api-key={DOT_ENV['TRACEHOUSE_INGEST_KEY']}"


def test_dockerfile_env_names_real_settings() -> None:
    names = set(re.findall(r"(TRACEHOUSE_\w+)=", DOCKERFILE))
    assert names and names <= SETTING_VARS


def _published(service: dict[str, Any]) -> dict[int, tuple[str, int]]:
    """container port → (host address, host port), from "addr:host:container" strings."""
    out = {}
    for spec in service.get("ports", []):
        host_ip, host_port, container = str(spec).rsplit(":", 2)
        out[int(container)] = (host_ip, int(host_port))
    return out


def test_ports_are_the_ones_the_processes_bind_and_only_on_host_loopback() -> None:
    collector = settings_of(SERVICES["collector"])
    dashboard = settings_of(SERVICES["dashboard"])
    assert collector.host == dashboard.host == "0.0.0.0"  # reachable from other containers
    assert set(_published(SERVICES["collector"])) == {collector.grpc_port, collector.http_port}
    assert set(_published(SERVICES["dashboard"])) == {dashboard.dashboard_port}
    for name in LONG_RUNNING:
        for host_ip, _ in _published(SERVICES[name]).values():
            assert host_ip == "127.0.0.1", f"{name} publishes on {host_ip}; keys are needed beyond loopback"
    exposed = {int(p) for p in re.findall(r"^EXPOSE (.*)$", DOCKERFILE, re.M)[0].split()}
    assert {collector.grpc_port, collector.http_port, dashboard.dashboard_port} <= exposed


def test_database_is_on_a_named_volume() -> None:
    db_dir = str(Path(settings_of(SERVICES["collector"]).db).parent)
    mounts = dict(str(v).split(":", 1) for v in SERVICES["collector"]["volumes"])
    sources = [source for source, target in mounts.items() if target.split(":")[0] == db_dir]
    assert sources and sources[0] in (COMPOSE.get("volumes") or {}), mounts
    assert re.search(rf"^VOLUME {re.escape(db_dir)}$", DOCKERFILE, re.M)


def test_dashboard_reaches_the_collector_by_service_name() -> None:
    url = urlparse(settings_of(SERVICES["dashboard"]).api_url)
    assert url.hostname == "collector" and url.port == settings_of(SERVICES["collector"]).http_port
    assert SERVICES["dashboard"]["depends_on"]["collector"]["condition"] == "service_healthy"


def _healthcheck_url(test: list[str]) -> str:
    match = re.search(r"https?://[^'\"]+", " ".join(test))
    assert match, test
    return match[0]


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_long_running_services_have_health_checks_on_real_routes(name: str, tmp_path: Path) -> None:
    check = SERVICES[name]["healthcheck"]
    assert check["test"][0] == "CMD" and check["retries"] >= 1
    url = urlparse(_healthcheck_url(check["test"]))
    settings = settings_of(SERVICES[name])
    if name == "collector":
        assert url.port == settings.http_port
        store = Store(tmp_path / "h.duckdb")
        try:
            with TestClient(create_app(settings, store)) as client:
                status = client.get(url.path).status_code
        finally:
            store.close()
        assert status != 404  # 503 here: no writer runs in this app
    else:
        assert url.port == settings.dashboard_port and url.path == "/_stcore/health"  # Streamlit's own


def test_collector_gets_time_to_flush_on_stop() -> None:
    grace = str(SERVICES["collector"]["stop_grace_period"])
    assert grace.endswith("s") and int(grace[:-1]) >= 30


def test_image_copies_every_package() -> None:
    for package in ("collector", "analytics", "dashboard", "sdk_shim"):
        assert re.search(rf"^COPY {package} {package}$", DOCKERFILE, re.M), package


# -- profile clickhouse: the two-shard example --------------------------------------------------

CLICKHOUSE_SERVERS = {n: s for n, s in ALL_SERVICES.items() if str(s.get("image", "")).startswith("clickhouse/")}


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """container path → repo path, for the service's bind mounts of repo files."""
    out = {}
    for spec in service.get("volumes", []):
        source, target = str(spec).split(":")[:2]
        if source.startswith("./"):
            out[target] = source
    return out


def _config(service: dict[str, Any], name: str) -> Any:
    import xml.etree.ElementTree as ET

    path = _mounts(service)[name]
    assert (ROOT / path).is_file(), path
    return ET.parse(ROOT / path).getroot()


def test_clickhouse_profile_has_two_shards_and_a_collector() -> None:
    assert set(CLICKHOUSE_SERVERS) == {"clickhouse-1", "clickhouse-2"}
    for name, service in CLICKHOUSE_SERVERS.items():
        assert service["profiles"] == ["clickhouse"] and re.search(r":\d+\.\d+$", service["image"]), name  # pinned
        assert service["healthcheck"]["test"][0] == "CMD" and service["hostname"] == name
        data = [str(v).split(":")[0] for v in service["volumes"] if str(v).split(":")[1] == "/var/lib/clickhouse"]
        assert data and data[0] in COMPOSE["volumes"], name
    collector = ALL_SERVICES["collector-clickhouse"]
    assert collector["profiles"] == ["clickhouse"] and "volumes" not in collector  # stateless
    assert {n: d["condition"] for n, d in collector["depends_on"].items()} == dict.fromkeys(CLICKHOUSE_SERVERS, "service_healthy")


def test_clickhouse_collector_points_at_the_cluster_it_defines() -> None:
    from collector.clickhouse.url import parse_store_url

    service = ALL_SERVICES["collector-clickhouse"]
    settings = Settings.from_env(resolved_env(service, DOT_ENV))
    url = parse_store_url(settings.store)
    assert url.engine == "server" and url.host in CLICKHOUSE_SERVERS and url.port == 8123
    assert url.password == DOT_ENV["TRACEHOUSE_CLICKHOUSE_PASSWORD"]
    for name, server in CLICKHOUSE_SERVERS.items():
        cluster = _config(server, "/etc/clickhouse-server/config.d/cluster.xml").find(f"remote_servers/{settings.clickhouse_cluster}")
        assert cluster is not None, name
        hosts = [r.findtext("host") for r in cluster.iter("replica")]
        assert sorted(hosts) == sorted(CLICKHOUSE_SERVERS) and len(cluster.findall("shard")) == 2
        assert {r.findtext("user") for r in cluster.iter("replica")} == {url.username}
        users = _config(server, "/etc/clickhouse-server/users.d/tracehouse.xml")
        user = users.find(f"users/{url.username}")
        assert user is not None and user.find("password").get("from_env") == "TRACEHOUSE_CLICKHOUSE_PASSWORD"
        assert "TRACEHOUSE_CLICKHOUSE_PASSWORD" in server["environment"]
        keeper = _config(server, "/etc/clickhouse-server/config.d/cluster.xml").find("zookeeper/node")
        assert keeper.findtext("host") == "clickhouse-1"  # ON CLUSTER DDL needs Keeper
    keeper_server = _config(CLICKHOUSE_SERVERS["clickhouse-1"], "/etc/clickhouse-server/config.d/keeper.xml")
    assert keeper_server.findtext("keeper_server/tcp_port") == "9181"


def test_clickhouse_collector_publishes_other_host_ports_than_the_duckdb_one() -> None:
    ours = _published(ALL_SERVICES["collector-clickhouse"])
    assert set(ours) == {4317, 4318}
    assert {p for _, p in ours.values()}.isdisjoint({p for _, p in _published(SERVICES["collector"]).values()})
    assert all(ip == "127.0.0.1" for ip, _ in ours.values())


def test_cluster_ddl_is_sharded_by_trace_on_the_cluster_of_the_example() -> None:
    from collector.clickhouse.store import cluster_statements, schema_sql

    settings = Settings.from_env(resolved_env(ALL_SERVICES["collector-clickhouse"], DOT_ENV))
    ddl = cluster_statements(schema_sql(), settings.clickhouse_cluster, "tracehouse")
    creates = [s for s in ddl if s.startswith("CREATE")]
    assert creates and all(f" ON CLUSTER {settings.clickhouse_cluster}" in s for s in creates)
    assert any(s.startswith("CREATE TABLE IF NOT EXISTS span_store_local ON CLUSTER") and "ReplacingMergeTree" in s for s in ddl)
    assert (
        "CREATE TABLE IF NOT EXISTS span_store ON CLUSTER tracehouse AS span_store_local "
        "ENGINE = Distributed(tracehouse, tracehouse, span_store_local, cityHash64(trace_id))"
    ) in ddl
