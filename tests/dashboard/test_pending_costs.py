"""A cost the analytics jobs have not computed yet reads 'pending', not '–' (which means unpriced).

The jobs price new LLM calls once a minute, so the newest sessions and traces have no cost for up
to a minute; the pages said '–' for them, as for a model with no price. Here the collector's timer
is off (``analytics_interval_s=0``): the seeded traffic stays unpriced until the test runs the jobs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st

from dashboard import fmt
from tests.dashboard import seed
from tests.dashboard.conftest import SeededCollector, _run_analytics, _seeded
from tests.dashboard.test_pages import metrics, open_page

PENDING_NOTE = "that are not priced yet"


@pytest.fixture
def unpriced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SeededCollector]:
    """The seeded traffic in a collector whose analytics jobs have not run yet."""
    with _seeded(tmp_path, analyse=False, analytics_interval_s=0) as collector:
        monkeypatch.setenv("TRACEHOUSE_API_URL", collector.http_url)
        yield collector


def _captions(at: object) -> str:
    return "\n".join(c.value for c in at.caption)  # type: ignore[attr-defined]


def _turn_labels(at: object) -> list[str]:
    return [m.value for m in at.markdown if "Turn " in m.value]  # type: ignore[attr-defined]


def test_costs_not_computed_yet_read_pending_until_the_jobs_run(unpriced: SeededCollector) -> None:
    sessions = open_page("sessions", params={"session": seed.SESSION})
    assert PENDING_NOTE in _captions(sessions)
    assert metrics(sessions)["Cost"] == fmt.PENDING
    assert all(label.endswith(f"· {fmt.PENDING}**") for label in _turn_labels(sessions))
    traces = open_page("traces")
    assert PENDING_NOTE in _captions(traces)
    trace = open_page("trace", params={"trace_id": unpriced.seeded.traces["refund"]})
    assert metrics(trace)["Cost"] == fmt.PENDING
    assert metrics(open_page("overview"))["Cost today"] == fmt.PENDING

    _run_analytics(unpriced.server, unpriced.server.settings)  # type: ignore[attr-defined]
    st.cache_data.clear()  # the pages' reads are cached for 5-30 s
    (cost,) = unpriced.sql(f"SELECT sum(cost_usd) FROM traces WHERE session_id = '{seed.SESSION}'")[0]
    assert cost is not None and cost > 0
    sessions = open_page("sessions", params={"session": seed.SESSION})
    assert PENDING_NOTE not in _captions(sessions)
    assert metrics(sessions)["Cost"] == fmt.money(cost)
    assert fmt.PENDING not in "".join(_turn_labels(sessions))
    assert PENDING_NOTE not in _captions(open_page("traces"))
    trace = open_page("trace", params={"trace_id": unpriced.seeded.traces["refund"]})
    assert metrics(trace)["Cost"] not in (fmt.PENDING, fmt.MISSING)
    assert metrics(open_page("overview"))["Cost today"] not in (fmt.PENDING, fmt.MISSING)
