"""A webhook receiver for the alert tests: a real HTTP server on 127.0.0.1 (ephemeral port)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """A webhook endpoint on 127.0.0.1 recording the JSON it gets; answers ``statuses`` in turn, then 200."""

    def __init__(
        self, statuses: list[int] | None = None, gate: threading.Event | None = None
    ) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.statuses = list(statuses or [])
        self.gate = gate
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if outer.gate is not None:
                    outer.gate.wait(10)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = outer.statuses.pop(0) if outer.statuses else 200
                if status == 200:
                    outer.bodies.append(json.loads(body))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
