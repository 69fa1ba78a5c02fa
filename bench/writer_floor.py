"""In-process floor of the ingest path (no network): parse + decode + normalize + writer commit.

Run: ``python -m bench.writer_floor [--spans 200000]``. Prints spans/s for each stage so a
regression shows where it is; the full load test over gRPC lives in bench/ingest.py.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from concurrent.futures import Future

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from collector.decode import decode_request, parse_protobuf
from collector.metrics import IngestMetrics
from collector.normalize import normalize
from collector.pipeline import Pipeline
from collector.settings import Settings
from collector.store import Store
from collector.writer import BatchWriter, rows_to_arrow

SPANS_PER_REQUEST = 500  # 50 traces of 10 spans


def _kv(key: str, value: object) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def make_request(rnd: random.Random) -> bytes:
    spans = []
    now = time.time_ns()
    for _ in range(SPANS_PER_REQUEST // 10):
        trace = os.urandom(16)
        root = os.urandom(8)
        for i in range(10):
            text = "lorem ipsum " * rnd.randint(40, 160)
            attrs = [_kv("gen_ai.operation.name", "chat"), _kv("gen_ai.request.model", "gpt-4o-mini"),
                     _kv("gen_ai.usage.input_tokens", rnd.randint(10, 3000)), _kv("gen_ai.usage.output_tokens", 200),
                     _kv("input.value", text), _kv("output.value", text[:600])]
            spans.append(Span(trace_id=trace, span_id=root if i == 0 else os.urandom(8),
                              parent_span_id=b"" if i == 0 else root, name=f"step {i}",
                              start_time_unix_nano=now + i * 1000, end_time_unix_nano=now + i * 1000 + 5_000_000,
                              attributes=attrs))
    rs = ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])
    rs.resource.attributes.append(_kv("service.name", "bench"))
    return ExportTraceServiceRequest(resource_spans=[rs]).SerializeToString()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spans", type=int, default=200_000)
    args = parser.parse_args()
    rnd = random.Random(7)
    bodies = [make_request(rnd) for _ in range(args.spans // SPANS_PER_REQUEST)]
    total = len(bodies) * SPANS_PER_REQUEST

    t0 = time.perf_counter()
    decoded = [decode_request(parse_protobuf(b)) for b in bodies[:40]]
    t_decode = (time.perf_counter() - t0) / (40 * SPANS_PER_REQUEST)
    t0 = time.perf_counter()
    rows = [normalize(s, max_payload_bytes=256 * 1024) for d in decoded for s in d.spans]
    t_normalize = (time.perf_counter() - t0) / len(rows)
    t0 = time.perf_counter()
    for _ in range(5):
        rows_to_arrow(rows)
    t_arrow = (time.perf_counter() - t0) / (5 * len(rows))
    print(f"per span: decode {t_decode * 1e6:.1f} µs · normalize {t_normalize * 1e6:.1f} µs · "
          f"to Arrow {t_arrow * 1e6:.1f} µs")

    with tempfile.TemporaryDirectory() as folder:
        store = Store(os.path.join(folder, "floor.duckdb"))
        settings = Settings()
        metrics = IngestMetrics()
        writer = BatchWriter(store, settings, observer=metrics.observe_commit)
        pipeline = Pipeline(settings, writer, metrics)
        futures: list[Future[int]] = []
        t0 = time.perf_counter()
        for body in bodies:
            while True:
                try:
                    futures.append(pipeline.submit(body, "protobuf")[0])
                    break
                except Exception:  # queue full: wait for the writer, like a retrying exporter
                    time.sleep(0.005)
        stored = sum(f.result() for f in futures)
        elapsed = time.perf_counter() - t0
        writer.close()
        commit_s = metrics.commit_seconds.collect()[0].samples
        commit_sum = next(s.value for s in commit_s if s.name.endswith("_sum"))
        store.close()
    print(f"pipeline floor: {stored:,} of {total:,} spans committed in {elapsed:.1f} s = {stored / elapsed:,.0f} spans/s "
          f"(writer thread busy committing {commit_sum:.1f} s = {stored / commit_sum:,.0f} spans/s of commit time)")


if __name__ == "__main__":
    main()
