"""`tracehouse collector`: gRPC and HTTP receivers, the writer and the query API in one process.

:class:`CollectorServer` runs grpc.aio and uvicorn on one asyncio loop, either in the
foreground (``serve_forever``, with SIGTERM/SIGINT handlers) or on a background thread
(``start``/``stop``, for tests and embedding). Port 0 picks a free port; the bound ports are
``grpc_port`` and ``http_port``. Shutdown order matters for "acknowledged means stored": stop
accepting, let in-flight requests get their commit, drain the writer, checkpoint and close.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any

import duckdb
import uvicorn

from analytics.pricing import PriceFileError, load_prices
from analytics.rules import RulesFileError, load_rules
from analytics.runner import AnalyticsRunner
from collector.api import create_app
from collector.auth import Access
from collector.backend import Backend, open_backend
from collector.errors import one_line
from collector.runtime import cap_malloc_arenas, keep_pandas_out, tune_gc, use_malloc_for_arrow
from collector.metrics import IngestMetrics
from collector.pipeline import Pipeline
from collector.receivers.grpc import create_server
from collector.redaction import RedactionFileError, load_redactor
from collector.settings import Settings
from collector.store import StoreLockedError
from collector.writer import BatchWriter

log = logging.getLogger(__name__)
GRACE_S = 10.0  # longest wait for in-flight requests at shutdown


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: CollectorServer decides when to stop."""

    def capture_signals(self) -> contextlib.AbstractContextManager[None]:  # type: ignore[override]
        return contextlib.nullcontext()


