"""Every dashboard page, run by Streamlit's AppTest against a real, seeded collector.

Each test checks what a person reads: the numbers (computed from the seeded traffic or read
from the collector's store) and the span names, and that no page raised.
"""

from __future__ import annotations

import json
import socket

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import fmt, ui
from tests.dashboard import seed
from tests.dashboard.conftest import APP, SeededCollector

PAGES = ["overview", "traces", "trace", "sessions", "agents", "costs", "anomalies", "sql"]


def open_page(page: str, *, state: dict[str, object] | None = None, params: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    for key, value in (state or {}).items():
        at.session_state[key] = value
    at.run()
    at.switch_page(f"views/{page}.py")
    for key, value in (params or {}).items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def frames(at: AppTest) -> list:
    return [d.value for d in at.dataframe]


def text(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [c.value for c in at.code]
    return "\n".join(str(p) for p in parts)


def test_overview_shows_live_numbers_and_top_errors(api: SeededCollector) -> None:
    at = open_page("overview")
    seeded = api.seeded
    shown = metrics(at)
    total = len(seeded.traces)
    assert shown["Active agents"] == str(len(seeded.agents))
    assert shown["Requests / min"] == f"{total / 5:,.1f}"  # all traces started in the last 5 minutes
    assert shown["Success rate"] == fmt.percent((total - seeded.failed_traces) / total)
    assert shown["Tokens today"] == fmt.count(seeded.tokens)
    assert shown["Cost today"] == fmt.money(api.priced_total())  # "–" until analytics has run
    (p95,) = api.sql("SELECT quantile_cont(duration_ms, 0.95) FROM spans WHERE parent_span_id IS NULL")[0]  # exact
    assert shown["p95 response"] == fmt.duration(p95)
    errors = frames(at)[0]
    assert seed.TOOL_ERROR in list(errors["last_message"])
    assert len(at.get("plotly_chart")) == 4


def test_overview_over_a_day_reads_errors_from_the_rollup_with_links(api: SeededCollector) -> None:
    at = open_page("overview", state={"range": "Last 24 hours"})
    errors = frames(at)[0]
    assert seed.TOOL_ERROR in list(errors["last_message"])
    row = errors[errors["last_message"] == seed.TOOL_ERROR].iloc[0]
    assert row["trace_id"] == api.seeded.traces["refund_failed"]
    assert row["spans"] == 1


def test_traces_lists_filters_and_pages(api: SeededCollector) -> None:
    at = open_page("traces")
    table = frames(at)[0]
    assert set(table["trace_id"]) == set(api.seeded.traces.values())
    assert {"refund-flow", "research-run", "bulk-crawl"} <= set(table["name"])
    assert "4 traces" in text(at)
    at.selectbox(key="tr_status").set_value("error").run()
    table = frames(at)[0]
    assert list(table["trace_id"]) == [api.seeded.traces["refund_failed"]]
    at.selectbox(key="tr_status").set_value("All").run()
    assert {"refund-flow", "research-run", "bulk-crawl"} <= set(at.selectbox(key="tr_workflow").options)
    at.selectbox(key="tr_workflow").set_value("refund-flow").run()
    assert set(frames(at)[0]["trace_id"]) == {api.seeded.traces["refund"], api.seeded.traces["refund_failed"]}
    at.selectbox(key="tr_workflow").set_value("All").run()
    at.selectbox(key="tr_sort").set_value("Most spans first").run()
    assert frames(at)[0]["trace_id"].iloc[0] == api.seeded.traces["big"]
    assert frames(at)[0]["spans"].iloc[0] == seed.BIG_TRACE_SPANS
    at.selectbox(key="tr_size").set_value(25).run()
    at.text_input(key="tr_q").input("research").run()
    assert list(frames(at)[0]["name"]) == ["research-run"]
    at.text_input(key="tr_q").input("").run()
    at.text_input(key="tr_session").input(seed.SESSION).run()
    assert set(frames(at)[0]["trace_id"]) == {api.seeded.traces["refund"], api.seeded.traces["refund_failed"]}


def test_trace_detail_draws_a_2000_span_waterfall_as_one_bar_trace(api: SeededCollector) -> None:
    at = open_page("trace", params={"trace_id": api.seeded.traces["big"]})
    assert metrics(at)["Spans"] == fmt.count(seed.BIG_TRACE_SPANS)
    (chart,) = at.get("plotly_chart")
    figure = json.loads(chart.proto.spec)
    bars = [t for t in figure["data"] if t.get("type") == "bar"]
    assert len(bars) == 1 and len(bars[0]["customdata"]) == seed.BIG_TRACE_SPANS  # one bar per span
    labels = " ".join(figure["layout"]["yaxis"]["ticktext"])
    assert "fetch_page_0000" in labels and "fetch_page_1997" in labels
    assert "bulk-crawl" in text(at)


def test_trace_detail_shows_llm_messages_tokens_and_errors(api: SeededCollector) -> None:
    at = open_page("trace", params={"trace_id": api.seeded.traces["refund"]})
    assert "refund-flow" in text(at)
    picker = at.selectbox(key="span_pick")
    llm = next(o for o in picker.options if "chat gpt-4.1 ·" in o)
    picker.select(picker.options[picker.options.index(llm)]).run()
    assert not at.exception
    rendered = text(at)
    assert seed.USER_QUESTION in rendered and "Let me hand you to billing." in rendered
    assert "1,200" in rendered and "gpt-4.1" in rendered
    at = open_page("trace", params={"trace_id": api.seeded.traces["refund_failed"]})
    assert any(seed.TOOL_ERROR in e.value for e in at.error)  # the failed span is selected first
    assert metrics(at)["Errors"] == "1"


def test_trace_detail_unknown_trace_is_one_line(api: SeededCollector) -> None:
    at = open_page("trace", params={"trace_id": "0" * 32})
    assert [w.value for w in at.warning] == [f"trace {'0' * 32} not found"]


def test_sessions_reads_the_conversation_turn_by_turn(api: SeededCollector) -> None:
    at = open_page("sessions", params={"session": seed.SESSION})
    table = frames(at)[0]
    assert list(table["session_id"]) == [seed.SESSION]
    assert metrics(at)["Turns"] == "2"
    assert metrics(at)["Failed turns"] == "1"
    chat = [m.value for m in at.markdown]
    assert seed.USER_QUESTION in chat
    assert "Issuing the refund." in chat


def test_agents_shows_calls_handoffs_and_tool_failures(api: SeededCollector) -> None:
    at = open_page("agents")
    stats, handoffs, guardrails, tools = frames(at)
    assert set(stats["agent"]) == api.seeded.agents
    assert stats.set_index("agent").loc["billing", "runs"] == 2
    assert {(r.source, r.target): r.count for r in handoffs.itertuples()} == api.seeded.handoffs
    # What the graph's arrows say ("n · x% failed") comes right after the count, not past the
    # narrow table's edge where it was cut off beside a "Failed handoffs" column of zeros.
    assert list(handoffs.columns[:4]) == ["source", "target", "count", "run_failure_rate"]
    assert guardrails.set_index("guardrail").loc["guardrail pii_check", "trips"] == 0
    refund = tools.set_index("tool").loc["issue_refund"]
    assert (refund["calls"], refund["failures"], refund["failure_rate"]) == (1, 1, 1.0)


def test_costs_by_model_and_unpriced_models(api: SeededCollector) -> None:
    at = open_page("costs")
    if not api.has_analytics():
        assert [i.value for i in at.info] == [ui.NO_ANALYTICS]
        return
    assert metrics(at)["Total cost"] == fmt.money(api.priced_total())
    assert metrics(at)["Unpriced calls"] == "1"
    unpriced = frames(at)[-1]
    assert list(unpriced["model"]) == ["mystery-model-x"]
    expensive = frames(at)[-2]
    assert expensive["trace_id"].iloc[0] == api.seeded.traces["refund"]


def test_anomalies_and_alerts_show_what_the_analytics_jobs_found(api: SeededCollector) -> None:
    at = open_page("anomalies")
    assert not at.error
    if not api.has_analytics():
        assert metrics(at)["Alerts in range"] == "–"
        return
    alerts = api.sql("SELECT rule, subject, state FROM alerts")
    anomalies = api.sql("SELECT kind FROM anomalies")
    shown = metrics(at)
    assert shown["Alerts in range"] == str(len(alerts))
    assert shown["Alerts firing"] == str(sum(state == "firing" for _, _, state in alerts))
    assert shown["Anomalies"] == str(len(anomalies))
    if alerts:  # one failed trace trips the execution-error rule for the service
        table = frames(at)[0]
        assert {(r.rule, r.subject) for r in table.itertuples()} == {(rule, subject) for rule, subject, _ in alerts}


def test_sql_runs_queries_and_refusals_are_one_line(api: SeededCollector) -> None:
    at = open_page("sql")
    at.text_area(key="sql_text").input("SELECT name, duration_ms FROM spans WHERE kind = 'llm' ORDER BY name")
    at.button[0].click().run()
    result = frames(at)[0]
    assert list(result["name"]) == sorted(["chat gpt-4.1", "chat gpt-4.1-mini", "chat gpt-4.1-mini",
                                           "chat mystery-model-x"])
    at.text_area(key="sql_text").input("DELETE FROM spans")
    at.button[0].click().run()
    assert not at.exception
    (error,) = at.error
    assert "\n" not in error.value and "HTTP 400" in error.value


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("page", PAGES)
def test_collector_down_is_one_clear_line(page: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACEHOUSE_API_URL", f"http://127.0.0.1:{_closed_port()}")
    at = open_page(page, params={"trace_id": "a" * 32} if page == "trace" else None)
    if page == "sql":
        at.button[0].click().run()
    messages = [e.value for e in at.error]
    assert messages and all(m.startswith("Cannot reach the collector") and "\n" not in m for m in messages)
