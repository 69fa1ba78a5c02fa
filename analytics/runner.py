"""Runs the analytics jobs: incremental (a watermark on received_at), idempotent, in the collector.

Each run reads the spans received since the watermark through ``store.cursor()`` and writes its
results only through the writer (``writer.execute(fn)`` runs ``fn`` in the single writer thread,
inside a transaction). Every write replaces the keys it recomputes, so a repeated or interrupted
run changes nothing. The watermark is safe because the one writer stamps ``received_at`` in commit
order: once a span with ``received_at = t`` is visible, every span stamped before ``t`` is too.

Steps, per chunk of new spans: span costs (``span_costs`` and ``spans.cost_usd``, then the
``traces`` summaries of those traces are refreshed) → trace features → minute rollups → per-trace anomalies
(rules + IsolationForest) → watermark. Then per-window detection (error rate, series spikes) over
the windows that have completed since the last run, then alerts. A changed price table resets the
watermark, so the next run recomputes every past cost.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from analytics import alerts as alerting
from analytics import anomaly, forest, queries, rollups
from analytics.cost import compute_costs
from analytics.notify import WebhookNotifier
from analytics.pricing import PriceFileError, PriceTable, load_prices
from analytics.rules import Rules, RulesFileError, load_rules
from collector.rollup import refresh_traces
from collector.settings import Settings
from collector.store import Store

logger = logging.getLogger(__name__)

JOB = "spans"  # watermark of the per-span steps; fingerprint = price table + rollup versions
# Bumped when a job writes a new derived table or changes one: the next run then recomputes
# everything, so a file written by an older version gets the new table for its past spans too.
ROLLUP_VERSION = "4"  # 2: call_minutes, error_minutes.sample_trace_id; 3: per project; 4: call histograms
WINDOW_JOB = "windows"  # end of the last judged window
CHUNK_SPANS = 100_000  # spans per chunk: a chunk's trace features fit a 64 MB DuckDB limit (250,000 did not)
EPOCH = datetime(1970, 1, 1)

Progress = Callable[[int, int], None]  # (spans done, spans to do)


class Writer(Protocol):
    def execute(self, fn: Callable[[duckdb.DuckDBPyConnection], Any]) -> Future[Any]: ...


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class ProjectReport:
    """What one run did for one project: all a project's key is shown of a run."""

    spans: int = 0
    llm_spans: int = 0
    traces: int = 0
    minutes: int = 0
    anomalies: int = 0
    alerts_fired: int = 0
    alerts_resolved: int = 0
    new_anomalies: dict[str, int] = field(default_factory=dict)


@dataclass
class RunReport(ProjectReport):
    """What one run did: the counts over every project, and each project's part."""

    backfill: bool = False
    stopped: bool = False  # the runner was stopped: the run ended early, at a chunk boundary
    seconds: float = 0.0
    watermark: str | None = None
    steps: dict[str, float] = field(default_factory=dict)  # seconds per step, summed over chunks
    projects: dict[str, ProjectReport] = field(default_factory=dict)

    def project(self, name: str) -> ProjectReport:
        return self.projects.setdefault(name, ProjectReport())

    def add(self, counts: Mapping[Any, Any], what: str) -> None:
        """Add per-project counts (project → n) to ``what`` of the projects and of the total."""
        for name, n in counts.items():
            part = self.project(str(name))
            setattr(part, what, getattr(part, what) + int(n))
            setattr(self, what, getattr(self, what) + int(n))


def _per_project(rows: pa.Table) -> dict[str, int]:
    return dict(Counter(anomaly.projects(rows)))


class _Steps:
    """Adds the time since the last lap to a step's total."""

    def __init__(self, totals: dict[str, float]) -> None:
        self.totals = totals
        self.last = time.monotonic()

    def lap(self, step: str) -> None:
        now = time.monotonic()
        self.totals[step] = round(self.totals.get(step, 0.0) + now - self.last, 3)
        self.last = now