class CollectorServer:
    """One collector: store, writer, pipeline, gRPC server and HTTP app."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.grpc_port = 0
        self.http_port = 0
        self.backend: Backend | None = None
        self.store: Any = None  # the backend's store (collector.store.Store on DuckDB)
        self.writer: BatchWriter | None = None
        self.metrics: IngestMetrics | None = None
        self.pipeline: Pipeline | None = None
        self.analytics: AnalyticsRunner | None = None
        self.retention: Any = None  # collector.retention.RetentionJob or the ClickHouse one
        self.access: Access | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def grpc_endpoint(self) -> str:
        return f"{self.settings.host}:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.settings.host}:{self.http_port}"

    def banner(self) -> str:
        return (
            f"tracehouse collector: OTLP gRPC {self.grpc_endpoint} · OTLP/HTTP and API {self.http_url} "
            f"· {self.backend.location if self.backend else 'database ' + self.settings.db}"
        )

    # -- background-thread use ------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> CollectorServer:
        """Run on a background thread; return once both ports accept connections."""
        self._thread = threading.Thread(
            target=self._thread_main, name="tracehouse-collector", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("collector did not start in time")
        if self._error is not None:
            raise self._error
        return self

    def _thread_main(self) -> None:
        try:
            asyncio.run(self.serve_forever())
        except BaseException as exc:  # noqa: BLE001 - reported to start()'s caller
            self._error = exc
            self._ready.set()

    def stop(self, timeout: float = 60.0) -> None:
        """Stop accepting, drain the writer, close the database; idempotent."""
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)

    # -- the loop ------------------------------------------------------------------------------

    async def serve_forever(
        self, *, handle_signals: bool = False, announce: Callable[[str], None] | None = None
    ) -> None:
        """Serve until stop() or (with handle_signals) SIGTERM/SIGINT; then shut down cleanly."""
        settings = self.settings
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        # Price and rules files are checked before anything opens (PriceFileError / RulesFileError).
        prices = load_prices(settings.prices_file or None)
        rules = load_rules(settings.rules_file or None)
        load_redactor(settings.redaction_file)  # RedactionFileError before anything opens
        # StoreLockedError when another process has the DuckDB file; StoreUnavailable for ClickHouse.
        self.backend = backend = open_backend(settings)
        self.store = store = backend.store
        self.metrics = metrics = IngestMetrics()
        self.writer = writer = backend.open_writer(settings, observer=metrics.observe_commit)
        metrics.bind_writer(writer)
        self.pipeline = pipeline = Pipeline(settings, writer, metrics)
        grpc_server = http_server = http_task = None
        try:
            self.access = access = backend.load_access(settings)  # RuntimeError: public address without keys
            grpc_server, self.grpc_port = create_server(settings, pipeline, access)
            sock = _bind(settings.host, settings.http_port)
            self.http_port = sock.getsockname()[1]
            app = create_app(settings, store, writer, metrics, pipeline, access, backend=backend)
            # Analytics jobs run here: they read through the store and write through the writer.
            self.analytics = backend.analytics(writer, settings, prices=prices, rules=rules)
            app.state.analytics = self.analytics
            config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="auto")
            http_server = _Uvicorn(config)
            await grpc_server.start()
            http_task = asyncio.create_task(http_server.serve(sockets=[sock]))
            while not http_server.started:
                if http_task.done():
                    http_task.result()
                    raise RuntimeError("HTTP server stopped during start-up")
                await asyncio.sleep(0.01)
            if handle_signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    self._loop.add_signal_handler(sig, self._stop.set)
            if announce is not None:
                announce(self.banner())
                if not access.keys_configured:
                    announce("tracehouse collector: no API keys configured: accepting local (loopback) traffic only")
            if self.analytics is not None:
                self.analytics.start()
            self.retention = backend.retention(writer, settings)
            self.retention.start()
            self._ready.set()
            await self._stop.wait()
        finally:
            await self._shutdown(grpc_server, http_server, http_task)

    async def _shutdown(self, grpc_server, http_server, http_task) -> None:  # type: ignore[no-untyped-def]
        if http_server is not None:
            http_server.should_exit = True
        waits = []
        if grpc_server is not None:
            waits.append(grpc_server.stop(GRACE_S))  # refuses new RPCs, lets running ones finish
        if http_task is not None:
            waits.append(asyncio.wait_for(http_task, GRACE_S + 5))
        results = await asyncio.gather(*waits, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                log.warning("server shutdown: %s", result)
        if self.pipeline is not None:
            await asyncio.to_thread(self.pipeline.close)
        if self.retention is not None:
            await asyncio.to_thread(self.retention.stop)
        if self.analytics is not None:  # before the writer closes: a run in progress still writes
            await asyncio.to_thread(self.analytics.stop)
        if self.writer is not None:
            await asyncio.to_thread(self.writer.close)
        if self.backend is not None:
            await asyncio.to_thread(self.backend.close)  # DuckDB: checkpoints the WAL into the file


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot bind the HTTP port {host}:{port}: {exc.strerror}") from exc
    sock.listen(2048)
    sock.setblocking(False)
    return sock


# -- the CLI command ----------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = "Configured through TRACEHOUSE_* environment variables (see README)."


def run(args: argparse.Namespace) -> int:
    """Serve in the foreground until SIGTERM/SIGINT; exit 0 after a clean shutdown."""
    from collector.cli import UserError

    settings = Settings.from_env()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    cap_malloc_arenas()  # before the first thread starts (collector.runtime)
    use_malloc_for_arrow()  # this process owns all Arrow use in it, so it picks the pool
    keep_pandas_out()  # before any Arrow conversion (collector.runtime)
    tune_gc()  # after the imports: their objects are frozen out of collection (collector.runtime)
    server = CollectorServer(settings)
    try:
        asyncio.run(
            server.serve_forever(handle_signals=True, announce=lambda line: print(line, flush=True))
        )
    except StoreLockedError:
        raise
    except (PriceFileError, RulesFileError, RedactionFileError) as exc:
        raise UserError(str(exc)) from None
    except (OSError, RuntimeError, duckdb.Error) as exc:  # port in use, unwritable db path, ClickHouse down ...
        raise UserError(one_line(exc)) from exc
    stats = server.writer.stats if server.writer else None
    print(
        f"tracehouse collector: stopped ({stats.stored if stats else 0} spans stored)", flush=True
    )
    return 0
