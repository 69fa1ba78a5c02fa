"""`tracehouse demo`: realistic multi-agent traffic sent over OTLP to a collector."""

from __future__ import annotations

import argparse
import os
import signal
import threading
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from sdk_shim.demo.traffic import DemoStats, run_demo


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rate", type=float, default=30.0, help="traces per minute (default 30)")
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        help="stop after this many seconds (default: run until Ctrl-C)",
    )
    parser.add_argument(
        "--endpoint",
        default=None,
        help="OTLP endpoint (default: OTEL_EXPORTER_OTLP_ENDPOINT, else this collector's TRACEHOUSE_HOST and TRACEHOUSE_GRPC_PORT / TRACEHOUSE_HTTP_PORT)",
    )
    parser.add_argument(
        "--protocol", choices=["grpc", "http"], default=None, help="OTLP protocol (default grpc)"
    )
    parser.add_argument(
        "--service-name", default="tracehouse-demo", help="service.name of the demo spans"
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="random seed, for a reproducible sequence of runs"
    )
    parser.add_argument(
        "--latency-scale",
        type=float,
        default=1.0,
        help="multiply simulated model latency (0 = as fast as possible)",
    )


def _local_collector(protocol: str | None) -> str | None:
    """The collector this machine's Tracehouse settings describe, unless OTEL_* says otherwise."""
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    ):
        return None
    from collector.settings import Settings

    settings = Settings.from_env()
    host = "127.0.0.1" if settings.host in {"0.0.0.0", "::", ""} else settings.host
    port = settings.http_port if (protocol or "grpc") == "http" else settings.grpc_port
    return f"http://{host}:{port}"


def run(args: argparse.Namespace) -> int:
    from collector.cli import UserError

    if args.rate <= 0:
        raise UserError(f"--rate must be above 0 (got {args.rate})")
    if args.duration is not None and args.duration <= 0:
        raise UserError(f"--duration must be above 0 seconds (got {args.duration})")
    endpoint = args.endpoint or _local_collector(args.protocol)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    console = Console(stderr=True)
    with Progress(
        TextColumn("demo"),
        BarColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("starting", total=args.duration)

        def on_progress(stats: DemoStats) -> None:
            progress.update(task, description=stats.line())

        def tick() -> None:
            while not stop.wait(0.5):
                progress.update(task, completed=progress.tasks[0].elapsed or 0)

        threading.Thread(target=tick, daemon=True).start()
        try:
            stats = run_demo(
                endpoint,
                args.rate,
                args.duration,
                stop,
                args.protocol,
                args.service_name,
                args.seed,
                args.latency_scale,
                on_progress,
            )
        except ValueError as exc:
            raise UserError(str(exc)) from exc
        finally:
            stop.set()
    console.print(f"demo: sent {stats.line()}; {stats.dropped_spans} spans not delivered")
    return 0
