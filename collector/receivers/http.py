"""OTLP/HTTP receiver: ``POST /v1/traces`` with protobuf or JSON bodies, optionally gzip.

Follows the OTLP/HTTP spec: the reply uses the request's content type; errors carry a
google.rpc.Status; 400 is permanent, 503 with Retry-After is retryable. The size limit is
enforced three times: the declared Content-Length, the bytes actually streamed, and the
decompressed size (a small gzip body may inflate without bound).
"""

from __future__ import annotations

import zlib

from fastapi import APIRouter, Request, Response
from starlette.requests import ClientDisconnect
from google.protobuf import json_format
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from collector.pipeline import RETRY_AFTER_S, IngestError, IngestResult, Pipeline

router = APIRouter()

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_FORMATS = {PROTOBUF: "protobuf", JSON: "json"}


class _TooLarge(Exception):
    pass


@router.post("/v1/traces")
async def export_traces(request: Request) -> Response:
    """OTLP/HTTP trace export; acknowledged only once the spans are committed."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fmt = _FORMATS.get(content_type)
    if fmt is None:
        return Response(
            f"unsupported Content-Type {content_type or '(none)'!r}: use {PROTOBUF} or {JSON}\n",
            status_code=415,
            media_type="text/plain",
        )
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", ""):
        return _status(
            415,
            code_pb2.INVALID_ARGUMENT,
            f"unsupported Content-Encoding {encoding!r}: use gzip",
            content_type,
        )
    limit: int = request.app.state.settings.max_request_bytes
    pipeline: Pipeline = request.app.state.pipeline
    declared = _declared_length(request)
    if declared is not None and declared > limit:
        pipeline.count_rejected_request("too_large")
        return _status(413, code_pb2.RESOURCE_EXHAUSTED,
                       f"request body of {declared} bytes is over the limit of {limit} bytes", content_type)  # fmt: skip
    gzip = encoding == "gzip"
    try:
        # Room is taken before the body is read: a gzip body may inflate up to the limit.
        with await pipeline.hold(limit if gzip or declared is None else declared) as room:
            try:
                body = await _read_body(request, limit, gzip=gzip)
            except _TooLarge as exc:
                pipeline.count_rejected_request("too_large")
                return _status(413, code_pb2.RESOURCE_EXHAUSTED, str(exc), content_type)
            except ClientDisconnect:  # the client went away mid-body: no one to answer, nothing to log
                return Response(status_code=400)
            except zlib.error as exc:
                pipeline.count_rejected_request("malformed_request")
                return _status(
                    400, code_pb2.INVALID_ARGUMENT, f"request body is not valid gzip: {exc}", content_type
                )
            room.shrink_to(len(body))
            principal = getattr(request.state, "principal", None)  # set by collector.auth when keys are on
            project = principal.project if principal is not None else None
            result = await pipeline.ingest(body, fmt, project)  # type: ignore[arg-type]
    except IngestError as exc:
        if exc.transient:
            response = _status(503, code_pb2.UNAVAILABLE, str(exc), content_type)
            response.headers["Retry-After"] = str(RETRY_AFTER_S)
            return response
        return _status(400, code_pb2.INVALID_ARGUMENT, str(exc), content_type)
    return _success(result, content_type)


def _declared_length(request: Request) -> int | None:
    declared = request.headers.get("content-length", "")
    return int(declared) if declared.isdigit() else None


async def _read_body(request: Request, limit: int, *, gzip: bool) -> bytes:
    chunks: list[bytes] = []
    size = 0
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzip else None
    inflated = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge(f"request body is over the limit of {limit} bytes")
        if inflater is not None:
            # max_length bounds the memory one chunk can inflate to (gzip bomb).
            chunk = inflater.decompress(chunk, limit + 1 - inflated)
            if inflater.unconsumed_tail:
                raise _TooLarge(f"decompressed request body is over the limit of {limit} bytes")
            inflated += len(chunk)
            if inflated > limit:
                raise _TooLarge(f"decompressed request body is over the limit of {limit} bytes")
        chunks.append(chunk)
    if inflater is not None:
        chunks.append(inflater.flush())
        if not inflater.eof:
            raise zlib.error("truncated gzip stream")
    return b"".join(chunks)


def _success(result: IngestResult, content_type: str) -> Response:
    message = ExportTraceServiceResponse()
    if result.rejected:
        message.partial_success.rejected_spans = result.rejected
        message.partial_success.error_message = result.error_message or ""
    return _reply(200, message, content_type)


def _status(http_code: int, grpc_code: int, text: str, content_type: str) -> Response:
    return _reply(http_code, status_pb2.Status(code=grpc_code, message=text), content_type)


def _reply(http_code: int, message: object, content_type: str) -> Response:
    if content_type == JSON:
        body = json_format.MessageToJson(message, indent=None).encode()  # type: ignore[arg-type]
        return Response(body, status_code=http_code, media_type=JSON)
    return Response(message.SerializeToString(), status_code=http_code, media_type=PROTOBUF)  # type: ignore[attr-defined]
