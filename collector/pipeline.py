"""The one ingest path both receivers call: decode → normalize → writer, then wait for commit.

Errors are classified here, once (STYLE.md convention 8): a request that cannot be read is
permanent (INVALID_ARGUMENT / 400, the exporter must not retry); a full queue or a failed
commit is transient (UNAVAILABLE / 503, the exporter retries). Spans refused one by one are
counted in the result and reported through OTLP ``partial_success``.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from collector.admission import BudgetExhausted, RequestBudget, Reservation
from collector.decode import DecodeFailed, Rejected
from collector.ingest_pool import create_pool
from collector.metrics import IngestMetrics
from collector.prepare import Format, prepare_request
from collector.settings import Settings
from collector.writer import BatchWriter, QueueFull, WriterClosed

_MAX_REASONS = 3  # reasons quoted in partial_success.error_message
DECODE_THREADS = 2
INFLIGHT_REQUESTS_OF_MAX_SIZE = 4  # request bytes in progress: 4 x TRACEHOUSE_MAX_REQUEST_BYTES
ADMISSION_WAIT_S = 0.5  # how long a request waits for room in that budget before "busy"
RETRY_AFTER_S = 1  # told to clients on a transient error (HTTP Retry-After, gRPC RetryInfo)


class IngestError(Exception):
    """A request that was not (or not wholly) stored; ``transient`` tells the client to retry."""

    transient = False
    reason = "malformed_request"


class PermanentIngestError(IngestError):
    """The request itself is bad; resending it will not help."""


class TransientIngestError(IngestError):
    """The collector cannot take the request now; retry later."""

    transient = True

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What the exporter is told: everything accepted is committed."""

    accepted: int  # spans committed (newly stored or already stored)
    rejected: int  # spans refused one by one
    error_message: str | None  # for partial_success; None when nothing was rejected
    stored: int = 0  # of the accepted, how many were new


class Pipeline:
    """decode → normalize → BatchWriter for one collector."""

    def __init__(self, settings: Settings, writer: BatchWriter, metrics: IngestMetrics) -> None:
        self._max_payload = settings.max_payload_bytes
        # Redaction runs where spans are normalized (a worker loads the rules once, by path).
        self._redaction_file = settings.redaction_file
        self._writer = writer
        self._metrics = metrics
        # Decoding is pure Python under the GIL: more threads than this only contend for it
        # (asyncio's default pool has 6 on 2 cores), and each holds a decoded request in memory.
        self._executor = ThreadPoolExecutor(max_workers=DECODE_THREADS, thread_name_prefix="tracehouse-decode")
        # With workers, that Python runs in other processes and the GIL here is left to the
        # receivers, the writer and DuckDB (collector.ingest_pool).
        self._pool = create_pool(settings.ingest_workers) if settings.ingest_workers else None
        # The span queue bounds rows; this bounds the request bodies being read, decoded or awaiting
        # commit, whose decoded form is several times their size (collector.admission).
        self.budget = RequestBudget(INFLIGHT_REQUESTS_OF_MAX_SIZE * settings.max_request_bytes, ADMISSION_WAIT_S)

    @property
    def inflight_bytes(self) -> int:
        return self.budget.used

    async def hold(self, most_bytes: int) -> Reservation:
        """Room for a request of at most ``most_bytes``, taken before its body is read and shrunk to
        the real size once read; released by the caller (``with``, or when a gRPC call ends).
        Raises TransientIngestError when busy."""
        try:
            return await self.budget.take(most_bytes)
        except BudgetExhausted as exc:
            self._metrics.rejected.labels("busy").inc()
            raise TransientIngestError(str(exc), "busy") from exc

    async def ingest(self, body: bytes, fmt: Format, project: str | None = None) -> IngestResult:
        """Store one OTLP request admitted by :meth:`hold`; returns after the commit. Raises
        IngestError.

        ``project`` (the ingest key's) overrides whatever project the spans name themselves.
        """
        # Decoding and normalizing a large request takes tens of milliseconds of Python: off the
        # event loop, so /api and /healthz stay responsive while ingest is busy.
        loop = asyncio.get_running_loop()
        if self._pool is None:
            future, accepted, rejected = await loop.run_in_executor(
                self._executor, self.submit, body, fmt, project
            )
        else:
            try:
                table, rejected = await loop.run_in_executor(
                    self._pool, prepare_request, body, fmt, self._max_payload, self._redaction_file, project
                )
            except DecodeFailed as exc:
                self._metrics.rejected.labels("malformed_request").inc()
                raise PermanentIngestError(str(exc)) from exc
            future, accepted = self._queue(table, rejected)
        try:
            stored = await asyncio.wrap_future(future)
        except Exception as exc:  # the batch failed to commit: nothing of it is acknowledged
            self._metrics.rejected.labels("write_failed").inc(accepted)
            raise TransientIngestError(str(exc), "write_failed") from exc
        return IngestResult(accepted, len(rejected), _message(rejected), stored)

    def close(self) -> None:
        """Stop the decode threads and workers once the receivers have stopped (requests in
        flight finish); before the writer drains."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._executor.shutdown(wait=True)

    def count_rejected_request(self, reason: str) -> None:
        """Count a request refused before decoding (too large, bad encoding)."""
        self._metrics.rejected.labels(reason).inc()

    def submit(self, body: bytes, fmt: Format, project: str | None = None) -> tuple[Future[int], int, list[Rejected]]:
        """Decode, normalize and queue a request (synchronously); the future resolves at commit."""
        try:
            table, rejected = prepare_request(body, fmt, self._max_payload, self._redaction_file, project)
        except DecodeFailed as exc:
            self._metrics.rejected.labels("malformed_request").inc()
            raise PermanentIngestError(str(exc)) from exc
        future, accepted = self._queue(table, rejected)
        return future, accepted, rejected

    def _queue(self, table: pa.Table, rejected: list[Rejected]) -> tuple[Future[int], int]:
        """Count a prepared request and hand its rows to the writer."""
        accepted = table.num_rows
        self._metrics.received.inc(accepted + len(rejected))
        if rejected:
            self._metrics.rejected.labels("invalid_span").inc(len(rejected))
        truncated = pc.sum(table["payload_truncated"]).as_py() if accepted else 0
        if truncated:
            self._metrics.truncated.inc(truncated)
        try:
            future = self._writer.submit(table)
        except (QueueFull, WriterClosed) as exc:
            self._metrics.rejected.labels("queue_full").inc(accepted)
            raise TransientIngestError(str(exc), "queue_full") from exc
        return future, accepted


def _message(rejected: list[Rejected]) -> str | None:
    if not rejected:
        return None
    reasons = "; ".join(r.reason for r in rejected[:_MAX_REASONS])
    more = f" (and {len(rejected) - _MAX_REASONS} more)" if len(rejected) > _MAX_REASONS else ""
    return f"{len(rejected)} span(s) rejected: {reasons}{more}"
