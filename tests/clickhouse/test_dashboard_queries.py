"""Every dashboard query, sent as the pages send it (DuckDB SQL, ``dialect="duckdb"``) through the
ClickHouse SQL sandbox (translated by collector.clickhouse.dialect, checked, run read-only on
chdb), returns what it returns on DuckDB for the same spans and analytics rows."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from analytics import forest
from analytics.clickhouse_runner import ClickHouseAnalyticsRunner
from analytics.offline import DirectWriter
from analytics.runner import AnalyticsRunner
from bench.synth import Synth, generate
from collector.clickhouse import sandbox
from collector.clickhouse.store import ClickHouseStore
from collector.jsonvalues import jsonable
from collector.rollup import catch_up
from collector.settings import Settings
from collector.store import Store
from dashboard import agent_queries as aq
from dashboard import queries as q
from tests.clickhouse.chdb_helpers import copy_spans, open_store

TRAFFIC = (
    Synth(traces=300, start=dt.datetime(2026, 1, 5, 9), minutes=60, salt=1, base_error_rate=0.1),
    Synth(traces=300, start=dt.datetime(2026, 1, 5, 9, 30), minutes=60, salt=2, base_error_rate=0.1,
          received_at=dt.datetime(2026, 1, 5, 10, 30)),
)  # fmt: skip
NOW = dt.datetime(2026, 1, 5, 10, 45)
# Guardrail checks (synthetic traffic has none): one per agent span, every third one tripped.
GUARDRAILS = """INSERT INTO spans BY NAME
SELECT * REPLACE (md5(span_id || 'g')[:16] AS span_id, span_id AS parent_span_id, 'guardrail' AS kind,
                  'pii_check' AS name, hash(span_id) % 3 = 0 AS guardrail_triggered,
                  start_time + INTERVAL 1 MILLISECOND AS start_time, 'ok' AS status)
