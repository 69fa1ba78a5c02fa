"""Export latency of large gRPC requests over a slow link: a real collector behind a delaying proxy.

``python -m bench.grpc_latency --rtt-ms 50 --mb 1 4 --calls 12 --concurrency 1 4``: a fresh
collector (``python -m collector``, DuckDB in a temporary folder) takes ``--calls`` Export calls
of about ``--mb`` MB (bench.grpc_bodies' requests) from ``--concurrency`` connections, each call
waiting for the last on its connection, as an OTLP exporter's batches do. Once straight to the
collector and once through a TCP proxy on loopback that holds every chunk for half the round
trip each way (latency without a bandwidth cap: this machine has no netem), so the figures show
what a remote exporter pays for the collector's HTTP/2 flow control (collector.receivers.grpc
turns BDP probing off). Printed: median and slowest export per setting. Loopback only; every
process it starts is stopped by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc

from bench.grpc_bodies import EXPORT, big_request
from bench.ingest import free_port, machine, start_collector


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay_s: float) -> None:
    """Copy one direction, each chunk delivered ``delay_s`` after it arrived, in order."""
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if not data:
                writer.close()
                return
            writer.write(data)
            await writer.drain()

    delivering = asyncio.create_task(deliver())
    try:
        while data := await reader.read(65536):
            queue.put_nowait((time.monotonic() + delay_s, data))
    finally:
        queue.put_nowait((time.monotonic() + delay_s, b""))
        await delivering


def delay_proxy(listen_port: int, target_port: int, delay_s: float, ready: multiprocessing.Event) -> None:
    """Serve 127.0.0.1:listen_port, forwarding to 127.0.0.1:target_port with ``delay_s`` each way."""

    async def serve() -> None:
        async def connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            target_reader, target_writer = await asyncio.open_connection("127.0.0.1", target_port)
            await asyncio.gather(_pump(reader, target_writer, delay_s), _pump(target_reader, writer, delay_s),
                                 return_exceptions=True)  # fmt: skip

        server = await asyncio.start_server(connect, "127.0.0.1", listen_port)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


def export_latencies(target: str, bodies: list[bytes], concurrency: int) -> list[float]:
    """Seconds per Export call: ``concurrency`` connections, each sending its share in turn."""

    def connection(index: int) -> list[float]:
        options = [("grpc.use_local_subchannel_pool", 1), ("grpc.max_send_message_length", 64 * 1024 * 1024)]
        with grpc.insecure_channel(target, options=options) as channel:
            export = channel.unary_unary(EXPORT)
            export(big_request(1_000_000 + index, 0.01), timeout=60)  # the connection is up
            seconds = []
            for body in bodies[index::concurrency]:
                started = time.perf_counter()
                export(body, timeout=120)
                seconds.append(time.perf_counter() - started)
            return seconds

    with ThreadPoolExecutor(concurrency) as pool:
        return [s for part in pool.map(connection, range(concurrency)) for s in part]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rtt-ms", type=float, default=50.0, help="round trip the proxy adds")
    parser.add_argument("--mb", type=float, nargs="+", default=[1.0, 4.0], help="request sizes")
    parser.add_argument("--calls", type=int, default=12, help="calls per setting")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4], help="connections at once")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    grpc_port, http_port, proxy_port = free_port(), free_port(), free_port()
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    proxy = context.Process(target=delay_proxy, args=(proxy_port, grpc_port, args.rtt_ms / 2000, ready), daemon=True)
    with tempfile.TemporaryDirectory(prefix="grpc-latency-") as folder:
        collector = start_collector(Path(folder) / "latency.duckdb", grpc_port, http_port,
                                    env={"TRACEHOUSE_ANALYTICS_INTERVAL_S": "0"})  # fmt: skip
        proxy.start()
        try:
            if not ready.wait(30):
                raise RuntimeError("the delaying proxy did not start")
            call = 0
            for megabytes in args.mb:
                for concurrency in args.concurrency:
                    for label, target in (("direct", f"127.0.0.1:{grpc_port}"),
                                          (f"+{args.rtt_ms:g} ms RTT", f"127.0.0.1:{proxy_port}")):  # fmt: skip
                        bodies = [big_request(call + i + 1, megabytes) for i in range(args.calls)]
                        call += args.calls
                        seconds = export_latencies(target, bodies, concurrency)
                        print(f"{megabytes:g} MB x {args.calls}, {concurrency} connection(s), {label}: "
                              f"median {statistics.median(seconds) * 1000:.0f} ms, "
                              f"slowest {max(seconds) * 1000:.0f} ms", flush=True)  # fmt: skip
        finally:
            proxy.terminate()
            proxy.join(10)
            collector.terminate()
            collector.wait(60)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
