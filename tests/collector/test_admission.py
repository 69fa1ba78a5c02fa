"""The request byte budget (collector.admission), over gRPC and HTTP: requests that do not fit
wait briefly, then are refused as busy; nothing else is lost. HTTP takes its room before the
body is read."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
import httpx
import pytest
from google.rpc import status_pb2
from google.rpc.error_details_pb2 import RetryInfo
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

from collector.admission import BudgetExhausted, RequestBudget
from tests.collector.otlp_payloads import spans_request
from tests.conftest import RunningCollector

LIMIT = 64 * 1024  # max_request_bytes in these tests: the budget is 4 x LIMIT


def _big_request(size: int) -> ExportTraceServiceRequest:
    request = spans_request(1)
    request.resource_spans[0].scope_spans[0].spans[0].name = "x" * size
    return request


def _run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_one_request_always_gets_in_however_large() -> None:
    async def scenario() -> int:
        budget = RequestBudget(limit=100, wait_s=0.05)
        with await budget.take(1_000) as room:
            return room.size

    assert _run(scenario()) == 1_000


def test_a_request_waits_for_room_and_gets_in_when_it_frees() -> None:
    async def scenario() -> list[str]:
        budget = RequestBudget(limit=100, wait_s=5.0)
        order: list[str] = []

        async def first() -> None:
            with await budget.take(80):
                await asyncio.sleep(0.05)
                order.append("first done")

        async def second() -> None:
            await asyncio.sleep(0.01)
            with await budget.take(80):
                order.append("second in")

        await asyncio.gather(first(), second())
        assert budget.used == 0
        return order

    assert _run(scenario()) == ["first done", "second in"]


def test_shrinking_a_reservation_lets_a_waiting_request_in() -> None:
    async def scenario() -> float:
        budget = RequestBudget(limit=100, wait_s=5.0)
        held = asyncio.Event()
        done = asyncio.Event()

        async def reader() -> None:
            with await budget.take(100) as room:  # the most it may be, before reading
                room.shrink_to(10)  # what it turned out to be
                held.set()
                await done.wait()

        task = asyncio.create_task(reader())
        await held.wait()
        loop = asyncio.get_running_loop()
        started = loop.time()
        with await budget.take(90):
            waited = loop.time() - started
        done.set()
        await task
        assert budget.used == 0
        return waited

    assert _run(scenario()) < 1.0


def test_no_room_within_the_wait_is_busy_and_gives_nothing_away() -> None:
    async def scenario() -> str:
        budget = RequestBudget(limit=100, wait_s=0.05)
        with await budget.take(60):
            with pytest.raises(BudgetExhausted) as excinfo:
                with await budget.take(60):
                    pass
            assert budget.used == 60
        assert budget.used == 0
        return str(excinfo.value)

    assert "busy" in _run(scenario())


def _fill_budget(collector: RunningCollector, send, count: int) -> tuple[threading.Event, list]:  # type: ignore[no-untyped-def]
    """Block the writer and admit ``count`` requests of ~LIMIT / 2 that wait for their commit."""
    writer = collector.server.writer
    release = threading.Event()
    blocked = writer.execute(lambda con: release.wait(30))
    pool = ThreadPoolExecutor(count)
    admitted = [pool.submit(send, _big_request(LIMIT // 2)) for _ in range(count)]
    waited = 0.0
    while writer.queue_depth < count:
        assert waited < 20, f"only {writer.queue_depth} of {count} requests were admitted"
        threading.Event().wait(0.01)
        waited += 0.01
    return release, [blocked, pool, *admitted]


def test_grpc_call_beyond_the_budget_waits_then_is_refused_as_busy(make_collector) -> None:  # type: ignore[no-untyped-def]
    collector = make_collector(max_request_bytes=LIMIT)
    pipeline = collector.server.pipeline
    with grpc.insecure_channel(collector.grpc_endpoint) as channel:
        stub = TraceServiceStub(channel)

        def send(request: ExportTraceServiceRequest) -> object:
            return stub.Export(request, timeout=30)

        # 6 waiting bodies of ~32.8 KB hold ~197 KB of the 256 KB budget; a gRPC call takes room
        # for the largest request (LIMIT) before its message is read, and that does not fit.
        release, (blocked, pool, *admitted) = _fill_budget(collector, send, 6)
        try:
            held = pipeline.inflight_bytes
            with pytest.raises(grpc.RpcError) as excinfo:
                send(_big_request(LIMIT // 2))
            assert excinfo.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "busy" in excinfo.value.details()
            trailer = dict(excinfo.value.trailing_metadata())["google.rpc.retryinfo-bin"]
            assert RetryInfo.FromString(trailer).retry_delay.seconds == 1
            assert pipeline.inflight_bytes == held  # the refused call took nothing
            release.set()
            assert all(f.result(30).partial_success.rejected_spans == 0 for f in admitted)
        finally:
            release.set()
            blocked.result(30)
            pool.shutdown()
        assert pipeline.inflight_bytes == 0
        send(spans_request(2))  # still serving
    assert collector.sql("SELECT count(*) FROM spans") == [(8,)]


def test_http_request_waits_for_room_then_is_stored(make_collector) -> None:  # type: ignore[no-untyped-def]
    """A request that finds the budget full is held, not refused, when room frees within the wait."""
    collector = make_collector(max_request_bytes=LIMIT)
    url = f"{collector.http_url}/v1/traces"
    headers = {"Content-Type": "application/x-protobuf"}

    def send(request: ExportTraceServiceRequest) -> httpx.Response:
        return httpx.post(url, content=request.SerializeToString(), headers=headers, timeout=30)

    release, (blocked, pool, *admitted) = _fill_budget(collector, send, 7)
    try:
        with ThreadPoolExecutor(1) as one:
            # HTTP reserves the declared Content-Length: 7 x ~32.8 KB held, ~32.8 KB more does not fit.
            late = one.submit(send, _big_request(LIMIT // 2))
            threading.Event().wait(0.1)
            assert not late.done()
            release.set()  # the 7 commit and give their room back within the wait
            assert late.result(30).status_code == 200
        assert [f.result(30).status_code for f in admitted] == [200] * 7
    finally:
        release.set()
        blocked.result(30)
        pool.shutdown()
    assert collector.server.pipeline.inflight_bytes == 0
    assert collector.sql("SELECT count(*) FROM spans") == [(8,)]


def test_http_body_declared_over_the_limit_is_refused_unread(make_collector) -> None:  # type: ignore[no-untyped-def]
    collector = make_collector(max_request_bytes=LIMIT)
    response = httpx.post(
        f"{collector.http_url}/v1/traces",
        content=_big_request(LIMIT).SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
        timeout=30,
    )
    assert response.status_code == 413
    assert "over the limit" in status_pb2.Status.FromString(response.content).message
    assert collector.server.pipeline.inflight_bytes == 0
