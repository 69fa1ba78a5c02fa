"""`tracehouse up`: the quickstart. Runs the collector, the dashboard and demo traffic together.

Each part runs as its own process (the collector owns the DuckDB file; the dashboard only talks
to its API), so one crashing part is reported and the rest are stopped cleanly. Ctrl-C or
SIGTERM stops them all: demo first, then dashboard, then the collector (which flushes last).
The parts run in their own process group, since a terminal's Ctrl-C goes to the whole
foreground group and would stop the collector while the demo still flushes into it; each part
gets SIGTERM if `up` itself dies (Linux), so none outlives it holding the database.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import subprocess
import sys
import time

import httpx

from collector.cli import COMMANDS, UserError
from collector.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-demo", action="store_true", help="do not generate demo traffic")
    parser.add_argument("--no-dashboard", action="store_true", help="do not start the dashboard")
    parser.add_argument("--demo-rate", type=float, default=30.0, help="demo traces per minute (default 30)")


def _wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise UserError(f"the collector exited with code {process.returncode} (see its message above)")
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise UserError(f"the collector did not answer {url}/healthz within {timeout:.0f} s")


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _die_with_parent() -> None:
    """In a part, before it runs: SIGTERM when `up` dies, even by SIGKILL (prctl PR_SET_PDEATHSIG)."""
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: Ctrl-C and SIGTERM to `up` still stop the parts
        pass


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    api_url = f"http://{settings.host}:{settings.http_port}"
    env = dict(os.environ, TRACEHOUSE_API_URL=os.environ.get("TRACEHOUSE_API_URL", api_url))
    tracehouse = [sys.executable, "-m", "collector.cli"]
    children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(argv, env=env, process_group=0, preexec_fn=_die_with_parent)
        children.append((name, process))
        return process

    def stop_all() -> None:
        # One at a time, last started first: the demo flushes into a collector still listening.
        for _name, process in reversed(children):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()

    signal.signal(signal.SIGTERM, _interrupt)
    try:
        collector = start("collector", [*tracehouse, "collector"])
        _wait_healthy(api_url, collector)
        dashboard = not args.no_dashboard and "dashboard" in COMMANDS
        if dashboard:
            start("dashboard", [*tracehouse, "dashboard"])
        if not args.no_demo and "demo" in COMMANDS:
            start("demo", [*tracehouse, "demo", "--rate", str(args.demo_rate),
                           "--endpoint", f"http://{settings.host}:{settings.grpc_port}"])
        print(f"Tracehouse is up. OTLP: grpc://{settings.host}:{settings.grpc_port}, "
              f"http://{settings.host}:{settings.http_port}/v1/traces · API: {api_url}/api"
              + (f" · dashboard: http://{settings.host}:{settings.dashboard_port}" if dashboard else "")
              + " · Ctrl-C stops.", flush=True)
        while True:
            for name, process in children:
                if process.poll() is not None:
                    raise UserError(f"{name} exited with code {process.returncode}; stopping the rest")
            time.sleep(0.5)
    except KeyboardInterrupt:
        return 0
    finally:
        stop_all()
