"""The collector process never imports pandas or scikit-learn, not even once its analytics ran:
pandas would cost the idle collector ~50 MB and scikit-learn ~150 MB more for good (issue 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from bench.synth import Synth, generate
from collector.store import Store
from tests.conftest import REPO_ROOT, CollectorProcess

TRAFFIC = Synth(traces=1500, minutes=30, p_latency=0.02, p_cost=0.02, p_loop=0.02, salt=21)
HEAVY = ("pandas", "sklearn", "scipy")

# A fresh interpreter set up as `tracehouse collector` sets up its process; it ingests one OTLP
# request, runs the analytics once, and prints which heavy packages it imported.
_CHILD = """
import json, sys
from datetime import datetime
import httpx
from collector.runtime import keep_pandas_out
from collector.serve import CollectorServer
from collector.settings import Settings

keep_pandas_out()
settings = Settings(host="127.0.0.1", grpc_port=0, http_port=0, db=sys.argv[1], analytics_interval_s=0,
                    ingest_workers=0)
server = CollectorServer(settings).start()
try:
    span = {"traceId": "ab" * 16, "spanId": "cd" * 8, "name": "chat", "startTimeUnixNano": "1767571200000000000",
            "endTimeUnixNano": "1767571201000000000"}
    body = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
    httpx.post(server.http_url + "/v1/traces", json=body).raise_for_status()
    report = server.analytics.run_now(now=datetime.fromisoformat(sys.argv[2]))
    detectors = dict(server.store.cursor().execute(
        "SELECT detector, count(*) FROM anomalies GROUP BY ALL").fetchall())
finally:
    server.stop()
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"pandas", "sklearn", "scipy"})
print(json.dumps({"heavy": heavy, "spans": report.spans, "detectors": detectors}))
"""


def _traffic(tmp_path: Path) -> Path:
    db = tmp_path / "traffic.duckdb"
    store = Store(db)
    generate(store.write_connection, TRAFFIC)
    store.close()
    return db


def test_the_collector_with_its_analytics_imports_no_pandas_or_sklearn(tmp_path: Path) -> None:
    db = _traffic(tmp_path)
    now = (TRAFFIC.end + timedelta(minutes=5)).isoformat()
    done = subprocess.run([sys.executable, "-c", _CHILD, str(db), now], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["spans"] > TRAFFIC.traces
    assert result["detectors"].get("isolation_forest", 0) > 0  # the forests ran (in their child)
    assert result["heavy"] == [], result["heavy"]


def _mapped(pid: int, names: tuple[str, ...] = HEAVY) -> set[str]:
    """Which of ``names`` have a file mapped into the process (their compiled extensions)."""
    text = Path(f"/proc/{pid}/maps").read_text()
    return {name for name in names if f"/{name}/" in text}


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc")
def test_a_running_collector_and_its_workers_map_no_pandas_or_sklearn(
    tmp_path: Path, collector_process: Callable[..., CollectorProcess]
) -> None:
    child = collector_process(_traffic(tmp_path), ingest_workers="1", analytics_interval_s="0")
    provider = TracerProvider(resource=Resource.create({"service.name": "memory"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=child.grpc_endpoint, insecure=True)))
    tracer = provider.get_tracer("memory")
    for i in range(5):
        with tracer.start_as_current_span("invoke_agent planner", attributes={"gen_ai.agent.name": "planner"}):
            tracer.start_span("chat", attributes={"gen_ai.request.model": "gpt-4.1", "gen_ai.usage.input_tokens": i}).end()
    provider.shutdown()
    run = httpx.post(f"{child.http_url}/api/analytics/run", timeout=300).json()
    assert run["spans"] > TRAFFIC.traces and run["new_anomalies"].get("cost_outlier", 0) > 0, run
    workers = _children(child.pid)
    assert workers, "no ingest worker found"
    assert _mapped(child.pid) == set(), _mapped(child.pid)
    for pid in workers:  # an ingest worker has no use for numpy either (collector.ingest_pool)
        assert _mapped(pid, (*HEAVY, "numpy")) == set(), (pid, _mapped(pid, (*HEAVY, "numpy")))
