"""`tracehouse up` stops its parts in order when the terminal's Ctrl-C reaches the whole group."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import REPO_ROOT


def free_port() -> int:
    """A loopback port free now (`up` needs known ports: it points the demo at the collector)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_ctrl_c_stops_the_demo_before_the_collector(tmp_path: Path) -> None:
    """A terminal sends SIGINT to every process in its foreground group. The demo must still
    flush into a collector that is listening, and every part must be gone afterwards."""
    env = dict(
        os.environ,
        TRACEHOUSE_DB=str(tmp_path / "up.duckdb"),
        TRACEHOUSE_GRPC_PORT=str(free_port()),
        TRACEHOUSE_HTTP_PORT=str(free_port()),
        TRACEHOUSE_HOST="127.0.0.1",
        TRACEHOUSE_ANALYTICS_INTERVAL_S="0",
        PYTHONUNBUFFERED="1",
        COLUMNS="200",  # one line per message
    )
    up = subprocess.Popen(
        [sys.executable, "-m", "collector.cli", "up", "--no-dashboard", "--demo-rate", "600"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,  # its own group, as a shell gives a foreground job
    )
    try:
        assert up.stdout is not None
        deadline = time.monotonic() + 60
        for line in up.stdout:
            if "Tracehouse is up" in line or time.monotonic() > deadline:
                assert "dashboard:" not in line  # --no-dashboard: no dashboard to point at
                break
        time.sleep(4)  # demo traffic in flight
        os.killpg(up.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        output, _ = up.communicate(timeout=90)
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()
    assert up.returncode == 0, output
    lost = [int(n) for n in re.findall(r"(\d+)\s+spans?\s+not\s+delivered", output)]
    assert lost and not any(lost), output  # the demo's summary says 0
    assert "spans stored)" in output, output
    leftovers = subprocess.run(["pgrep", "-g", str(up.pid)], capture_output=True, text=True).stdout
    assert not leftovers.strip(), f"processes of `tracehouse up` still running: {leftovers}"
