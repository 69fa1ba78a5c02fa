"""OTLP/gRPC receiver: ``TraceService/Export`` on grpc.aio, calling the shared pipeline.

The method's handler takes the message as bytes (no deserializer) so that the pipeline parses
them itself: a malformed message then gets INVALID_ARGUMENT with a readable reason instead of
gRPC's generic INTERNAL. Requests over ``max_request_bytes`` (after gzip, which gRPC handles
natively) are refused by gRPC itself with RESOURCE_EXHAUSTED.

A call takes its room in the request byte budget (collector.admission) before gRPC reads its
message, as an HTTP request does before its body: room for the largest request allowed, shrunk
to the real size once read. grpc.aio asks gRPC core for a unary call's message only after the
server's interceptors have run, so the room is taken in one (_AdmitBeforeRead). A call that finds
no room within the budget's wait is answered UNAVAILABLE with RetryInfo, its message never read.
A waiting call holds what HTTP/2 flow control let in of its message: the 64 KB stream window, as
BDP probing is off (with it on, gRPC core grew the windows until waiting calls held their whole
message). Measured (bench/RESULTS.md, "Concurrent large gRPC requests"): 48 concurrent 12 MB
calls raised the collector's peak RSS by 1.5-1.7 GB before, by ~0.3 GB now, as 8 calls do; the
ingest load of small requests measured no different. The cost is on slow links: over a 50 ms
round trip a 4 MB export took 360 ms against 150 with BDP probing (bench/grpc_latency.py).

Not used: ``maximum_concurrent_rpcs`` (grpcio answers the calls over it RESOURCE_EXHAUSTED
without RetryInfo, which OTLP exporters other than Python's do not retry: data lost) and
``grpc.max_concurrent_streams`` (per connection: a fleet of agents has many). Export as a client
stream (its handler runs before the message is read) was measured earlier and cost ~25 MB of
peak RSS under the ingest bench.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import NoReturn

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc.error_details_pb2 import RetryInfo
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from collector.admission import Reservation
from collector.auth import Access, AccessDenied, grpc_peer_host
from collector.pipeline import RETRY_AFTER_S, IngestError, Pipeline
from collector.settings import Settings

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
EXPORT = f"/{SERVICE}/Export"
# OTLP exporters read the back-off of a retryable error from this trailer.
_RETRY_TRAILER = (
    (
        "google.rpc.retryinfo-bin",
        RetryInfo(retry_delay=Duration(seconds=RETRY_AFTER_S)).SerializeToString(),
    ),
)


class TraceService:
    """Export: store the spans, answer once they are committed."""

    def __init__(self, pipeline: Pipeline, access: Access | None = None) -> None:
        self._pipeline = pipeline
        self._access = access

    async def Export(
        self, request: bytes, context: grpc.aio.ServicerContext, room: Reservation
    ) -> ExportTraceServiceResponse:
        """``room``: taken for the largest request before the message was read (_AdmitBeforeRead);
        shrunk here to the request's real size."""
        room.shrink_to(len(request))
        project = None
        if self._access is not None:
            metadata = _metadata(context.invocation_metadata())
            try:
                principal = self._access.principal("ingest", metadata.get, grpc_peer_host(context.peer()))
            except AccessDenied as exc:
                await _deny(exc, context)
            project = principal.project
        try:
            result = await self._pipeline.ingest(request, "protobuf", project)
        except IngestError as exc:
            if exc.transient:
                await _abort_retryable(context, str(exc))
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        response = ExportTraceServiceResponse()
        if result.rejected:
            response.partial_success.rejected_spans = result.rejected
            response.partial_success.error_message = result.error_message or ""
        return response


class _AdmitBeforeRead(grpc.aio.ServerInterceptor):
    """Takes an Export call's room in the byte budget before gRPC reads its message.

    grpc.aio awaits the interceptors before it asks gRPC core for a unary call's message, so a call
    waiting here holds no more of its body than the HTTP/2 flow-control window. The room lasts
    until the call's task ends, however it ends (answered, aborted, cancelled by the client).
    Both are grpc.aio's behaviour, not its contract: tests/collector/test_grpc_bodies.py fails if
    an upgrade changes either.
    """

    def __init__(self, service: TraceService, pipeline: Pipeline, most_bytes: int, access: Access | None) -> None:
        self._service = service
        self._pipeline = pipeline
        self._most_bytes = most_bytes
        self._access = access

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        if details.method != EXPORT:
            return await continuation(details)
        if self._access is not None and self._access.keys_configured:
            # A call without a valid key takes no room: refused before its message is read, as an
            # HTTP request is before its body. (Export checks again: a key revoked meanwhile, and
            # without keys the peer's address, which the call details do not carry.)
            try:
                self._access.principal("ingest", _metadata(details.invocation_metadata).get, None)
            except AccessDenied as exc:
                return grpc.stream_unary_rpc_method_handler(functools.partial(_refuse_unread, exc))
        try:
            room = await self._pipeline.hold(self._most_bytes)
        except IngestError as exc:
            return grpc.stream_unary_rpc_method_handler(functools.partial(_refuse, str(exc)))
        task = asyncio.current_task()
        assert task is not None  # the call's own task: it ends once the answer is sent
        task.add_done_callback(lambda _: room.release())
        return grpc.unary_unary_rpc_method_handler(
            functools.partial(self._service.Export, room=room),
            request_deserializer=None,  # bytes: the pipeline parses (see module docstring)
            response_serializer=ExportTraceServiceResponse.SerializeToString,
        )


async def _refuse(message: str, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> None:
    """Busy, as a handler that never reads the message (a streaming one runs before any read)."""
    await _abort_retryable(context, message)


async def _refuse_unread(exc: AccessDenied, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> None:
    """No valid key, as a handler that never reads the message."""
    await _deny(exc, context)


async def _deny(exc: AccessDenied, context: grpc.aio.ServicerContext) -> NoReturn:
    code = grpc.StatusCode.UNAUTHENTICATED if exc.status == "unauthenticated" else grpc.StatusCode.PERMISSION_DENIED
    await context.abort(code, str(exc))


def _metadata(pairs: object) -> dict[str, str | bytes]:
    """A call's metadata by lower-case key (gRPC gives a sequence of pairs, or None)."""
    return {key.lower(): value for key, value in pairs or ()}  # type: ignore[attr-defined]


async def _abort_retryable(context: grpc.aio.ServicerContext, message: str) -> NoReturn:
    await context.abort(grpc.StatusCode.UNAVAILABLE, message, trailing_metadata=_RETRY_TRAILER)


def create_server(settings: Settings, pipeline: Pipeline, access: Access | None = None) -> tuple[grpc.aio.Server, int]:
    """A grpc.aio server with TraceService bound to settings.host:grpc_port; returns (server, real port)."""
    limit = settings.max_request_bytes
    server = grpc.aio.server(
        interceptors=[_AdmitBeforeRead(TraceService(pipeline, access), pipeline, limit, access)],
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", 4 * 1024 * 1024),
            # A call waiting for room holds what flow control let in of its message: the 64 KB
            # HTTP/2 window, where BDP probing would grow it to the whole message (module docstring).
            ("grpc.http2.bdp_probe", 0),
        ],
    )
    port = server.add_insecure_port(f"{settings.host}:{settings.grpc_port}")
    if port == 0:
        raise OSError(f"cannot bind the gRPC port {settings.host}:{settings.grpc_port} (in use?)")
    return server, port
