"""Every setting of Tracehouse, declared once.

Each field of :class:`Settings` names its environment variable, default and meaning in its
metadata; ``Settings.from_env`` reads and validates all of them before any port opens and
reports every bad value, one line each. ``tests/test_settings.py`` checks that each variable
is documented in the README.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any

ENV_PREFIX = "TRACEHOUSE_"


class SettingsError(ValueError):
    """Raised with one line per invalid setting."""


def _setting(env: str, default: Any, doc: str, parse: Callable[[str], Any] | None = None) -> Any:
    return field(default=default, metadata={"env": ENV_PREFIX + env, "doc": doc, "parse": parse})


def _port(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 65535:
        raise ValueError("must be a port number from 0 to 65535")
    return value


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("must be a whole number above 0")
    return value


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("must be a whole number, 0 or more")
    return value


_SIZE = re.compile(r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)


def _size(raw: str) -> str:
    if not _SIZE.match(raw):
        raise ValueError("must be a size such as 256MB or 2GiB")
    return raw


def _positive_float(raw: str) -> float:
    value = float(raw)
    if value <= 0:
        raise ValueError("must be a number above 0")
    return value


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if value < 0:
        raise ValueError("must be a number, 0 or more")
    return value


def _retention_pairs(raw: str) -> str:
    from collector.retention import parse_overrides

    parse_overrides(raw)  # ValueError with the reason
    return raw


def _store_url(raw: str) -> str:
    from collector.clickhouse.url import parse_store_url

    parse_store_url(raw)  # ValueError with the reason
    return raw


def _cluster_name(raw: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", raw):
        raise ValueError("must be a ClickHouse cluster name (letters, digits, '_')")
    return raw


def _env_keys(raw: str, kind: str) -> str:
    from collector.keys import parse_env_keys

    parse_env_keys(raw, kind)  # ValueError with the reason
    return raw


@dataclass(frozen=True, slots=True)
class Settings:
    """Configuration of the collector, analytics, dashboard and CLI."""

    host: str = _setting("HOST", "127.0.0.1", "Address the gRPC, HTTP and dashboard servers bind to.")
    grpc_port: int = _setting("GRPC_PORT", 4317, "OTLP/gRPC port.", _port)
    http_port: int = _setting("HTTP_PORT", 4318, "OTLP/HTTP (`/v1/traces`) and query API (`/api`) port.", _port)
    db: str = _setting("DB", "./tracehouse.duckdb", "Path of the DuckDB database file.")
    store: str = _setting(
        "STORE",
        "",
        "Where spans are stored. Empty: the DuckDB file at `TRACEHOUSE_DB`. `clickhouse://user:pass@host:8123/db` "
        "(`clickhouses://` for TLS): a ClickHouse server over HTTP, for several stateless collectors; "
        "`chdb:///path/to/dir[?database=name]`: the same store on the embedded ClickHouse engine (database "
        "`tracehouse` by default). See the README's ClickHouse section.",
        _store_url,
    )
    clickhouse_cluster: str = _setting(
        "CLICKHOUSE_CLUSTER",
        "",
        "ClickHouse cluster name (`remote_servers`) for a sharded store: spans go to `span_store_local` on each "
        "shard through a `Distributed` `span_store`, DDL runs `ON CLUSTER`. Empty: one server.",
        _cluster_name,
    )
    max_request_bytes: int = _setting(
        "MAX_REQUEST_BYTES",
        16 * 1024 * 1024,
        "Largest OTLP request accepted, in bytes, after decompression (gRPC and HTTP); larger ones get "
        "RESOURCE_EXHAUSTED / 413.",
        _positive_int,
    )
    max_payload_bytes: int = _setting(
        "MAX_PAYLOAD_BYTES",
        256 * 1024,
        "Largest input/output text or attribute value stored whole, in bytes; longer ones are kept truncated "
        "and the span's `payload_truncated` is true.",
        _positive_int,
    )
    batch_max_spans: int = _setting(
        "BATCH_MAX_SPANS", 10_000, "Most spans committed in one DuckDB transaction (group commit).", _positive_int
    )
    batch_interval_ms: float = _setting(
        "BATCH_INTERVAL_MS",
        20.0,
        "Longest wait, in milliseconds, for more spans before committing a partly filled batch.",
        _positive_float,
    )
    queue_max_spans: int = _setting(
        "QUEUE_MAX_SPANS",
        50_000,
        "Spans waiting for commit before new requests are refused with UNAVAILABLE / 503 (bounds memory).",
        _positive_int,
    )
    ingest_workers: int = _setting(
        "INGEST_WORKERS",
        0,
        "Worker processes that parse and normalize OTLP requests into Arrow rows, off the collector's GIL "
        "(they never open the database). 0: in the collector process, on two threads, the least memory. "
        "In one process the GIL is the limit: on 2 cores it stored 13,200-17,000 spans/s with most of the "
        "second core idle; 1 worker stored 19,000-23,900 spans/s and added 75-100 MB of peak RSS, a second "
        "worker added memory and no rate (the single writer is then the limit; bench/RESULTS.md, round 7). "
        "Use 1 or more with cores and memory to spare.",
        _non_negative_int,
    )
    duckdb_memory_limit: str = _setting(
        "DUCKDB_MEMORY_LIMIT",
        "64MB",
        "DuckDB's memory for the collector's database (block cache, rows not yet checkpointed, query "
        "memory; bigger queries spill to disk). Bounds DuckDB's part of the collector's RSS (DuckDB's own "
        "default is 80% of the machine's RAM). One limit for the whole database: ingest, queries and the "
        "analytics jobs share it. At 64MB the query targets, the 5 M-span analytics backfill and analytics "
        "runs under full ingest complete (bench/RESULTS.md, \"Round 6\"); a bigger limit caches more of "
        "the file for queries over long time ranges.",
        _size,
    )
    sql_timeout_s: float = _setting(
        "SQL_TIMEOUT_S", 10.0, "Time limit of one `/api/sql` or API query, in seconds.", _positive_float
    )
    sql_max_rows: int = _setting("SQL_MAX_ROWS", 10_000, "Most rows one `/api/sql` query returns.", _positive_int)
    sql_max_bytes: int = _setting(
        "SQL_MAX_BYTES",
        16 * 1024 * 1024,
        "Most bytes (as JSON) of rows one `/api/sql` query returns; the rest is cut and `truncated` is true.",
        _positive_int,
    )
    api_url: str = _setting(
        "API_URL", "http://127.0.0.1:4318", "Collector URL used by the dashboard and the CLI; defaults to the address "
        "of `TRACEHOUSE_HOST` and `TRACEHOUSE_HTTP_PORT`."
    )
    dashboard_port: int = _setting("DASHBOARD_PORT", 8501, "Port of the Streamlit dashboard.", _port)
    log_level: str = _setting("LOG_LEVEL", "INFO", "Log level: DEBUG, INFO, WARNING or ERROR.")
    prices_file: str = _setting(
        "PRICES_FILE",
        "",
        "Your price file (CSV, the columns of `analytics/pricing.csv`); its rows add to or override the "
        "shipped prices. Empty: shipped prices only.",
    )
    rules_file: str = _setting(
        "RULES_FILE",
        "",
        "Your detection thresholds and alert rules (TOML, the layout of `analytics/alert_rules.toml`), "
        "applied over the shipped ones. Empty: shipped rules only.",
    )
    analytics_interval_s: float = _setting(
        "ANALYTICS_INTERVAL_S",
        60.0,
        "Seconds between analytics runs (costs, rollups, anomalies, alerts) inside the collector. 0: this "
        "collector runs none on its own (several collectors on one ClickHouse store: leave the jobs to one; "
        "`POST /api/analytics/run` and `tracehouse analytics run` still run them).",
        _non_negative_float,
    )
    retention_days: int = _setting(
        "RETENTION_DAYS",
        0,
        "Days spans are kept, for every project without its own limit; older ones are deleted by the "
        "retention job. 0: keep forever.",
        _non_negative_int,
    )
    retention_by_project: str = _setting(
        "RETENTION_BY_PROJECT",
        "",
        "Per-project retention overriding `TRACEHOUSE_RETENTION_DAYS`, as `project=days` pairs separated "
        "by commas (`0` keeps that project forever).",
        _retention_pairs,
    )
    retention_interval_s: float = _setting(
        "RETENTION_INTERVAL_S", 3600.0, "Seconds between runs of the retention job.", _positive_float
    )
    ingest_keys: str = _setting(
        "INGEST_KEYS",
        "",
        "Ingest API keys given by the environment, as `project=key` pairs separated by commas (besides the "
        "keys made with `tracehouse keys create`).",
        lambda raw: _env_keys(raw, "ingest"),
    )
    read_keys: str = _setting(
        "READ_KEYS",
        "",
        "Read API keys given by the environment (query API, SQL, dashboard), as `project=key` pairs.",
        lambda raw: _env_keys(raw, "read"),
    )
    admin_keys: str = _setting(
        "ADMIN_KEYS",
        "",
        "Admin API keys given by the environment, separated by commas (no project): they manage keys "
        "through `/api/keys`, read every project and scrape `/metrics`.",
        lambda raw: _env_keys(raw, "admin"),
    )
    metrics_keys: str = _setting(
        "METRICS_KEYS",
        "",
        "Keys that may only scrape `/metrics` (for Prometheus), separated by commas.",
        lambda raw: _env_keys(raw, "metrics"),
    )
    api_key: str = _setting(
        "API_KEY", "", "Key the dashboard and the CLI send to the collector's API (when it has keys): a read "
        "key, or an admin key for `tracehouse keys` against a running collector."
    )
    redaction_file: str = _setting(
        "REDACTION_FILE",
        "",
        "Redaction rules applied to every span before it is stored (TOML, the layout of "
        "`collector/redaction.toml`); `builtin` uses that file (e-mail, card, phone numbers, API keys). "
        "Empty: no redaction.",
    )
    alert_webhooks: str = _setting(
        "ALERT_WEBHOOKS",
        "",
        "Comma-separated webhook URLs that get a Slack-compatible JSON message when an alert fires.",
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every setting from the environment; raise SettingsError listing all bad values."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        errors: list[str] = []
        for f in fields(cls):
            raw = env.get(f.metadata["env"])
            if raw is None or raw == "":
                continue
            parse = f.metadata["parse"] or (lambda s: s)
            try:
                values[f.name] = parse(raw.strip())
            except ValueError as exc:
                reason = str(exc) if "must" in str(exc) else f"is not a valid {f.type}"
                errors.append(f"{f.metadata['env']}={raw!r}: {reason}")
        if errors:
            raise SettingsError("\n".join(errors))
        if "api_url" not in values and "api_url" not in overrides:
            # Follow the collector's own address, so TRACEHOUSE_HTTP_PORT alone is enough.
            host = values.get("host", overrides.get("host", cls().host))
            client_host = "127.0.0.1" if host in {"0.0.0.0", "::", ""} else host
            port = values.get("http_port", overrides.get("http_port", cls().http_port))
            values["api_url"] = f"http://{client_host}:{port}"
        settings = replace(cls(), **{**values, **overrides})  # an override wins over the environment
        settings.validate()
        return settings

    def validate(self) -> None:
        """Check relations between settings."""
        errors = []
        if self.log_level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            errors.append(f"{ENV_PREFIX}LOG_LEVEL={self.log_level!r}: must be DEBUG, INFO, WARNING or ERROR")
        if self.queue_max_spans < self.batch_max_spans:
            errors.append(
                f"{ENV_PREFIX}QUEUE_MAX_SPANS ({self.queue_max_spans}) must be at least "
                f"{ENV_PREFIX}BATCH_MAX_SPANS ({self.batch_max_spans})"
            )
        if self.clickhouse_cluster and not self.store.lower().startswith("clickhouse"):
            errors.append(
                f"{ENV_PREFIX}CLICKHOUSE_CLUSTER={self.clickhouse_cluster!r} needs a ClickHouse server: "
                f"set {ENV_PREFIX}STORE=clickhouse://user:pass@host:8123/db"
            )
        if errors:
            raise SettingsError("\n".join(errors))


def documented_settings() -> list[tuple[str, Any, str]]:
    """(env var, default, doc) for every setting, in declaration order."""
    return [
        (f.metadata["env"], f.default if f.default is not MISSING else None, f.metadata["doc"])
        for f in fields(Settings)
    ]
