"""Key management on a running collector, admin keys, and the credential /metrics needs.

`tracehouse keys` against a real collector process (which holds the database file), keys that
work and stop working without a restart, and the access rules of /api/keys and /metrics.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

from collector.cli import main as cli_main
from tests.collector.otlp_payloads import spans_request
from tests.conftest import RunningCollector

ADMIN = "th_admin_eeeeeeeeeeee_" + "E" * 43
METRICS = "th_metrics_ffffffffffff_" + "F" * 43
READ_A = "th_read_cccccccccccc_" + "C" * 43
READ_B = "th_read_dddddddddddd_" + "D" * 43
INGEST_A = "th_ingest_aaaaaaaaaaaa_" + "A" * 43
INGEST_B = "th_ingest_bbbbbbbbbbbb_" + "B" * 43


def keys_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = cli_main(["keys", *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def call(url: str, method: str, path: str, key: str | None = None, **kwargs: object) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.request(method, f"{url}{path}", headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]


def ingest(url: str, key: str) -> int:
    return httpx.post(f"{url}/v1/traces", content=spans_request(2).SerializeToString(), timeout=30,
                      headers={"Content-Type": "application/x-protobuf", "x-api-key": key}).status_code  # fmt: skip


def test_keys_cli_manages_a_running_collector_and_revocation_is_immediate(
    collector_process, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]  # type: ignore[no-untyped-def]
) -> None:
    db = tmp_path / "keys.duckdb"
    code, out = keys_cli(capsys, "--db", str(db), "create", "--kind", "admin", "--name", "ops")
    assert code == 0 and "no project" in out
    admin = out.splitlines()[0]
    child = collector_process(db)
    monkeypatch.setenv("TRACEHOUSE_API_URL", child.http_url)
    monkeypatch.setenv("TRACEHOUSE_DB", str(db))
    monkeypatch.setenv("TRACEHOUSE_API_KEY", admin)

    # The collector holds the file: these go through its API, and count at once (no restart).
    code, out = keys_cli(capsys, "create", "--project", "shop", "--kind", "ingest", "--name", "agents")
    assert code == 0 and "by the collector at" in out, out
    ingest_key = out.splitlines()[0]
    assert ingest(child.http_url, ingest_key) == 200
    code, out = keys_cli(capsys, "create", "--project", "shop", "--kind", "read")
    read_key = out.splitlines()[0]
    listed = call(child.http_url, "GET", "/api/traces", read_key)
    assert listed.status_code == 200 and len(listed.json()["traces"]) == 1

    code, listing = keys_cli(capsys, "list")
    assert code == 0 and listing.count("active") == 3 and "(all)" in listing and "shop" in listing
    assert ingest_key.split("_", 3)[3] not in listing

    ingest_id = ingest_key.split("_")[2]
    code, out = keys_cli(capsys, "revoke", ingest_id)
    assert code == 0 and "refuses it from now on" in out
    assert ingest(child.http_url, ingest_key) == 401  # at once, over HTTP ...
    host, port = child.grpc_endpoint.rsplit(":", 1)
    with grpc.insecure_channel(f"{host}:{port}") as channel, pytest.raises(grpc.RpcError) as error:
        TraceServiceStub(channel).Export(spans_request(1), metadata=(("x-api-key", ingest_key),), timeout=30)
    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED  # ... and over gRPC
    assert keys_cli(capsys, "revoke", read_key)[0] == 0  # the whole key works as well as its id
    assert call(child.http_url, "GET", "/api/traces", read_key).status_code == 401
    code, out = keys_cli(capsys, "revoke", ingest_id)
    assert code == 2 and "no active key" in out and len(out.strip().splitlines()) == 1

    # Without an admin key the collector refuses, in one line that says what to do.
    monkeypatch.setenv("TRACEHOUSE_API_KEY", READ_A)
    code, out = keys_cli(capsys, "list")
    assert code == 2 and len(out.strip().splitlines()) == 1 and "admin key" in out, out
    # --db names a file the collector holds: one line pointing at the API.
    code, out = keys_cli(capsys, "--db", str(db), "list")
    assert code == 2 and "held by a running collector" in out

    assert child.terminate() == 0
    # No collector answers any more: the file itself, with what the collector wrote.
    monkeypatch.setenv("TRACEHOUSE_API_KEY", "")
    code, listing = keys_cli(capsys, "list")
    assert code == 0 and listing.count("revoked") == 2 and listing.count("active") == 1, listing
    code, out = keys_cli(capsys, "--api-url", child.http_url, "list")
    assert code == 2 and "no collector answers" in out


def test_the_first_keys_come_from_loopback_while_none_exist(collector: RunningCollector) -> None:
    url = collector.http_url
    assert call(url, "GET", "/api/keys").json() == {"keys": []}
    made = call(url, "POST", "/api/keys", json={"kind": "admin", "name": "bootstrap"})
    assert made.status_code == 201 and made.json()["project"] is None
    admin = made.json()["key"]
    # Keys exist now: everything needs one, key management an admin key.
    assert call(url, "GET", "/api/keys").status_code == 401
    assert call(url, "GET", "/api/traces").status_code == 401
    read = call(url, "POST", "/api/keys", admin, json={"kind": "read", "project": "shop"}).json()["key"]
    assert call(url, "GET", "/api/keys", read).status_code == 401  # a read key does not manage keys
    assert call(url, "GET", "/api/traces", read).status_code == 200
    bad = call(url, "POST", "/api/keys", admin, json={"kind": "ingest"})
    assert bad.status_code == 400 and "belongs to a project" in bad.json()["detail"]
    bad = call(url, "POST", "/api/keys", admin, json={"kind": "admin", "project": "shop"})
    assert bad.status_code == 400 and "no project" in bad.json()["detail"]
    bad = call(url, "POST", "/api/keys", admin, json={"kind": "read", "project": "a b';--"})
    assert bad.status_code == 400 and "project name" in bad.json()["detail"]
    assert call(url, "DELETE", "/api/keys/0123456789ab", admin).status_code == 404
    stored = collector.sql("SELECT kind, project FROM api_keys ORDER BY created_at")
    assert stored == [("admin", "*"), ("read", "shop")]


@pytest.fixture
def keyed(make_collector) -> RunningCollector:  # type: ignore[no-untyped-def]
    return make_collector(
        ingest_keys=f"alpha={INGEST_A},beta={INGEST_B}", read_keys=f"alpha={READ_A},beta={READ_B}",
        admin_keys=ADMIN, metrics_keys=METRICS, analytics_interval_s=3600.0,
    )


def test_metrics_need_a_metrics_or_admin_key_and_healthz_stays_open(keyed: RunningCollector) -> None:
    url = keyed.http_url
    assert ingest(url, INGEST_A) == 200
    for key in (None, READ_A, INGEST_A, "th_metrics_ffffffffffff_wrong-secret-xxxxxxxxxx"):
        refused = call(url, "GET", "/metrics", key)
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer", key
        assert "tracehouse" not in refused.text
    for key in (METRICS, ADMIN):  # Prometheus: `authorization: {credentials: <key>}` sends a bearer token
        scraped = call(url, "GET", "/metrics", key)
        assert scraped.status_code == 200 and "tracehouse_spans_received_total" in scraped.text, scraped.text[:300]
    assert httpx.get(f"{url}/metrics", headers={"x-api-key": METRICS}, timeout=30).status_code == 200
    assert call(url, "GET", "/healthz").json()["status"] == "ok"
    # A metrics key opens nothing else.
    for path in ("/api/traces", "/api/keys"):
        assert call(url, "GET", path, METRICS).status_code == 401
    assert ingest(url, METRICS) == 401


def test_an_admin_key_reads_every_project_and_environment_keys_are_not_revocable(keyed: RunningCollector) -> None:
    url = keyed.http_url
    assert ingest(url, INGEST_A) == 200 and ingest(url, INGEST_B) == 200
    counts = call(url, "POST", "/api/sql", ADMIN, json={"sql": "SELECT project, count(*) FROM spans GROUP BY ALL ORDER BY 1"})
    assert counts.json()["rows"] == [["alpha", 2], ["beta", 2]]
    run = call(url, "POST", "/api/analytics/run", ADMIN).json()
    assert run["spans"] == 4 and set(run["projects"]) == {"alpha", "beta"}
    listed = call(url, "GET", "/api/keys", ADMIN).json()["keys"]
    assert {(k["kind"], k["project"], k["source"]) for k in listed} == {
        ("ingest", "alpha", "environment"), ("ingest", "beta", "environment"), ("read", "alpha", "environment"),
        ("read", "beta", "environment"), ("admin", None, "environment"), ("metrics", None, "environment")}  # fmt: skip
    refused = call(url, "DELETE", "/api/keys/cccccccccccc", ADMIN)
    assert refused.status_code == 409 and "environment" in refused.json()["detail"]
    assert call(url, "GET", "/api/traces", READ_A).status_code == 200
    assert call(url, "POST", "/api/sql", ADMIN, json={"sql": "SELECT * FROM api_keys"}).status_code == 400


def test_bad_environment_keys_are_one_line_each() -> None:
    from collector.settings import Settings, SettingsError

    with pytest.raises(SettingsError) as excinfo:
        Settings.from_env({"TRACEHOUSE_ADMIN_KEYS": READ_A, "TRACEHOUSE_METRICS_KEYS": f"p={METRICS}"})
    lines = str(excinfo.value).splitlines()
    assert len(lines) == 2 and all("must be th_" in line for line in lines)
