"""`tracehouse dashboard` serves the app on the configured port and stops on SIGTERM."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from dashboard import serve

REPO = Path(__file__).resolve().parents[2]


def test_dashboard_command_serves_headless_and_stops_on_sigterm() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(os.environ, TRACEHOUSE_DASHBOARD_PORT=str(port), TRACEHOUSE_API_URL="http://127.0.0.1:9")
    process = subprocess.Popen([sys.executable, "-m", "collector.cli", "dashboard"], cwd=REPO, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        assert serve.wait_until_ready(url, process), "the dashboard did not start"
        assert httpx.get(url + "/", timeout=10).status_code == 200
        process.terminate()  # reaches Streamlit itself: the command execs it
        assert process.wait(30) is not None
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    output = process.stdout.read().decode() if process.stdout else ""
    assert f"tracehouse dashboard: http://127.0.0.1:{port}" in output
    assert "Traceback" not in output


def test_streamlit_command_line_is_headless_local_and_private() -> None:
    argv = serve.command("127.0.0.1", 8501)
    flags = dict(zip(argv[5::2], argv[6::2]))
    assert flags["--server.address"] == "127.0.0.1" and flags["--server.port"] == "8501"
    assert flags["--server.headless"] == "true" and flags["--browser.gatherUsageStats"] == "false"
    assert flags["--client.showErrorDetails"] == "none"  # never a traceback on screen
