"""OTLP/gRPC receiver: ``TraceService/Export`` on grpc.aio, calling the shared pipeline.

The method is registered with a pass-through deserializer so that the pipeline parses the
bytes itself: a malformed message then gets INVALID_ARGUMENT with a readable reason instead of
gRPC's generic INTERNAL. Requests over ``max_request_bytes`` (after gzip, which gRPC handles
natively) are refused by gRPC itself with RESOURCE_EXHAUSTED.

Export is registered as client-streaming, which a unary call is on the wire (one message, then
the end of the stream): so the handler runs *before* the request message is read and can take
room in the request byte budget first (collector.admission). A unary handler gets the message
already in memory, and gRPC reads as many as there are concurrent calls. For the same reason a
stream's read-ahead is a fixed window (``_STREAM_LOOKAHEAD_BYTES``) instead of gRPC's adaptive
one, which grew to the whole message for every waiting call (12 waiting 16 MB calls: 233 MB
buffered, against 46 MB with the fixed window).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc.error_details_pb2 import RetryInfo
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from collector.auth import Access, AccessDenied, grpc_peer_host
from collector.pipeline import RETRY_AFTER_S, IngestError, Pipeline
from collector.settings import Settings

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
# OTLP exporters read the back-off of a retryable error from this trailer.
# Bytes gRPC reads ahead on a stream not yet admitted; 1 MB per round trip keeps a remote
# exporter's upload fast (20 MB/s at 50 ms) while a waiting call holds little.
_STREAM_LOOKAHEAD_BYTES = 1024 * 1024
_RETRY_TRAILER = (
    (
        "google.rpc.retryinfo-bin",
        RetryInfo(retry_delay=Duration(seconds=RETRY_AFTER_S)).SerializeToString(),
    ),
)


class TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    """Export: store the spans, answer once they are committed."""

    def __init__(self, pipeline: Pipeline, max_request_bytes: int, access: Access | None = None) -> None:
        self._pipeline = pipeline
        self._max_request_bytes = max_request_bytes
        self._access = access

    async def Export(
        self, messages: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> ExportTraceServiceResponse:
        project = None
        if self._access is not None:
            metadata = {key.lower(): value for key, value in context.invocation_metadata() or ()}
            try:
                principal = self._access.principal("ingest", metadata.get, grpc_peer_host(context.peer()))
            except AccessDenied as exc:
                code = grpc.StatusCode.UNAUTHENTICATED if exc.status == "unauthenticated" else grpc.StatusCode.PERMISSION_DENIED
                await context.abort(code, str(exc))
            project = principal.project
        try:
            # The message's size is unknown until it is read: room for the largest one first.
            async with self._pipeline.admit(self._max_request_bytes) as room:
                request = await anext(aiter(messages), None)
                if request is None:
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "no ExportTraceServiceRequest sent")
                room.shrink_to(len(request))
                result = await self._pipeline.ingest(request, "protobuf", project)
        except IngestError as exc:
            if exc.transient:
                await context.abort(
                    grpc.StatusCode.UNAVAILABLE, str(exc), trailing_metadata=_RETRY_TRAILER
                )
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        response = ExportTraceServiceResponse()
        if result.rejected:
            response.partial_success.rejected_spans = result.rejected
            response.partial_success.error_message = result.error_message or ""
        return response


def create_server(settings: Settings, pipeline: Pipeline, access: Access | None = None) -> tuple[grpc.aio.Server, int]:
    """A grpc.aio server with TraceService bound to settings.host:grpc_port; returns (server, real port)."""
    limit = settings.max_request_bytes
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", 4 * 1024 * 1024),
            ("grpc.http2.bdp_probe", 0),
            ("grpc.http2.lookahead_bytes", _STREAM_LOOKAHEAD_BYTES),
        ]
    )
    handler = grpc.stream_unary_rpc_method_handler(
        TraceService(pipeline, limit, access).Export,
        request_deserializer=None,  # bytes: the pipeline parses (see module docstring)
        response_serializer=ExportTraceServiceResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, {"Export": handler}),)
    )
    port = server.add_insecure_port(f"{settings.host}:{settings.grpc_port}")
    if port == 0:
        raise OSError(f"cannot bind the gRPC port {settings.host}:{settings.grpc_port} (in use?)")
    return server, port
