"""`tracehouse export`: the spans of a time range to a Parquet or CSV file, with a progress bar.

From the running collector (its /api/export Arrow stream) or, with --db, from the file of a
stopped collector. Written client side with pyarrow, to FILE.part first and renamed at the end,
so an interrupted export leaves no half file under the requested name.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from collector.cli import UserError
from collector.cli_sql import auth_headers, open_target, raise_for_answer, unreachable
from collector.errors import one_line
from collector.jsonvalues import iso_utc, parse_iso_utc
from collector.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format", choices=("parquet", "csv"), default="parquet", help="file format"
    )
    parser.add_argument("--since", help="first span start time, ISO 8601 (default: the beginning)")
    parser.add_argument("--until", help="spans starting before this time, ISO 8601 (default: now)")
    parser.add_argument("--out", required=True, metavar="FILE", help="file to write")
    parser.add_argument(
        "--db", metavar="PATH|URL",
        help="read this database file directly (its collector stopped), or a ClickHouse store URL",
    )
    parser.add_argument("--url", help="collector URL (default: TRACEHOUSE_API_URL)")


def _time(name: str, text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return parse_iso_utc(text)
    except ValueError as exc:
        raise UserError(f"--{name}: {exc}") from None


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    since, until = _time("since", args.since), _time("until", args.until)
    out = Path(args.out)
    part = out.with_name(out.name + ".part")
    if args.db:
        backend = open_target(args.db, settings)
        try:
            total, received_until = backend.queries.count_spans(backend.store, since, until)
            written = _write(
                backend.queries.iter_span_batches(backend.store, since, until, received_until),
                total,
                part,
                args.format,
            )
        finally:
            backend.close()
    else:
        written = _from_api(args.url or settings.api_url, since, until, part, args.format)
    os.replace(part, out)
    print(f"wrote {written:,} spans to {out}")
    return 0


def _from_api(
    url: str, since: datetime | None, until: datetime | None, part: Path, fmt: str
) -> int:
    params = {k: iso_utc(v) for k, v in (("since", since), ("until", until)) if v is not None}
    try:
        with httpx.stream(
            "GET", url.rstrip("/") + "/api/export", params=params, timeout=None, headers=auth_headers()
        ) as response:
            raise_for_answer(response)
            total = int(response.headers.get("X-Total-Rows", "0"))
            reader = pa.ipc.open_stream(_ChunkReader(response.iter_bytes()))
            return _write(_batches(reader), total, part, fmt)
    except httpx.TransportError:
        raise unreachable(url) from None
    except pa.ArrowInvalid as exc:  # the collector stopped the stream: its log says why
        raise UserError(f"the collector's export stream broke off ({one_line(exc)}); see its log") from None


def _batches(reader: pa.RecordBatchStreamReader) -> Iterator[Any]:
    yield reader.schema
    yield from reader


class _ChunkReader:
    """A read-only file object over an iterator of byte chunks (the HTTP body), for pyarrow."""

    closed = False

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = bytearray()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer.extend(chunk)
        if size < 0:
            size = len(self._buffer)
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data


def _write(batches: Iterator[Any], total: int, part: Path, fmt: str) -> int:
    """Write the schema-first batch iterator to ``part``; returns the rows written."""
    schema = next(batches)
    part.parent.mkdir(parents=True, exist_ok=True)
    writer: Any = (
        pq.ParquetWriter(part, schema, compression="zstd")
        if fmt == "parquet"
        else pa_csv.CSVWriter(part, schema)
    )
    written = 0
    columns = [
        TextColumn("exporting spans"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    ]
    try:
        with Progress(*columns, transient=True) as progress:
            task = progress.add_task("export", total=total or None)
            for batch in batches:
                writer.write_batch(batch)
                written += batch.num_rows
                progress.update(task, completed=written)
    except BaseException:
        writer.close()
        part.unlink(missing_ok=True)
        raise
    writer.close()
    return written
