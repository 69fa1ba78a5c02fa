"""API keys and projects: who may send, who may read, and that a project sees only its rows.

Real collectors with keys (made by `tracehouse keys create` or given in the environment); spans
sent with the official exporters and raw gRPC/HTTP; reads through the real API.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from collector.cli import main as cli_main
from collector.keys import KeyVerifier
from collector.store import Store
from tests.collector.otlp_payloads import spans_request
from tests.conftest import RunningCollector, start_collector_process

INGEST_A = "th_ingest_aaaaaaaaaaaa_" + "A" * 43
INGEST_B = "th_ingest_bbbbbbbbbbbb_" + "B" * 43
READ_A = "th_read_cccccccccccc_" + "C" * 43
READ_B = "th_read_dddddddddddd_" + "D" * 43


def make_keys_cli(db: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli_main(["keys", "--db", str(db), *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_keys_create_list_revoke_store_only_a_hash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "keys.duckdb"
    code, out = make_keys_cli(db, "create", "--project", "shop", "--kind", "ingest", "--name", "ci", capsys=capsys)
    assert code == 0
    key = out.splitlines()[0]
    assert key.startswith("th_ingest_")
    code, _ = make_keys_cli(db, "create", "--project", "shop", "--kind", "read", capsys=capsys)
    code, listing = make_keys_cli(db, "list", capsys=capsys)
    key_id = key.split("_")[2]
    assert key_id in listing and "shop" in listing and "active" in listing and key.split("_", 3)[3] not in listing
    con = duckdb.connect(str(db), read_only=True)
    stored = json.dumps(con.execute("SELECT * FROM api_keys").fetchall(), default=str)
    con.close()
    assert key.split("_", 3)[3] not in stored  # the secret itself is nowhere in the database

    store = Store(db)
    verifier = KeyVerifier()
    verifier.load(store.cursor())
    assert verifier.verify(key, "ingest").project == "shop"  # type: ignore[union-attr]
    assert verifier.verify(key, "read") is None  # an ingest key does not read
    assert verifier.verify(key[:-1] + ("x" if key[-1] != "x" else "y"), "ingest") is None
    store.close()

    assert make_keys_cli(db, "revoke", key_id, capsys=capsys)[0] == 0
    code, out = make_keys_cli(db, "revoke", key_id, capsys=capsys)
    assert code == 2 and "no active key" in out
    store = Store(db)
    verifier.load(store.cursor())
    assert verifier.verify(key, "ingest") is None
    store.close()


def test_bad_project_name_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = make_keys_cli(tmp_path / "k.duckdb", "create", "--project", "a b';--", "--kind", "read", capsys=capsys)
    assert code == 2 and len(out.strip().splitlines()) == 1 and "project name" in out


def test_public_address_without_keys_refuses_to_start(tmp_path: Path) -> None:
    child = start_collector_process(tmp_path / "p.duckdb", wait=False, HOST="0.0.0.0")
    assert child.process.wait(60) == 2
    lines = [line for line in child.wait_output().splitlines() if line.strip()]
    assert len(lines) == 1 and "refusing to listen on 0.0.0.0 without API keys" in lines[0], lines


def test_without_keys_start_up_says_local_only(collector_process, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    child = collector_process(tmp_path / "l.duckdb")
    assert child.terminate() == 0
    assert "accepting local (loopback) traffic only" in child.wait_output()


@pytest.mark.anyio
@pytest.mark.parametrize("path, method", [("/v1/traces", "POST"), ("/api/traces", "GET"), ("/api/sql", "POST")])
async def test_without_keys_non_local_clients_are_refused(collector: RunningCollector, path: str, method: str) -> None:
    from collector.api import create_app
    from collector.auth import Access

    assert collector.server.store is not None
    app = create_app(collector.settings, collector.server.store, access=Access())
    transport = httpx.ASGITransport(app=app, client=("192.0.2.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://collector") as client:
        response = await client.request(method, path, json={"sql": "SELECT 1"})
    assert response.status_code == 403 and "local traffic only" in response.json()["detail"]


# -- with keys --------------------------------------------------------------------------------------


@pytest.fixture
def keyed(make_collector) -> RunningCollector:  # type: ignore[no-untyped-def]
    return make_collector(ingest_keys=f"alpha={INGEST_A},beta={INGEST_B}", read_keys=f"alpha={READ_A},beta={READ_B}")


def claiming(project: str, count: int = 5):  # type: ignore[no-untyped-def]
    """A request whose resource claims ``project`` (the key must win)."""
    request = spans_request(count)
    request.resource_spans[0].resource.attributes.append(
        KeyValue(key="tracehouse.project", value=AnyValue(string_value=project))
    )
    return request


def post(collector: RunningCollector, request, **headers: str) -> httpx.Response:  # type: ignore[no-untyped-def]
    return httpx.post(f"{collector.http_url}/v1/traces", content=request.SerializeToString(),
                      headers={"Content-Type": "application/x-protobuf", **headers}, timeout=30)


def test_ingest_needs_an_ingest_key_over_http(keyed: RunningCollector) -> None:
    assert post(keyed, claiming("beta")).status_code == 401
    assert post(keyed, claiming("beta"), authorization="Bearer th_ingest_aaaaaaaaaaaa_wrong").status_code == 401
    assert post(keyed, claiming("beta"), authorization=f"Bearer {READ_A}").status_code == 401  # read key
    assert post(keyed, claiming("beta"), authorization=f"Bearer {INGEST_A}").status_code == 200
    assert post(keyed, claiming("alpha"), **{"x-api-key": INGEST_B}).status_code == 200
    projects = dict(keyed.sql("SELECT project, count(*) FROM spans GROUP BY ALL"))
    assert projects == {"alpha": 5, "beta": 5}  # the key's project, whatever the resource said


def test_ingest_needs_an_ingest_key_over_grpc(keyed: RunningCollector) -> None:
    with grpc.insecure_channel(keyed.grpc_endpoint) as channel:
        stub = TraceServiceStub(channel)
        for metadata in [(), (("authorization", "Bearer nope"),), (("x-api-key", READ_B),)]:
            with pytest.raises(grpc.RpcError) as error:
                stub.Export(claiming("alpha"), metadata=metadata, timeout=30)
            assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
        stub.Export(claiming("alpha"), metadata=(("authorization", f"Bearer {INGEST_B}"),), timeout=30)
        stub.Export(claiming("alpha"), metadata=(("x-api-key", INGEST_A),), timeout=30)
    assert dict(keyed.sql("SELECT project, count(*) FROM spans GROUP BY ALL")) == {"alpha": 5, "beta": 5}


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_official_exporter_with_a_key_header(keyed: RunningCollector, protocol: str) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    headers = {"authorization": f"Bearer {INGEST_B}"}
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc

        exporter = Grpc(endpoint=keyed.grpc_endpoint, insecure=True, headers=headers)
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Http

        exporter = Http(endpoint=f"{keyed.http_url}/v1/traces", headers=headers)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("t").start_as_current_span("keyed"):
        pass
    provider.shutdown()
    assert keyed.sql("SELECT project, name FROM spans") == [("beta", "keyed")]


def api(collector: RunningCollector, method: str, path: str, key: str | None, **kwargs: object) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.request(method, f"{collector.http_url}{path}", headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def two_projects(keyed: RunningCollector) -> tuple[RunningCollector, dict[str, set[str]]]:
    traces: dict[str, set[str]] = {"alpha": set(), "beta": set()}
    for project, key, count in (("alpha", INGEST_A, 3), ("beta", INGEST_B, 4)):
        for _ in range(count):
            request = claiming("x", 2)
            assert post(keyed, request, authorization=f"Bearer {key}").status_code == 200
            traces[project].add(request.resource_spans[0].scope_spans[0].spans[0].trace_id.hex())
    return keyed, traces


def sql(collector: RunningCollector, query: str, key: str = READ_A) -> httpx.Response:
    return api(collector, "POST", "/api/sql", key, json={"sql": query})


def test_reads_need_a_read_key_and_see_only_their_project(two_projects) -> None:  # type: ignore[no-untyped-def]
    collector, traces = two_projects
    assert api(collector, "GET", "/api/traces", None).status_code == 401
    assert api(collector, "GET", "/api/traces", INGEST_A).status_code == 401
    assert api(collector, "GET", "/healthz", None).status_code == 200
    listed = api(collector, "GET", "/api/traces", READ_A).json()
    rows = listed.get("traces", listed.get("rows", listed)) if isinstance(listed, dict) else listed
    assert {t["trace_id"] for t in rows} == traces["alpha"]
    other = next(iter(traces["beta"]))
    assert api(collector, "GET", f"/api/traces/{other}", READ_A).status_code == 404
    assert api(collector, "GET", f"/api/traces/{other}", READ_B).status_code == 200
    assert sql(collector, "SELECT count(*) FROM spans").json()["rows"] == [[6]]
    assert sql(collector, "SELECT count(*) FROM spans", READ_B).json()["rows"] == [[8]]
    assert sql(collector, "SELECT count(*) FROM traces").json()["rows"] == [[3]]
    export = api(collector, "GET", "/api/export", READ_A)
    assert export.status_code == 200 and export.headers.get("X-Total-Rows") == "6"
    assert api(collector, "GET", "/api/analytics/overview", READ_A).status_code == 200
    run = api(collector, "POST", "/api/analytics/run", READ_A)  # runs every project, answers about alpha's
    assert run.status_code == 200 and run.json()["project"] == "alpha" and run.json()["spans"] == 6


ALPHA_ONLY = [
    ("SELECT count(*) FROM spans", [[6]]),
    ("SELECT count(*) FROM (SELECT * FROM spans) s", [[6]]),
    ("SELECT count(*) FROM spans WHERE trace_id IN (SELECT trace_id FROM spans)", [[6]]),
    ("WITH x AS (SELECT * FROM spans) SELECT count(*) FROM x", [[6]]),
    ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT count(*) FROM spans, r", [[18]]),
    ("SELECT count(*) FROM /* main. */ spans -- main.spans", [[6]]),
    ("SELECT count(DISTINCT project) || '' FROM spans", [["1"]]),
    ("SELECT DISTINCT project FROM traces", [["alpha"]]),
    ("SELECT count(*) FROM sessions WHERE project = 'beta'", [[0]]),
    ("SELECT 'main.spans' AS s FROM spans LIMIT 1", [["main.spans"]]),
    ("SELECT count(*) FROM (SUMMARIZE spans) WHERE column_name = 'project' AND approx_unique = 1", [[1]]),
    ("FROM spans SELECT count(*)", [[6]]),
]

REFUSED = [
    "SELECT * FROM main.spans",
    "SELECT * FROM main/**/.spans",
    "SELECT * FROM memory.main.spans",
    "SELECT * FROM temp.main.spans",
    "SELECT * FROM \"main\".\"spans\"",
    "SELECT * FROM \"main.spans\"",
    "SELECT * FROM 'main.spans'",
    "SELECT * FROM duckdb_tables()",
    "SELECT * FROM duckdb_tables",
    "SELECT * FROM duckdb_databases()",
    "SELECT * FROM information_schema.tables",
    "SELECT * FROM pg_catalog.pg_tables",
    "SELECT * FROM api_keys",
    "SELECT * FROM schema_version",
    "WITH spans AS (SELECT * FROM main.spans) SELECT count(*) FROM spans",
    "SELECT count(*) FROM spans WHERE EXISTS (SELECT 1 FROM main.spans WHERE project = 'beta')",
    "SELECT * FROM spans UNION ALL SELECT * FROM main.spans",
    "WITH RECURSIVE r AS (SELECT * FROM main.spans UNION SELECT * FROM r) SELECT * FROM r",
    "EXPLAIN SELECT * FROM main.spans",
    "EXPLAIN /* x */ ANALYZE /* y */ SELECT count(*) FROM memory.main.spans",
    "/* c */ EXPLAIN -- d\n ANALYZE SELECT count(*) FROM memory.main.spans",
    "SELECT * FROM query('SELECT * FROM main.spans')",
    "SELECT * FROM query_table('main.spans')",
    "SELECT * FROM summary(main.spans)",
    "SELECT * FROM read_csv('x.csv')",
    "SET search_path = 'main'",
    "USE memory.main",
    "ATTACH 'other.duckdb'",
    "DELETE FROM spans",
    "SELECT 1; SELECT * FROM main.spans",
    "SHOW TABLES",
    "SHOW ALL TABLES",
    "DESCRIBE main.spans",
    "SUMMARIZE memory.main.spans",
    "SELECT * FROM (SUMMARIZE SELECT * FROM memory.main.spans)",
    "SELECT (SELECT count(*) FROM memory.main.spans)",
    "SELECT * FROM spans, LATERAL (SELECT * FROM memory.main.spans) x",
    "SELECT * FROM spans POSITIONAL JOIN memory.main.spans",
    "SELECT * FROM (UNPIVOT memory.main.spans ON name INTO NAME k VALUE v)",
    "FROM memory.main.spans",
    "SELECT count(*) FROM memory.spans",
]


@pytest.mark.parametrize("query, expected", ALPHA_ONLY)
def test_hostile_sql_sees_only_its_project(two_projects, query: str, expected: list[list[object]]) -> None:  # type: ignore[no-untyped-def]
    collector, _ = two_projects
    response = sql(collector, query)
    assert response.status_code == 200, response.text
    assert response.json()["rows"] == expected


@pytest.mark.parametrize("query", REFUSED)
def test_hostile_sql_that_would_cross_is_refused(two_projects, query: str) -> None:  # type: ignore[no-untyped-def]
    collector, _ = two_projects
    database = collector.sql("SELECT current_database()")[0][0]
    query = query.replace("memory.", f"{database}.")
    response = sql(collector, query)
    assert response.status_code == 400, (query, response.text)
    assert "\n" not in response.json()["detail"].strip()


def test_generated_keys_work_from_the_environment(make_collector, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    assert cli_main(["keys", "generate", "--kind", "ingest"]) == 0
    key = capsys.readouterr().out.strip()
    collector: RunningCollector = make_collector(ingest_keys=f"gamma={key}")
    assert post(collector, claiming("x"), **{"x-api-key": key}).status_code == 200
    assert collector.sql("SELECT DISTINCT project FROM spans") == [("gamma",)]


def test_key_project_wins_in_ingest_worker_processes(make_collector) -> None:  # type: ignore[no-untyped-def]
    collector: RunningCollector = make_collector(ingest_keys=f"alpha={INGEST_A}", ingest_workers=1)
    assert post(collector, claiming("beta"), authorization=f"Bearer {INGEST_A}").status_code == 200
    assert dict(collector.sql("SELECT project, count(*) FROM spans GROUP BY ALL")) == {"alpha": 5}
