"""The dashboard's pure parts: span tree order, waterfall shape, message rendering, number formats."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pandas as pd
import pytest

from dashboard import charts, client, fmt, messages, queries, ui

T0 = datetime(2026, 1, 1, 12, 0, 0)


def spans(rows: list[tuple[str, str | None, int, int, str]]) -> pd.DataFrame:
    """(span_id, parent, start ms, duration ms, status) → a trace frame."""
    return pd.DataFrame(
        {
            "span_id": [r[0] for r in rows],
            "parent_span_id": [r[1] for r in rows],
            "name": [f"span {r[0]}" for r in rows],
            "kind": ["agent" if r[1] is None else "llm" for r in rows],
            "start_time": [T0 + timedelta(milliseconds=r[2]) for r in rows],
            "duration_ms": [float(r[3]) for r in rows],
            "status": [r[4] for r in rows],
        }
    )


def test_tree_order_is_depth_first_by_start_and_keeps_orphans_and_cycles() -> None:
    frame = spans([
        ("c", "a", 50, 10, "ok"), ("a", None, 0, 100, "ok"), ("b", "a", 10, 20, "ok"),
        ("d", "b", 12, 5, "error"), ("orphan", "missing", 5, 1, "ok"), ("x", "y", 1, 1, "ok"), ("y", "x", 2, 1, "ok"),
    ])
    ordered = charts.tree_order(frame)
    assert list(ordered["span_id"][:5]) == ["a", "b", "d", "c", "orphan"]
    assert list(ordered["depth"][:5]) == [0, 1, 2, 1, 0]
    assert sorted(ordered["span_id"]) == sorted(frame["span_id"])  # nothing hidden, even in a cycle


def test_waterfall_is_one_bar_trace_with_offsets_errors_and_indent() -> None:
    n = 2_000
    rows = [("root", None, 0, 3_000, "ok")] + [(f"s{i}", "root", i, 1, "error" if i == 7 else "ok") for i in range(n - 1)]
    fig = charts.waterfall(charts.tree_order(spans(rows)), selected_span="s3")
    bars = [t for t in fig.data if t.type == "bar"]
    assert len(bars) == 1 and len(bars[0].x) == n
    assert list(bars[0].base[:3]) == [0.0, 0.0, 1.0]
    errors = [t for t in fig.data if t.name == "error"]
    assert len(errors) == 1 and list(errors[0].y) == [8]  # row of s7 (root is row 0)
    labels = fig.layout.yaxis.ticktext
    assert labels[0].startswith("span root") and labels[1].startswith("└\u00a0span s0")
    assert len({len(label) for label in labels}) == 1  # padded: a left-aligned tree in monospace


@pytest.mark.parametrize(
    "payload, attributes, expected",
    [
        (json.dumps([{"role": "user", "content": "hi"}]), None, [("user", "hi")]),
        (json.dumps([{"role": "user", "parts": [{"type": "text", "content": "hello"}]}]), None, [("user", "hello")]),
        (json.dumps({"messages": [{"role": "system", "content": "be brief"}]}), None, [("system", "be brief")]),
        (None, {"llm.input_messages.0.message.role": "user", "llm.input_messages.0.message.content": "flat"},
         [("user", "flat")]),
        ("plain words", None, [("user", "plain words")]),
        (float("nan"), None, []),
    ],
)
def test_messages_from_every_convention(payload: object, attributes: dict | None, expected: list) -> None:
    assert [(m.role, m.text) for m in messages.messages(payload, attributes)] == expected


def test_tool_calls_render_name_and_arguments() -> None:
    payload = json.dumps([{"role": "assistant", "parts": [
        {"type": "tool_call", "name": "lookup_order", "arguments": {"order_id": 7}}]}])
    (message,) = messages.messages(payload, direction="output")
    assert "lookup_order" in message.text and '"order_id": 7' in message.text


def test_formats_are_readable_and_unknown_cost_is_not_zero() -> None:
    assert [fmt.duration(v) for v in (0.25, 4.2, 340, 2_410, 185_000)] == ["250 µs", "4.2 ms", "340 ms", "2.41 s",
                                                                            "3 min 5 s"]
    assert [fmt.money(v) for v in (None, float("nan"), 0, 0.0042, 12.5, 12_345)] == ["–", "–", "$0", "$0.0042",
                                                                                    "$12.50", "$12,345"]
    assert [fmt.count(v) for v in (999, 12_345, 4_560_000)] == ["999", "12.3k", "4.56M"]
    assert fmt.percent(0.756) == "75.6%"


def test_number_columns_stay_numbers_when_every_value_is_null() -> None:
    # What /api/sql sends for sessions none of whose costs the analytics have computed yet.
    frame = client._frame([
        {"session_id": "a", "cost_usd": None, "llm_calls": 3, "cost_status": "unpriced", "user_id": None},
        {"session_id": "b", "cost_usd": None, "llm_calls": None, "cost_status": "priced", "user_id": None},
    ])
    assert frame["cost_usd"].dtype == object  # JSON nulls alone give pandas no type
    shown = ui.numeric(frame)
    assert shown["cost_usd"].dtype == "float64" and shown["cost_usd"].isna().all()
    assert shown["llm_calls"].dtype == "float64"
    assert list(shown["cost_status"]) == ["unpriced", "priced"] and shown["user_id"].isna().all()  # text stays
    mixed = ui.numeric(client._frame([{"cost_usd": None}, {"cost_usd": 0.5}, {"cost_usd": 0.25}]))
    assert list(mixed.sort_values("cost_usd", na_position="last")["cost_usd"])[:2] == [0.25, 0.5]


def test_sql_literals_quote_what_people_type() -> None:
    assert queries.lit("O'Brien") == "'O''Brien'"
    f = queries.Filters(T0, T0 + timedelta(hours=1), service="svc'; DROP TABLE spans; --")
    assert "service_name = 'svc''; DROP TABLE spans; --'" in queries.span_where(f)


def test_handoff_flow_layout_puts_chains_left_to_right_and_stacks_workflows() -> None:
    pos = charts.flow_layout([("triage", "billing"), ("billing", "refunds"), ("triage", "tech"),
                              ("writer", "editor"), ("editor", "writer")])
    assert pos["triage"][0] == 0 and pos["billing"][0] == 1 and pos["refunds"][0] == 2 and pos["tech"][0] == 1
    assert pos["billing"][1] != pos["tech"][1]  # siblings on separate rows
    assert pos["writer"][1] < min(pos[n][1] for n in ("triage", "billing", "tech"))  # next chain below
    assert set(pos) == {"triage", "billing", "refunds", "tech", "writer", "editor"}


def test_handoff_arrows_say_the_share_that_decides_their_colour() -> None:
    """19.57 % of runs failed reads "19.6% failed" on a blue arrow (it read "20% failed", blue,
    beside red arrows at 20 % and over)."""
    edges = pd.DataFrame({"source": ["triage", "triage"], "target": ["orders", "tech"], "count": [46, 31],
                          "run_failure_rate": [9 / 46, 0.2]})
    annotations = charts.handoff_graph(edges).layout.annotations
    arrows = [a for a in annotations if a.showarrow]
    labels = [a.text for a in annotations if not a.showarrow]
    assert labels == ["46 · 19.6% failed", "31 · 20.0% failed"]
    assert [a.arrowcolor == fmt.ERROR_COLOR for a in arrows] == [False, True]


def test_rollup_cut_is_the_first_minute_still_pending() -> None:
    end = T0 + timedelta(minutes=30, seconds=5)
    assert queries.rollup_cut(None, None, end) is None  # analytics never ran: all from spans
    assert queries.rollup_cut(T0, None, end) == T0 + timedelta(minutes=31)  # nothing pending
    assert queries.rollup_cut(T0, T0 + timedelta(minutes=12, seconds=40), end) == T0 + timedelta(minutes=12)


def test_split_reads_whole_covered_minutes_from_the_rollup_and_the_edges_raw() -> None:
    f = queries.Filters(T0 + timedelta(seconds=20), T0 + timedelta(minutes=30, seconds=5), "svc", "a")
    rolled, raw = queries.split(f, T0 + timedelta(minutes=12))
    assert (rolled.start, rolled.end, rolled.service, rolled.agent) == (T0 + timedelta(minutes=1), T0 + timedelta(minutes=12), "svc", "a")
    assert [(w.start, w.end) for w in raw] == [(f.start, T0 + timedelta(minutes=1)), (T0 + timedelta(minutes=12), f.end)]
    rolled, raw = queries.split(f, T0 + timedelta(minutes=31))  # nothing pending: only the current minute raw
    assert rolled.end == T0 + timedelta(minutes=30) and raw[-1].start == T0 + timedelta(minutes=30)
    assert queries.split(f, None) == (None, [f])
    assert queries.split(f, T0 + timedelta(seconds=30)) == (None, [f])  # the rollup covers no whole minute