FROM spans WHERE kind = 'agent'"""

START, END, CUT = dt.datetime(2026, 1, 5, 9, 0, 30), dt.datetime(2026, 1, 5, 11), dt.datetime(2026, 1, 5, 10, 30)
FILTERS = {"all": q.Filters(START, END), "agent": q.Filters(START, END, service="support-bot", agent="triage")}
Builder = Callable[[q.Filters], str]
BUILDERS: dict[str, Builder] = {
    "rollup_state": lambda f: q.rollup_state(),
    "live_kpis": lambda f: q.live_kpis(f, END),
    "overview_numbers": lambda f: q.overview_numbers(f, END, dt.datetime(2026, 1, 5), CUT),
    "cost_since": lambda f: q.cost_since(f, dt.datetime(2026, 1, 5), END, CUT),
    "overview_series": q.overview_series,
    "overview_series_day": lambda f: q.overview_series(q.Filters(START - dt.timedelta(days=20), END)),
    "cost_series": lambda f: q.cost_series(f, CUT),
    "cost_series_raw": lambda f: q.cost_series(f, None),
    "top_errors": q.top_errors,
    "top_errors_split": lambda f: q.top_errors_split(f, CUT),
    **{f"distinct_{c}": (lambda f, c=c: q.distinct_values(c, START)) for c in q._TRACE_VALUES},
    "recent_sessions": q.recent_sessions,
    "session_count": q.session_count,
    **{f"cost_by_{d}": (lambda f, d=d: q.cost_by(f, d)) for d in ("model", "agent", "service", "provider")},
    "cost_by_day": q.cost_by_day,
    "unpriced_models": q.unpriced_models,
    "expensive_traces": q.expensive_traces,
    "span_costs": lambda f: q.span_costs("0000000000000000000000003b9aca7e"),
    "anomalies": lambda f: q.recent_rows("anomalies", "detected_at", q.Filters(START, NOW + dt.timedelta(1))),
    "alerts": lambda f: q.recent_rows("alerts", "fired_at", f),
    **{f"{name}_{mode}": (lambda f, fn=fn, cut=cut: fn(f, cut))
       for name, fn in (("agent_runs", aq.agent_runs), ("agent_usage", aq.agent_usage), ("handoffs", aq.handoffs),
                        ("guardrails", aq.guardrails), ("tool_stats", aq.tool_stats))
       for mode, cut in (("rolled", CUT), ("raw", None))},
}  # fmt: skip
# Empty for a reason: no alert rule fires on this traffic; the triage agent's model is priced, it
# names no handoff (synthetic handoffs carry no handoff_from/to) and the fixed trace is not its.
MAY_BE_EMPTY = {("alerts", "all"), ("alerts", "agent"), ("span_costs", "agent"), ("unpriced_models", "agent"),
                ("handoffs_raw", "agent")}  # fmt: skip
# Columns picked among ties, differently by each engine: the sample trace of a minute's errors.
TIES = {"top_errors_split": {"example_trace"}}



class Stores:
    def __init__(self, store: Store, ch: ClickHouseStore) -> None:
        self.store, self.ch = store, ch


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory, chdb_dir: Path) -> Iterator[Stores]:
    """The same traffic on DuckDB and ClickHouse, analytics run on both."""
    store = Store(tmp_path_factory.mktemp("dash") / "duck.duckdb")
    clickhouse = open_store(f"chdb://{chdb_dir}?database=t_dash_{uuid.uuid4().hex[:8]}")
    factory = clickhouse.client
    ch = factory()
    settings = Settings.from_env({})
    for config in TRAFFIC:
        generate(store.write_connection, config)
    store.write_connection.execute(GUARDRAILS)
    copy_spans(store.cursor(), ch)
    # Fitted in this process, as an offline run does (the collector's child: tests/analytics/test_forest.py).
    AnalyticsRunner(store, DirectWriter(store), settings, scorer=forest.in_process).run_now(now=NOW)
    ClickHouseAnalyticsRunner(factory, settings, scorer=forest.in_process).run_now(now=NOW)
    catch_up(store)
    yield Stores(store, clickhouse)
    store.close()


def _norm(value: object) -> object:
    """A DuckDB value as the API answers it (JSON: times as ISO text)."""
    return jsonable(value)


def _rows(rows: list[tuple[object, ...]] | list[list[object]]) -> list[tuple[object, ...]]:
    """Rows in a fixed order (floats rounded for sorting only)."""
    normed = [tuple(_norm(v) for v in row) for row in rows]
    key = lambda row: repr(tuple(float(f"{v:.6g}") if isinstance(v, float) else v for v in row))  # noqa: E731
    return sorted(normed, key=key)


def _same(a: object, b: object) -> bool:
    """Equal, floats to 1e-9 relative (sums differ in the last bits with summation order)."""
    if isinstance(a, float) and isinstance(b, (int, float)) or isinstance(b, float) and isinstance(a, int):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _exact(sql: str) -> str:
    """DuckDB's estimators as exact aggregates: ClickHouse's (uniq, quantile) are exact at this
    size, DuckDB's sketches are not, so the exact form is the reference."""
    return sql.replace("approx_quantile(", "quantile_cont(").replace("approx_count_distinct(", "count(DISTINCT ")


def _compare(stores: Stores, name: str, sql: str) -> list[tuple[object, ...]]:
    """The rows of ``sql`` on ClickHouse (through the sandbox) equal DuckDB's; returns them."""
    duck = stores.store.cursor().sql(_exact(sql))
    columns = [c for c in duck.columns if c not in TIES.get(name, set())]
    expected = _rows([tuple(row[duck.columns.index(c)] for c in columns) for row in duck.fetchall()])
    result = sandbox.run(stores.ch, sql, timeout_s=30, max_rows=10_000, dialect="duckdb")
    got_columns = list(result.columns)
    got = _rows([tuple(row[got_columns.index(c)] for c in columns) for row in result.rows])
    assert _same(got, expected), f"{got[:3]} != {expected[:3]}"
    if expected:
        assert got_columns == duck.columns
    return expected


@pytest.mark.parametrize("filters", list(FILTERS))
@pytest.mark.parametrize("name", list(BUILDERS))
def test_dashboard_query_same_on_clickhouse(stores: Stores, name: str, filters: str) -> None:
    if not _compare(stores, name, BUILDERS[name](FILTERS[filters])):
        assert (name, filters) in MAY_BE_EMPTY, "the data should exercise every query"


@pytest.mark.parametrize("name", list(q.SQL_EXAMPLES))
def test_sql_page_example_same_on_clickhouse(stores: Stores, name: str) -> None:
    """The SQL page's examples, sent as DuckDB SQL; those about today or the last hour find nothing
    in this (older) traffic, on either store."""
    rows = _compare(stores, name, q.SQL_EXAMPLES[name])
    assert bool(rows) == (name not in {"Slowest traces today", "Requests per minute (last hour)"})
