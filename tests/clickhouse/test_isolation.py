"""Project keys on a ClickHouse store: a project's reader sees its own rows only, through the
query API and through hostile SQL (CTEs, subqueries, db-qualified names, comments, string
tricks, table functions); ingest keys decide the project of the spans they send."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from collector.clickhouse import sandbox
from tests.collector.test_access import INGEST_A, INGEST_B, READ_A, READ_B, api, claiming, post
from collector.serve import CollectorServer
from tests.conftest import RunningCollector, collector_settings


@pytest.fixture(scope="module")
def two_projects(tmp_path_factory: pytest.TempPathFactory, chdb_dir: Path) -> Iterator[tuple[RunningCollector, dict[str, set[str]]]]:
    """One keyed collector for the module: nothing here writes after the set-up."""
    settings = collector_settings(
        tmp_path_factory.mktemp("iso") / "unused.duckdb",
        store=f"chdb://{chdb_dir}?database=t_isolation",
        ingest_keys=f"alpha={INGEST_A},beta={INGEST_B}",
        read_keys=f"alpha={READ_A},beta={READ_B}",
    )
    collector = RunningCollector(CollectorServer(settings).start(), Path("unused"))
    traces: dict[str, set[str]] = {"alpha": set(), "beta": set()}
    for project, key, count in (("alpha", INGEST_A, 3), ("beta", INGEST_B, 4)):
        for _ in range(count):
            request = claiming("x", 2)
            assert post(collector, request, authorization=f"Bearer {key}").status_code == 200
            traces[project].add(request.resource_spans[0].scope_spans[0].spans[0].trace_id.hex())
    yield collector, traces
    collector.stop()


def sql(collector: RunningCollector, query: str, key: str = READ_A) -> httpx.Response:
    return api(collector, "POST", "/api/sql", key, json={"sql": query})


def test_reads_see_only_their_project(two_projects) -> None:  # type: ignore[no-untyped-def]
    collector, traces = two_projects
    assert api(collector, "GET", "/api/traces", None).status_code == 401
    listed = api(collector, "GET", "/api/traces", READ_A).json()
    assert {t["trace_id"] for t in listed["traces"]} == traces["alpha"] and listed["total"] == 3
    other = next(iter(traces["beta"]))
    assert api(collector, "GET", f"/api/traces/{other}", READ_A).status_code == 404
    assert api(collector, "GET", f"/api/traces/{other}", READ_B).status_code == 200
    assert sql(collector, "SELECT count() FROM spans").json()["rows"] == [[6]]
    assert sql(collector, "SELECT count() FROM spans", READ_B).json()["rows"] == [[8]]
    export = api(collector, "GET", "/api/export", READ_A)
    assert export.status_code == 200 and export.headers.get("X-Total-Rows") == "6"
    assert collector.server.store.rows("SELECT project, count() FROM spans GROUP BY project ORDER BY project") == [
        ("alpha", 6), ("beta", 8)
    ]


ALPHA_ONLY = [
    ("SELECT count() FROM spans", [[6]]),
    ("SELECT count() FROM span_store", [[6]]),
    ("SELECT count() FROM {db}.span_store", [[6]]),
    ("SELECT count() FROM `{db}`.`span_store`", [[6]]),
    ('SELECT count() FROM "{db}"."spans"', [[6]]),
    ("SELECT count() FROM (SELECT * FROM spans) AS s", [[6]]),
    ("SELECT count() FROM spans WHERE trace_id IN (SELECT trace_id FROM span_store)", [[6]]),
    ("SELECT (SELECT count() FROM span_store)", [[6]]),
    ("WITH x AS (SELECT * FROM span_store) SELECT count() FROM x", [[6]]),
    ("SELECT count() FROM spans AS s JOIN traces AS t ON s.trace_id = t.trace_id", [[6]]),
    ("SELECT count() FROM spans s, span_store", [[36]]),
    ("SELECT count() FROM spans UNION ALL SELECT count() FROM {db}.span_store", [[6], [6]]),
    ("SELECT count() FROM /* {db}.span_store */ spans -- {db}.span_store", [[6]]),
    ("SELECT count() FROM spans WHERE project != 'alpha' OR 1 = 1", [[6]]),
    ("SELECT DISTINCT project FROM traces", [["alpha"]]),
    ("SELECT count() FROM sessions WHERE project = 'beta'", [[0]]),
    ("SELECT '{db}.span_store' AS s FROM spans LIMIT 1", [["{db}.span_store"]]),
    ("SELECT count() FROM spans FINAL", [[6]]),
]

REFUSED = [
    "SELECT * FROM merge('{db}', '^span')",
    "SELECT * FROM merge(currentDatabase(), 'span_store')",
    "SELECT * FROM view(SELECT * FROM {db}.span_store)",
    "SELECT * FROM remote('127.0.0.1', {db}.span_store)",
    "SELECT * FROM cluster('default', {db}.span_store)",
    "SELECT * FROM system.parts",
    "SELECT * FROM other_db.span_store",
    "WITH span_store AS (SELECT * FROM spans) SELECT count() FROM span_store",
    "SELECT count() FROM spans SETTINGS additional_table_filters = {{}}",
    "SELECT count() FROM spans WHERE trace_id IN span_store",
    "SELECT 1; SELECT count() FROM span_store",
]


@pytest.mark.parametrize("query, expected", ALPHA_ONLY)
def test_hostile_sql_sees_only_its_project(two_projects, query: str, expected: list[list[object]]) -> None:  # type: ignore[no-untyped-def]
    collector, _ = two_projects
    db = collector.server.store.database
    response = sql(collector, query.format(db=db))
    assert response.status_code == 200, response.text
    assert response.json()["rows"] == [[v.format(db=db) if isinstance(v, str) else v for v in row] for row in expected]


@pytest.mark.parametrize("query", REFUSED)
def test_hostile_sql_that_would_cross_is_refused(two_projects, query: str) -> None:  # type: ignore[no-untyped-def]
    collector, _ = two_projects
    response = sql(collector, query.format(db=collector.server.store.database))
    assert response.status_code == 400, (query, response.text)
    assert "\n" not in response.json()["detail"].strip()


@pytest.mark.parametrize("query", ["SELECT count() FROM spans", "SELECT count() FROM span_store", "SELECT count() FROM traces"])
def test_server_side_filter_holds_without_the_rewrite(two_projects, query: str) -> None:  # type: ignore[no-untyped-def]
    """The second wall: additional_table_filters alone keeps a raw query to the project."""
    collector, _ = two_projects
    scoped = collector.server.store.scoped("alpha")
    settings = sandbox._settings(scoped, 5.0, 100, sandbox._relations(scoped))
    assert scoped.client().query(query, settings=settings).result_rows[0][0] in {6, 3}
    assert collector.server.store.rows(query)[0][0] in {14, 7}