class AnalyticsRunner:
    """Owns the schedule of the analytics jobs of one collector (or one offline run)."""

    def __init__(self, store: Store, writer: Writer, settings: Settings, *, prices: PriceTable | None = None,
                 rules: Rules | None = None, notifier: WebhookNotifier | None = None,
                 clock: Callable[[], datetime] = utcnow, scorer: anomaly.Scorer = forest.score) -> None:  # fmt: skip
        """``scorer`` fits the IsolationForests: by default in a child process, so scikit-learn
        never loads into the collector; a run in its own short-lived process may fit in-process."""
        self.store = store
        self.writer = writer
        self.settings = settings
        self.prices = prices or load_prices(settings.prices_file or None)
        self.rules = rules or load_rules(settings.rules_file or None)
        urls = [u.strip() for u in settings.alert_webhooks.split(",") if u.strip()]
        self.notifier = notifier or WebhookNotifier(
            urls, timeout_s=self.rules.notify.timeout_s, retries=self.rules.notify.retries
        )
        self.clock = clock
        self.scorer = scorer
        self._versions = self._file_versions()
        self._run_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_report: RunReport | None = None

    # ── schedule ──────────────────────────────────────────────────────────────────────────────
    def start(self) -> None:
        """Run every ``analytics_interval_s`` on a daemon thread until stop(); 0: never by itself."""
        if self._thread is not None or self.settings.analytics_interval_s <= 0:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="tracehouse-analytics", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """End the schedule; a run in progress ends after its current chunk (the collector closes
        the database next, which must not happen under a running query)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        self.notifier.stop()

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.analytics_interval_s):
            try:
                self.run_now()
            except Exception:  # a failed run is logged; the next one retries (jobs are idempotent)
                logger.exception("analytics run failed")
            # A run's objects may hold reference cycles, and the collector collects cyclic
            # garbage rarely (collector.runtime): free them now, not minutes later.
            gc.collect()

    # ── one run ───────────────────────────────────────────────────────────────────────────────
    def run_now(self, now: datetime | None = None, progress: Progress | None = None) -> RunReport:
        """Process everything received since the last run; one run at a time."""
        with self._run_lock:
            started = time.monotonic()
            report = self._run(now or self.clock(), progress)
            report.seconds = round(time.monotonic() - started, 3)
            self.last_report = report
            return report

    def _write(self, fn: Callable[[duckdb.DuckDBPyConnection], Any]) -> Any:
        return self.writer.execute(fn).result()

    def _file_versions(self) -> tuple[float | None, float | None]:
        def mtime(path: str) -> float | None:
            try:
                return os.stat(path).st_mtime if path else None
            except OSError:
                return None

        return mtime(self.settings.prices_file), mtime(self.settings.rules_file)

    def _reload_changed_files(self) -> None:
        """Pick up an edited price or rules file without a restart; a broken edit is logged and
        the tables in use are kept."""
        versions = self._file_versions()
        if versions == self._versions:
            return
        self._versions = versions
        try:
            prices = load_prices(self.settings.prices_file or None)
            rules = load_rules(self.settings.rules_file or None)
        except (PriceFileError, RulesFileError) as exc:
            logger.error(
                "analytics: keeping the previous prices and rules: %s", str(exc).replace("\n", "; ")
            )
            return
        self.prices, self.rules = prices, rules
        logger.info("analytics: reloaded prices and rules")

    def _fingerprint(self) -> str:
        return f"{self.prices.fingerprint}/rollups-{ROLLUP_VERSION}"

    def _run(self, now: datetime, progress: Progress | None) -> RunReport:
        self._reload_changed_files()
        report = RunReport()
        with self._reading():
            watermark, fingerprint = self._read_state(JOB)
            if watermark is not None and fingerprint != self._fingerprint():
                logger.info("price table or rollup version changed: recomputing all analytics")
                watermark, report.backfill = None, True
            total, hi = self._new_spans(watermark, now)
            lo = watermark or EPOCH
            affected_from: datetime | None = None
            if total and hi is not None:
                report.backfill = report.backfill or watermark is None
                bounds = self._chunk_bounds(lo, hi, CHUNK_SPANS)
                for chunk_hi in bounds:
                    if self._stop.is_set():  # stopping: the rest waits for the next run (the
                        report.stopped = True  # watermark is at the last finished chunk)
                        break
                    with self._chunk_reader(lo, chunk_hi) as cur:
                        first = self._chunk(cur, lo, chunk_hi, now, report)
                    if first is not None:
                        affected_from = first if affected_from is None else min(affected_from, first)
                    lo = chunk_hi
                    if progress:
                        progress(report.spans, total)
            report.watermark = lo.isoformat() if lo != EPOCH else None
            if report.stopped:
                return report
            clock = _Steps(report.steps)
            with self._window_reader(affected_from, now) as cur:
                self._windows(cur, affected_from, now, report)
                clock.lap("window_anomalies")
                self._alerts(cur, now, report)
                clock.lap("alerts")
        return report

    # ── where a run reads: the store (overridden by the ClickHouse runner) ────────────────────
    @contextmanager
    def _reading(self) -> Iterator[None]:
        """One cursor for the whole run."""
        self._cur = self.store.cursor()
        try:
            yield
        finally:
            self._cur.close()

    def _read_state(self, job: str) -> tuple[datetime | None, str | None]:
        return queries.read_state(self._cur, job)

    def _new_spans(self, watermark: datetime | None, now: datetime) -> tuple[int, datetime | None]:
        return rollups.new_span_range(self._cur, watermark)

    def _chunk_bounds(self, lo: datetime, hi: datetime, spans: int) -> Iterable[datetime]:
        """Ends of chunks of about ``spans`` spans received in (lo, hi], found one at a time."""
        return rollups.chunk_bounds(self._cur, lo, hi, spans)

    def _chunk_reader(self, lo: datetime, hi: datetime) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        """What the per-span steps of spans received in (lo, hi] read."""
        return nullcontext(self._cur)

    def _window_reader(self, affected_from: datetime | None, now: datetime) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        """What the window detectors and alert rules read."""
        return nullcontext(self._cur)

    def _chunk(self, cur: duckdb.DuckDBPyConnection, lo: datetime, hi: datetime, now: datetime,
               report: RunReport) -> datetime | None:  # fmt: skip
        """All per-span steps for spans received in (lo, hi]; returns the earliest affected minute."""
        clock = _Steps(report.steps)
        traces, minutes = rollups.touched(cur, lo, hi)
        costs = compute_costs(rollups.llm_spans(cur, traces), self.prices)
        self._save_costs(costs)
        clock.lap("costs")
        summaries = rollups.trace_features(cur, traces)
        self._save_features(summaries, traces)
        clock.lap("trace_features")
        rollup, errors, calls = rollups.minute_rollups(cur, minutes)
        self._save_minutes(minutes, rollup, errors, calls)
        clock.lap("minute_rollups")
        found = self._trace_anomalies(cur, summaries, now)
        self._count(report, self._finish(found, JOB, hi, self._fingerprint(), now))
        clock.lap("trace_anomalies")
        report.add(dict(cur.execute(
            "SELECT project, count(*) FROM spans WHERE received_at > ? AND received_at <= ? GROUP BY ALL",
            [lo, hi]).fetchall()), "spans")  # fmt: skip
        report.add(_per_project(costs), "llm_spans")
        report.add(_per_project(summaries), "traces")
        if rollup.num_rows:  # a project's minutes: those it has rollup rows in
            seen = {(p, m) for p, m in zip(rollup["project"].to_pylist(), rollup["minute"].to_pylist(), strict=True)
                    if p is not None}  # fmt: skip
            for name, n in Counter(p for p, _ in seen).items():
                report.project(str(name)).minutes += n
        report.minutes += minutes.num_rows
        return rollups.earliest(minutes, "minute")

    # ── where results go: the database of the store (overridden by the ClickHouse runner) ─────
    def _save_costs(self, costs: pa.Table) -> None:
        def write(con: duckdb.DuckDBPyConnection) -> None:
            rollups.replace_rows(con, "span_costs", costs, ["trace_id", "span_id"])
            rollups.set_span_costs(con, costs)

        self._write(write)
        refresh_traces(self.store, costs["trace_id"].to_pylist())  # the `traces` view sums spans.cost_usd

    def _save_features(self, summaries: pa.Table, traces: pa.Table) -> None:
        self._write(
            lambda con: rollups.replace_rows(con, "trace_features", summaries, ["trace_id"], traces)
        )

    def _save_minutes(self, minutes: pa.Table, rollup: pa.Table, errors: pa.Table,
                      calls: pa.Table) -> None:  # fmt: skip
        def write(con: duckdb.DuckDBPyConnection) -> None:
            for table, rows in (("minute_rollup", rollup), ("error_minutes", errors), ("call_minutes", calls)):
                rollups.replace_rows(con, table, rows, ["minute"], minutes)

        self._write(write)

    def _finish(self, found: pa.Table, job: str, watermark: datetime, fingerprint: str | None,
                now: datetime) -> dict[tuple[str, str], int]:  # fmt: skip
        """Store the anomalies not stored yet and move the job's watermark, in one transaction;
        returns the new anomalies' count per (project, kind)."""

        def write(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], int]:
            new = queries.insert_anomalies(con, found)
            queries.write_state(con, job, watermark, fingerprint, now)
            return new

        return self._write(write)

    def _save_alerts(self, rows: pa.Table) -> None:
        self._write(lambda con: queries.upsert_alerts(con, rows))

    def _baseline(self, cur: duckdb.DuckDBPyConnection, lo: datetime, hi: datetime, per_group: int) -> pa.Table:
        return queries.baseline_traces(cur, lo, hi, per_group)

    def _trace_anomalies(self, cur: duckdb.DuckDBPyConnection, summaries: pa.Table,
                         now: datetime) -> pa.Table:  # fmt: skip
        if summaries.num_rows == 0:
            return anomaly.ANOMALY_SCHEMA.empty_table()
        cfg = self.rules.detection
        start = rollups.earliest(summaries, "start_time") - timedelta(days=cfg.baseline_days)
        end = pc.max(summaries["start_time"]).as_py()
        baseline = self._baseline(cur, start, end, cfg.max_baseline_traces)
        return pa.concat_tables([
            anomaly.trace_rules(summaries, cfg, now),
            anomaly.trace_outliers(summaries, baseline, cfg, now, self.scorer),
        ])  # fmt: skip

    def _windows(self, cur: duckdb.DuckDBPyConnection, affected_from: datetime | None, now: datetime,
                 report: RunReport) -> None:  # fmt: skip
        """Error-rate windows and per-minute series that completed (plus settle time) since last run."""
        cfg = self.rules.detection
        width = timedelta(minutes=cfg.error_rate_window_minutes)
        judged_to, _ = queries.read_state(cur, WINDOW_JOB)
        ready = now - timedelta(seconds=cfg.settle_seconds)
        ready = EPOCH + ((ready - EPOCH) // width) * width  # whole windows only
        starts = [t for t in (judged_to, affected_from) if t is not None]
        if not starts:
            return
        lo = EPOCH + ((min(starts) - EPOCH) // width) * width
        if lo >= ready:
            return
        found = [anomaly.error_rate_windows(queries.error_windows(cur, lo, ready, cfg.error_rate_window_minutes),
                                            cfg, now)]  # fmt: skip
        baseline_lo = lo - timedelta(minutes=cfg.series_baseline_minutes)
        found.append(
            anomaly.series_spikes(
                queries.minute_series(cur, baseline_lo, ready), lo, ready, cfg, now
            )
        )
        self._count(report, self._finish(pa.concat_tables(found), WINDOW_JOB, max(ready, judged_to or ready), None, now))

    @staticmethod
    def _count(report: RunReport, new: dict[tuple[str, str], int]) -> None:
        for (project, kind), n in new.items():
            part = report.project(project)
            for counts in (report.new_anomalies, part.new_anomalies):
                counts[kind] = counts.get(kind, 0) + n
            report.anomalies += n
            part.anomalies += n

    def _alerts(self, cur: duckdb.DuckDBPyConnection, now: datetime, report: RunReport) -> None:
        rules = self.rules.alerts
        if not rules:
            return
        longest = max(r.window_minutes for r in rules)
        observations = alerting.observe(
            rules,
            queries.recent_minutes(cur, now, longest),
            queries.recent_anomalies(cur, now, longest),
            now,
        )
        rows, fired, resolved = alerting.evaluate(observations, queries.open_alerts(cur), now)
        if rows.num_rows == 0:
            return
        self._save_alerts(rows)
        for alerts, what in ((fired, "alerts_fired"), (resolved, "alerts_resolved")):
            counts: dict[str, int] = {}
            for alert in alerts:  # an alert stored before analytics were per project has none
                name = alert.get("project")
                key = str(name) if isinstance(name, str) else ""
                counts[key] = counts.get(key, 0) + 1
            report.add(counts, what)
        for alert in fired + (resolved if self.rules.notify.notify_resolved else []):
            self.notifier.send(alert)
