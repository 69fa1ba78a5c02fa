"""Dashboard login against a collector with API keys: a read key per browser session, one project."""

from __future__ import annotations

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from tests.collector.otlp_payloads import spans_request
from tests.conftest import RunningCollector
from tests.dashboard.conftest import APP

INGEST_A = "th_ingest_aaaaaaaaaaaa_" + "A" * 43
INGEST_B = "th_ingest_bbbbbbbbbbbb_" + "B" * 43
READ_A = "th_read_cccccccccccc_" + "C" * 43


@pytest.fixture
def keyed(make_collector, monkeypatch: pytest.MonkeyPatch) -> tuple[RunningCollector, set[str]]:  # type: ignore[no-untyped-def]
    collector: RunningCollector = make_collector(ingest_keys=f"alpha={INGEST_A},beta={INGEST_B}", read_keys=f"alpha={READ_A}")
    alpha: set[str] = set()
    for key in (INGEST_A, INGEST_B, INGEST_B):
        request = spans_request(3)
        response = httpx.post(f"{collector.http_url}/v1/traces", content=request.SerializeToString(),
                              headers={"Content-Type": "application/x-protobuf", "x-api-key": key}, timeout=30)
        assert response.status_code == 200
        if key == INGEST_A:
            alpha.add(request.resource_spans[0].scope_spans[0].spans[0].trace_id.hex())
    monkeypatch.setenv("TRACEHOUSE_API_URL", collector.http_url)
    monkeypatch.delenv("TRACEHOUSE_API_KEY", raising=False)
    return collector, alpha


def test_login_asks_for_a_read_key_and_then_shows_only_its_project(keyed) -> None:  # type: ignore[no-untyped-def]
    _, alpha = keyed
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    assert not at.exception
    assert [t.label for t in at.text_input] == ["API key (read or admin)"]
    assert not at.metric  # no page ran

    at.text_input[0].input("th_read_000000000000_" + "x" * 43)
    at.button[0].click()
    at.run()
    assert any("not accepted" in e.value for e in at.error)
    assert [t.label for t in at.text_input] == ["API key (read or admin)"]

    at.text_input[0].input(READ_A)
    at.button[0].click()
    at.run()
    assert not at.exception and "API key (read or admin)" not in [t.label for t in at.text_input]
    at.switch_page("views/traces.py")
    at.run()
    assert not at.exception
    shown = {str(v) for frame in at.dataframe for v in frame.value.get("trace_id", [])}
    assert shown and shown <= alpha  # beta's traces never reach this session
