"""`tracehouse dashboard`: run the Streamlit app on 127.0.0.1:TRACEHOUSE_DASHBOARD_PORT.

:func:`start_dashboard` is what `tracehouse up` calls: it starts Streamlit as a child process
(headless, no usage stats, no browser) and returns the Popen, so the caller owns its lifetime.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from collector.settings import Settings

APP = Path(__file__).resolve().parent / "app.py"


def command(host: str, port: int) -> list[str]:
    """The streamlit command line; flags rather than a config file, so any working directory works."""
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
        "--server.runOnSave", "false",
        "--client.showErrorDetails", "none",
        "--client.toolbarMode", "minimal",
        "--theme.base", "light",
        "--theme.primaryColor", "#6366F1",
        "--theme.font", "sans-serif",
    ]


def _environment(settings: Settings, api_url: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env["TRACEHOUSE_API_URL"] = api_url or settings.api_url
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(APP.parent.parent), env.get("PYTHONPATH")]))
    return env


def start_dashboard(settings: Settings | None = None, *, api_url: str | None = None, port: int | None = None,
                    host: str | None = None, quiet: bool = True) -> subprocess.Popen[bytes]:
    """Start the dashboard in a child process and return it (stop it with terminate())."""
    settings = settings or Settings.from_env()
    output = subprocess.DEVNULL if quiet else None
    return subprocess.Popen(
        command(host or settings.host, settings.dashboard_port if port is None else port),
        env=_environment(settings, api_url), stdout=output, stderr=output, cwd=str(APP.parent.parent),
    )


def wait_until_ready(url: str, process: subprocess.Popen[bytes] | None = None, timeout_s: float = 60.0) -> bool:
    """Poll Streamlit's health endpoint until it answers (or the process dies, or time runs out)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        try:
            if httpx.get(url.rstrip("/") + "/_stcore/health", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    return False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=None, help="port (default: TRACEHOUSE_DASHBOARD_PORT, 8501)")
    parser.add_argument("--api-url", default=None, help="collector URL (default: TRACEHOUSE_API_URL)")


def run(args: argparse.Namespace) -> int:
    """Replace this process by Streamlit, so signals (Ctrl-C, SIGTERM) reach it directly."""
    settings = Settings.from_env()
    port = settings.dashboard_port if args.port is None else args.port
    print(f"tracehouse dashboard: http://{settings.host}:{port} (collector {args.api_url or settings.api_url})",
          file=sys.stderr, flush=True)
    argv = command(settings.host, port)
    os.chdir(APP.parent.parent)
    os.execve(argv[0], argv, _environment(settings, args.api_url))
