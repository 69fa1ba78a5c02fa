"""OTLP/gRPC receiver: ``TraceService/Export`` on grpc.aio, calling the shared pipeline.

The method is registered with a pass-through deserializer so that the pipeline parses the
bytes itself: a malformed message then gets INVALID_ARGUMENT with a readable reason instead of
gRPC's generic INTERNAL. Requests over ``max_request_bytes`` (after gzip, which gRPC handles
natively) are refused by gRPC itself with RESOURCE_EXHAUSTED.

gRPC reads a call's message before the handler runs, so a gRPC request takes its room in the
request byte budget (collector.admission) once read, by its real size. Registering Export as
client-streaming, so the handler could take room before reading, was measured and not kept: it
cost ~25 MB of peak RSS under the ingest bench (bench/RESULTS.md), against the 300 MB target.
"""

from __future__ import annotations

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
_RETRY_TRAILER = (
    (
        "google.rpc.retryinfo-bin",
        RetryInfo(retry_delay=Duration(seconds=RETRY_AFTER_S)).SerializeToString(),
    ),
)


class TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    """Export: store the spans, answer once they are committed."""

    def __init__(self, pipeline: Pipeline, access: Access | None = None) -> None:
        self._pipeline = pipeline
        self._access = access

    async def Export(
        self, request: bytes, context: grpc.aio.ServicerContext
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
            async with self._pipeline.admit(len(request)):
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
        ]
    )
    handler = grpc.unary_unary_rpc_method_handler(
        TraceService(pipeline, access).Export,
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
