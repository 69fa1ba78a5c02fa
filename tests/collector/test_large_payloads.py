"""Spans whose input, output and one attribute are each ~256 KiB (TRACEHOUSE_MAX_PAYLOAD_BYTES), read
back every way a user does at the 64MB DuckDB default: the trace API, the trace list and its text
search, /api/sql, `tracehouse sql`, `tracehouse export` (Parquet, CSV), an analytics run, and all of
it again after a restart on the same file. Every text is compared with what was sent (length and
hash); the ones sent over the limit come back cut to it and flagged.

The texts are random base64 (barely compressible, like an inline image): with requests of 17 such
spans DuckDB's own checkpoints made row groups of 34, and every scan of the three columns then
asked for more than 64MB (collector/insert_plan.py, HEAVY_SPAN_BYTES).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from collector.serve import CollectorServer
from collector.settings import Settings
from tests.collector.otlp_payloads import make_request, new_span_id, new_trace_id
from tests.conftest import RunningCollector, collector_settings

ROOT = Path(__file__).resolve().parents[2]
LIMIT = Settings().max_payload_bytes  # 256 KiB
NEAR, OVER = LIMIT - 64, LIMIT + 20_000
TRACES, SPANS_PER_TRACE, PER_REQUEST = 2, 68, 17  # 17 spans ~ 13.5 MB: one request under 16 MiB
KEPT = "needle-kept-7f3a"  # inside a stored input (base64 has no '-')
CUT = "needle-cut-91bd"  # past the limit in an input sent over it: cut away


def _text(size: int) -> str:
    return base64.b64encode(os.urandom(size * 3 // 4 + 3)).decode()[:size]


def _digest(text: str | None) -> tuple[int, str]:
    data = (text or "").encode()
    return len(data), hashlib.sha256(data).hexdigest()


@dataclass
class Sent:
    """What went out, as each span should come back."""

    traces: list[str] = field(default_factory=list)
    spans: dict[str, dict[str, Any]] = field(default_factory=dict)  # span id -> expected values

    def check(self, span_id: str, input_text: str | None, output: str | None, context: str | None,
              truncated: bool) -> None:  # fmt: skip
        want = self.spans[span_id]
        assert (_digest(input_text), _digest(output), _digest(context), truncated) == (
            want["input"], want["output"], want["context"], want["truncated"]
        ), span_id


def _span(trace: bytes, span_id: bytes, parent: bytes, start_ns: int, texts: dict[str, str]) -> Span:
    attributes: dict[str, Any] = {
        "openinference.span.kind": "LLM",
        "llm.model_name": "gpt-4o-mini",
        "llm.token_count.prompt": 60_000,
        "llm.token_count.completion": 60_000,
        "input.value": texts["input"],
        "output.value": texts["output"],
        "app.context": texts["context"],
    }
    return Span(
        trace_id=trace,
        span_id=span_id,
        parent_span_id=parent,
        name="llm",
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=start_ns,
        end_time_unix_nano=start_ns + 2_000_000,
        attributes=[
            KeyValue(key=k, value=AnyValue(int_value=v) if isinstance(v, int) else AnyValue(string_value=v))
            for k, v in attributes.items()
        ],
    )


def _send(url: str, sent: Sent) -> None:
    start = time.time_ns() - 600 * 10**9
    for t in range(TRACES):
        trace = new_trace_id()
        sent.traces.append(trace.hex())
        ids = [new_span_id() for _ in range(SPANS_PER_TRACE)]
        spans = []
        for i, span_id in enumerate(ids):
            over = i % 5 == 0
            texts = {k: _text(OVER if over else NEAR) for k in ("input", "output", "context")}
            if t == 0 and i == 7:
                texts["input"] = texts["input"][:200_000] + KEPT + texts["input"][200_000 + len(KEPT):]
            if t == 0 and i == 10:
                texts["input"] = texts["input"][:270_000] + CUT + texts["input"][270_000 + len(CUT):]
            sent.spans[span_id.hex()] = {
                "trace": trace.hex(),
                "truncated": over,
                **{k: _digest(v[:LIMIT]) for k, v in texts.items()},  # ASCII: bytes = characters
            }
            spans.append(_span(trace, span_id, b"" if i == 0 else ids[0], start + (t * 1000 + i) * 1_000_000, texts))
        for k in range(0, SPANS_PER_TRACE, PER_REQUEST):
            body = make_request(spans[k : k + PER_REQUEST], service="big-prompts").SerializeToString()
            response = httpx.post(f"{url}/v1/traces", content=body, timeout=120,
                                  headers={"content-type": "application/x-protobuf"})  # fmt: skip
            assert response.status_code == 200, response.text[:300]
            assert b"rejected" not in response.content


@dataclass
class Big:
    db: Path
    sent: Sent
    live: RunningCollector
    current: RunningCollector

    def restart(self) -> RunningCollector:
        if self.current is self.live:
            self.live.stop()
            settings = collector_settings(self.db, analytics_interval_s=0)
            self.current = RunningCollector(CollectorServer(settings).start(), self.db)
        return self.current


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Big]:
    db = tmp_path_factory.mktemp("big") / "tracehouse.duckdb"
    settings = collector_settings(db, analytics_interval_s=0)
    assert settings.duckdb_memory_limit == "64MB" and settings.max_payload_bytes == 256 * 1024
    live = RunningCollector(CollectorServer(settings).start(), db)
    sent = Sent()
    _send(live.http_url, sent)
    state = Big(db, sent, live, live)
    yield state
    state.current.stop()
    live.stop()


def _check_trace_api(url: str, sent: Sent) -> None:
    for trace in sent.traces:
        response = httpx.get(f"{url}/api/traces/{trace}", timeout=120)
        assert response.status_code == 200, response.text[:300]
        spans = response.json()["spans"]
        assert len(spans) == SPANS_PER_TRACE
        for span in spans:
            attributes = span["attributes"]
            sent.check(span["span_id"], span["input"], span["output"], attributes["app.context"],
                       span["payload_truncated"])  # fmt: skip
            # input.value / output.value come back as sent (restored from the columns)
            assert attributes["input.value"] == span["input"] and attributes["output.value"] == span["output"]


def _check_list_and_search(url: str, sent: Sent) -> None:
    listed = httpx.get(f"{url}/api/traces", params={"limit": 10}, timeout=60).json()
    assert listed["total"] == TRACES
    assert {t["trace_id"]: t["span_count"] for t in listed["traces"]} == {t: SPANS_PER_TRACE for t in sent.traces}
    found = httpx.get(f"{url}/api/traces", params={"q": KEPT}, timeout=60).json()
    assert [t["trace_id"] for t in found["traces"]] == [sent.traces[0]]
    assert httpx.get(f"{url}/api/traces", params={"q": CUT}, timeout=60).json()["total"] == 0


def _sql(url: str, sql: str) -> dict[str, Any]:
    response = httpx.post(f"{url}/api/sql", json={"sql": sql}, timeout=120)
    assert response.status_code == 200, response.text[:300]
    return response.json()


def _check_sql_api(url: str, sent: Sent) -> None:
    # Every span's three texts, hashed in DuckDB: a full scan of all three columns at once.
    result = _sql(url, "SELECT span_id, input, output, attributes->>'$.\"app.context\"', payload_truncated FROM spans")
    # ... cut at TRACEHOUSE_SQL_MAX_BYTES (16 MB, ~21 spans), never a failure
    assert result["truncated"] is True and 10 < len(result["rows"]) < 25
    for span_id, input_text, output, context, truncated in result["rows"]:
        sent.check(span_id, input_text, output, context, truncated)
    hashed = _sql(url, "SELECT span_id, sha256(input), sha256(output), sha256(attributes->>'$.\"app.context\"'), "
                       "strlen(input), strlen(output), strlen(attributes->>'$.\"app.context\"'), payload_truncated "
                       "FROM spans")  # fmt: skip
    assert not hashed["truncated"] and len(hashed["rows"]) == len(sent.spans)
    for span_id, h_in, h_out, h_ctx, n_in, n_out, n_ctx, truncated in hashed["rows"]:
        want = sent.spans[span_id]
        assert ((n_in, h_in), (n_out, h_out), (n_ctx, h_ctx), truncated) == (
            want["input"], want["output"], want["context"], want["truncated"]
        )
    plain = _sql(url, "SELECT input, output, attributes, payload_truncated FROM spans")
    assert plain["truncated"] is True and plain["rows"]
    expected = {(w["input"], w["output"], w["context"], w["truncated"]) for w in sent.spans.values()}
    for input_text, output, attributes, truncated in plain["rows"]:
        context = json.loads(attributes)["app.context"]
        assert (_digest(input_text), _digest(output), _digest(context), truncated) in expected
    star = _sql(url, "SELECT * FROM spans")
    assert star["truncated"] is True and star["rows"]
    names = star["columns"]
    for row in star["rows"]:
        span = dict(zip(names, row))
        context = json.loads(span["attributes"])["app.context"]
        sent.check(span["span_id"], span["input"], span["output"], context, span["payload_truncated"])


def tracehouse(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TRACEHOUSE_API_URL": url, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "collector.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip


def _check_cli(url: str, sent: Sent, out: Path) -> None:
    ids = list(sent.spans)[:4]
    listed = ", ".join(f"'{i}'" for i in ids)
    query = f"SELECT span_id, input, output, attributes, payload_truncated FROM spans WHERE span_id IN ({listed})"
    result = tracehouse(url, "sql", "--format", "json", query)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["rows"]
    assert sorted(r[0] for r in rows) == sorted(ids)
    for span_id, input_text, output, attributes, truncated in rows:
        attributes = json.loads(attributes) if isinstance(attributes, str) else attributes
        sent.check(span_id, input_text, output, attributes["app.context"], truncated)
    for fmt in ("parquet", "csv"):
        path = out / f"spans.{fmt}"
        result = tracehouse(url, "export", "--format", fmt, "--out", str(path))
        assert result.returncode == 0, result.stderr
        assert f"wrote {len(sent.spans)} spans" in result.stdout
        if fmt == "parquet":
            exported = pq.read_table(path).to_pylist()
        else:
            with path.open(newline="", encoding="utf-8") as f:
                csv.field_size_limit(sys.maxsize)
                exported = list(csv.DictReader(io.StringIO(f.read())))
        starts = [r["start_time"] for r in exported]
        assert len(exported) == len(sent.spans) and starts == sorted(starts)
        for r in exported:
            truncated = r["payload_truncated"] if fmt == "parquet" else r["payload_truncated"] == "true"
            sent.check(r["span_id"], r["input"], r["output"], json.loads(r["attributes"])["app.context"], truncated)
        path.unlink()


def test_large_payloads_read_back_from_the_live_collector(big: Big, tmp_path: Path) -> None:
    url = big.live.http_url
    _check_trace_api(url, big.sent)
    _check_list_and_search(url, big.sent)
    _check_sql_api(url, big.sent)
    _check_cli(url, big.sent, tmp_path)
    assert big.live.server.analytics is not None
    report = big.live.server.analytics.run_now()
    assert report.spans == report.llm_spans == len(big.sent.spans) and report.traces == TRACES
    priced = big.live.sql("SELECT count(*) FROM spans WHERE cost_usd > 0")[0][0]
    assert priced == len(big.sent.spans)


def test_large_payloads_read_back_after_a_restart(big: Big, tmp_path: Path) -> None:
    """The same reads from the checkpointed file, by a new collector."""
    url = big.restart().http_url
    assert big.current.sql("SELECT count(*) FROM spans")[0][0] == len(big.sent.spans)
    _check_trace_api(url, big.sent)
    _check_list_and_search(url, big.sent)
    _check_sql_api(url, big.sent)
    _check_cli(url, big.sent, tmp_path)
