"""Disk full and unwritable database directory: 503/UNAVAILABLE, nothing acknowledged lost, recovery.

A real full disk: a small tmpfs mounted for the test (needs root and mount; skipped otherwise)
filled with a file until the kernel answers ENOSPC. Freeing the file is "space returns".
"""

from __future__ import annotations

import errno
import logging
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb
import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

from tests.collector.otlp_payloads import spans_request
from tests.collector.test_process import keys_of, stored_counts
from tests.conftest import RunningCollector, start_collector_process

STORAGE_LOGGER = "collector.storage_faults"


def _mount(args: list[str]) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 24 MiB tmpfs, unmounted at teardown."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if os.geteuid() != 0 or not _mount(["-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount_point)]):
        pytest.skip("needs root and mount to make a real small file system")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def fill(disk: Path) -> Path:
    """Write a file until the file system is full; return it (delete it to free the space)."""
    filler = disk / f"filler-{uuid.uuid4().hex}"
    with open(filler, "wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 65536)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        try:  # the last few bytes of the last block
            while True:
                out.write(b"\0" * 512)
        except OSError:
            pass
    return filler


def post(collector: RunningCollector, request: ExportTraceServiceRequest) -> httpx.Response:
    return httpx.post(
        f"{collector.http_url}/v1/traces", content=request.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"}, timeout=30,
    )


def storage_records(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == STORAGE_LOGGER and r.levelno == level]


def test_disk_full_answers_unavailable_loses_nothing_and_recovers(
    make_collector, small_disk: Path, caplog: pytest.LogCaptureFixture  # type: ignore[no-untyped-def]
) -> None:
    caplog.set_level(logging.INFO)
    db = small_disk / "tracehouse.duckdb"
    collector: RunningCollector = make_collector(db=db)
    acknowledged: set[tuple[str, str]] = set()
    for _ in range(3):
        request = spans_request(50)
        assert post(collector, request).status_code == 200
        acknowledged |= keys_of(request)

    filler = fill(small_disk)
    refused: list[ExportTraceServiceRequest] = []
    for _ in range(6):
        request = spans_request(50)
        response = post(collector, request)
        if response.status_code == 200:  # room left in a block the WAL already had
            acknowledged |= keys_of(request)
            continue
        assert response.status_code == 503 and response.headers["Retry-After"]
        refused.append(request)
    assert len(refused) >= 4
    with grpc.insecure_channel(collector.grpc_endpoint) as channel, pytest.raises(grpc.RpcError) as rpc:
        # As large as the refused requests: a tiny one may still fit in the WAL's last block.
        TraceServiceStub(channel).Export(spans_request(50), timeout=30)
    assert rpc.value.code() == grpc.StatusCode.UNAVAILABLE
    assert httpx.get(f"{collector.http_url}/healthz", timeout=10).json()["storage"] == "failing"

    errors = storage_records(caplog, logging.ERROR)
    assert len(errors) == 1 and "No space left on device" in errors[0], errors
    assert not [r for r in caplog.records if r.name == "collector.writer" and r.levelno >= logging.ERROR]

    filler.unlink()  # space returns; the exporters' retries now go through
    for request in refused:
        assert post(collector, request).status_code == 200
        acknowledged |= keys_of(request)
    assert len(storage_records(caplog, logging.WARNING)) == 1
    assert httpx.get(f"{collector.http_url}/healthz", timeout=10).json()["storage"] == "ok"
    collector.stop()

    counts = stored_counts(db)
    assert set(counts) == acknowledged and set(counts.values()) == {1}


def test_failed_checkpoint_on_a_full_disk_reopens_the_database(
    make_collector, small_disk: Path, caplog: pytest.LogCaptureFixture  # type: ignore[no-untyped-def]
) -> None:
    """DuckDB invalidates a database whose checkpoint failed; the writer reopens it and goes on."""
    caplog.set_level(logging.INFO)
    db = small_disk / "tracehouse.duckdb"
    collector: RunningCollector = make_collector(db=db)
    first = spans_request(200)
    assert post(collector, first).status_code == 200
    filler = fill(small_disk)
    with pytest.raises(duckdb.Error, match="checkpoint"):
        collector.sql("CHECKPOINT")  # what a maintenance job or shutdown would do
    statuses = [post(collector, spans_request(20)).status_code for _ in range(3)]
    assert set(statuses) == {503}, statuses
    filler.unlink()
    second = spans_request(20)
    statuses = [post(collector, second).status_code for _ in range(3)]
    assert statuses[-1] == 200, statuses
    collector.stop()
    counts = stored_counts(db)
    assert set(counts) == keys_of(first) | keys_of(second) and set(counts.values()) == {1}


def test_unwritable_database_directory_is_one_clear_line(tmp_path: Path) -> None:
    """A read-only bind mount: the collector does not start, and says why in one line."""
    source, target = tmp_path / "source", tmp_path / "readonly"
    source.mkdir()
    target.mkdir()
    if os.geteuid() != 0 or not _mount(["--bind", str(source), str(target)]):
        pytest.skip("needs root and mount for a read-only bind mount")
    try:
        assert _mount(["-o", "remount,ro,bind", str(target)])
        child = start_collector_process(target / "tracehouse.duckdb", wait=False)
        assert child.process.wait(60) == 2
        lines = [line for line in child.wait_output().splitlines() if line.strip()]
    finally:
        subprocess.run(["umount", "-l", str(target)], capture_output=True)
    assert len(lines) == 1, lines
    assert lines[0].startswith("tracehouse collector: error:") and "Read-only file system" in lines[0], lines
