"""Agent attribution end to end on spans captured from the real instrumentations.

Each captured trace is sent one span per request, in export order (children end, and so arrive,
before their agent span), so attribution has to reach back into earlier commits.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from collector.decode import decode_request, parse_json
from collector.normalize import normalize
from tests.conftest import RunningCollector

# Handoff traces: two agents, so "nearest" matters; one per instrumentation.
FIXTURES = sorted(
    (Path(__file__).resolve().parent.parent / "fixtures" / "otlp").glob("*/handoff.json")
)


def one_span_requests(document: dict[str, Any]) -> list[bytes]:
    requests = []
    for rs in document["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for span in ss["spans"]:
                single = copy.deepcopy(rs)
                single["scopeSpans"] = [{**ss, "spans": [span]}]
                requests.append(json.dumps({"resourceSpans": [single]}).encode())
    return requests


def expected_agents(body: bytes) -> dict[str, str | None]:
    """span_id → nearest agent ancestor's name, computed from the normalized rows directly."""
    rows = {
        r.span_id: r
        for r in (
            normalize(s, max_payload_bytes=1 << 20) for s in decode_request(parse_json(body)).spans
        )
    }

    def agent_of(span_id: str | None, depth: int = 0) -> str | None:
        row = rows.get(span_id) if span_id else None
        if row is None or depth > 64:
            return None
        if row.agent_name is not None:
            return row.agent_name
        return agent_of(row.parent_span_id, depth + 1)

    return {span_id: agent_of(span_id) for span_id in rows}


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f"{p.parent.name}/{p.stem}" for p in FIXTURES])
def test_spans_get_their_nearest_agent_when_sent_one_by_one(
    collector: RunningCollector, fixture: Path
) -> None:
    body = fixture.read_bytes()
    expected = expected_agents(body)
    with httpx.Client(base_url=collector.http_url, timeout=30) as client:
        for request in one_span_requests(json.loads(body)):
            response = client.post(
                "/v1/traces", content=request, headers={"Content-Type": "application/json"}
            )
            assert response.status_code == 200, response.text
    stored = dict(collector.sql("SELECT span_id, agent_name FROM spans"))
    assert stored == expected
    assert len({name for name in expected.values() if name}) >= 2  # both agents are attributed
