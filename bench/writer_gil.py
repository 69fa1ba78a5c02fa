"""The serial writer under the collector's GIL contention, without the network.

Run: ``python -m bench.writer_gil [--seconds 15] [--senders 6]``. The collector's own parts in
one process: ``Pipeline`` (its two decode threads) and ``BatchWriter`` with the agent resolver
into a throwaway DuckDB file, fed by sender threads that each keep one 500-span request in
flight and wait for its acknowledgement, as ``bench/ingest.py``'s senders do over gRPC. So the
batches are the size they are under the gRPC load (~1,500 spans), unlike ``bench/writer_floor.py``
whose single submitter fills them to ``TRACEHOUSE_BATCH_MAX_SPANS``.

Prints spans/s, the writer thread's share of the wall time in commits, its CPU and its context
switches per batch (each call into DuckDB or a GIL-releasing pyarrow function gives up the GIL,
and getting it back from a decode thread is a switch): a figure that the load of other
processes on the machine moves far less than the rates.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

from rich.console import Console

from bench.workload import RequestFactory
from collector.agent_resolver import AgentResolver
from collector.metrics import IngestMetrics
from collector.pipeline import Pipeline
from collector.runtime import tune_gc
from collector.settings import Settings
from collector.store import Store
from collector.writer import BatchWriter

console = Console()


def _thread_counters(native_id: int) -> tuple[int, float]:
    """(context switches, CPU seconds) of one thread of this process, from /proc."""
    status = Path(f"/proc/self/task/{native_id}/status").read_text()
    switches = sum(int(line.split()[1]) for line in status.splitlines() if "ctxt_switches" in line)
    stat = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    return switches, (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--senders", type=int, default=6)
    args = parser.parse_args()
    factories = [RequestFactory(traces_per_request=50, worker=i) for i in range(args.senders)]
    with console.status("building requests"):
        bodies = [[f.next() for _ in range(int(args.seconds * 12))] for f in factories]
    tune_gc()
    settings = Settings()
    commits: list[tuple[float, int]] = []
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "gil.duckdb", memory_limit=settings.duckdb_memory_limit)
        writer = BatchWriter(store, settings, resolver=AgentResolver(), observer=lambda s, n: commits.append((s, n)))
        pipeline = Pipeline(settings, writer, IngestMetrics())
        done = [0] * args.senders
        deadline = time.perf_counter() + args.seconds

        def send(index: int) -> None:
            sent = 0
            while time.perf_counter() < deadline:
                body = bodies[index][sent % len(bodies[index])]
                future, accepted, _ = pipeline._executor.submit(pipeline.submit, body, "protobuf").result()
                future.result()
                done[index] += accepted
                sent += 1

        switches0, cpu0 = _thread_counters(writer._thread.native_id)  # type: ignore[arg-type]
        started, process0 = time.perf_counter(), time.process_time()
        senders = [threading.Thread(target=send, args=(i,)) for i in range(args.senders)]
        for thread in senders:
            thread.start()
        for thread in senders:
            thread.join()
        elapsed, process_cpu = time.perf_counter() - started, time.process_time() - process0
        switches1, cpu1 = _thread_counters(writer._thread.native_id)  # type: ignore[arg-type]
        pipeline.close()
        writer.close()
        store.close()
    spans, batches, busy = sum(done), len(commits), sum(c[0] for c in commits)
    console.print(f"load average {os.getloadavg()[0]:.1f}; {args.senders} senders × 500 spans, {elapsed:.0f} s")
    console.print(f"{spans / elapsed:,.0f} spans/s, {process_cpu / spans * 1e6:.0f} µs CPU per span (all threads)")
    console.print(f"commits: {batches}, mean {busy / batches * 1000:.0f} ms, {spans / batches:,.0f} spans; "
                  f"writer busy {busy / elapsed * 100:.0f} % of the time = {busy / spans * 1e6:.1f} µs per span")
    console.print(f"writer thread: {(switches1 - switches0) / batches:.0f} context switches per batch, "
                  f"{(cpu1 - cpu0) / spans * 1e6:.1f} µs CPU per span")


if __name__ == "__main__":
    main()
