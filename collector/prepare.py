"""One OTLP request body → an Arrow table of span rows + the spans refused one by one.

Pure CPU work with no state and no database: the pipeline runs it in worker processes
(``TRACEHOUSE_INGEST_WORKERS``, collector.ingest_pool) so parse, decode, normalize and the
Arrow conversion (~40 µs of Python per span) do not hold the collector's GIL, or in a thread of
the collector when the worker count is 0.
"""

from __future__ import annotations

import logging
from typing import Literal

import pyarrow as pa

from collector.arrow_rows import rows_to_arrow
from collector.decode import Rejected, decode_request, parse_json, parse_protobuf
from collector.model import SpanRow
from collector.normalize import normalize

log = logging.getLogger(__name__)

Format = Literal["protobuf", "json"]


def prepare_request(body: bytes, fmt: Format, max_payload_bytes: int) -> tuple[pa.Table, list[Rejected]]:
    """Parse, decode, normalize and convert one request. Raises DecodeFailed for an unreadable one."""
    request = parse_protobuf(body) if fmt == "protobuf" else parse_json(body)
    decoded = decode_request(request)
    rejected = decoded.rejected
    rows: list[SpanRow] = []
    for index, span in enumerate(decoded.spans):
        try:
            rows.append(normalize(span, max_payload_bytes=max_payload_bytes))
        except Exception as exc:  # noqa: BLE001 - one bad span must not lose the request
            log.warning("span %r could not be normalized: %s", span.name, exc)
            rejected.append(Rejected(index, f"span {span.name!r}: could not be normalized: {exc}"))
    return rows_to_arrow(rows), rejected
