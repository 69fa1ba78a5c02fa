"""Settings are declared once, validated at start-up and documented in the README."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.settings import Settings, SettingsError, documented_settings

README = Path(__file__).resolve().parent.parent / "README.md"


def test_defaults_bind_to_loopback_on_standard_ports() -> None:
    settings = Settings.from_env({})
    assert (settings.host, settings.grpc_port, settings.http_port) == ("127.0.0.1", 4317, 4318)
    assert settings.db == "./tracehouse.duckdb"


def test_env_values_are_parsed() -> None:
    settings = Settings.from_env({"TRACEHOUSE_GRPC_PORT": "0", "TRACEHOUSE_DB": "x.duckdb"})
    assert settings.grpc_port == 0 and settings.db == "x.duckdb"


def test_every_bad_value_is_reported_on_its_own_line() -> None:
    with pytest.raises(SettingsError) as excinfo:
        Settings.from_env({"TRACEHOUSE_GRPC_PORT": "70000", "TRACEHOUSE_SQL_MAX_ROWS": "many"})
    lines = str(excinfo.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("TRACEHOUSE_GRPC_PORT='70000'")
    assert "TRACEHOUSE_SQL_MAX_ROWS" in lines[1]


@pytest.mark.parametrize("env, _default, _doc", documented_settings())
def test_setting_is_documented_in_readme(env: str, _default: object, _doc: str) -> None:
    assert f"`{env}`" in README.read_text(encoding="utf-8"), f"{env} is not documented in README.md"


def test_api_url_follows_the_collector_port_unless_given() -> None:
    assert Settings.from_env({"TRACEHOUSE_HTTP_PORT": "9999"}).api_url == "http://127.0.0.1:9999"
    assert Settings.from_env({"TRACEHOUSE_HOST": "0.0.0.0"}).api_url == "http://127.0.0.1:4318"
    given = {"TRACEHOUSE_HTTP_PORT": "9999", "TRACEHOUSE_API_URL": "http://remote:4318"}
    assert Settings.from_env(given).api_url == "http://remote:4318"
