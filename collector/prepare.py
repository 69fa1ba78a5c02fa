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

from collector.arrow_rows import values_to_arrow
from collector.decode import Rejected, decode_request, parse_json, parse_protobuf
from collector.model import RowValues
from collector.normalize import normalize_values
from collector.redaction import cached_redactor

log = logging.getLogger(__name__)

Format = Literal["protobuf", "json"]


def prepare_request(
    body: bytes, fmt: Format, max_payload_bytes: int, redaction_file: str = "", project: str | None = None
) -> tuple[pa.Table, list[Rejected]]:
    """Parse, decode, redact, normalize and convert one request. Raises DecodeFailed for an unreadable one.

    ``redaction_file`` names the redaction rules (collector.redaction; "" = none); ``project``
    (the ingest key's) replaces whatever project the spans name themselves.
    """
    request = parse_protobuf(body) if fmt == "protobuf" else parse_json(body)
    decoded = decode_request(request)
    rejected = decoded.rejected
    rows: list[RowValues] = []
    redactor = cached_redactor(redaction_file) if redaction_file else None
    for index, span in enumerate(decoded.spans):
        try:
            if redactor is not None:  # before normalize: derived columns see redacted values
                redactor.span(span)
            rows.append(normalize_values(span, max_payload_bytes=max_payload_bytes))
        except Exception as exc:  # noqa: BLE001 - one bad span must not lose the request
            log.warning("span %r could not be normalized: %s", span.name, exc)
            rejected.append(Rejected(index, f"span {span.name!r}: could not be normalized: {exc}"))
    return values_to_arrow(rows, project), rejected
