"""`tracehouse analytics run`: run the analytics jobs now.

Asks a running collector (TRACEHOUSE_API_URL) to run them; when none answers, runs them here on
the database file (TRACEHOUSE_DB), which only works while no collector holds it, or on the
ClickHouse store (TRACEHOUSE_STORE), which any number of processes may use at once.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from analytics.pricing import PriceFileError
from analytics.rules import RulesFileError
from collector.cli_sql import auth_headers
from collector.cli import UserError
from collector.settings import Settings

if TYPE_CHECKING:
    from analytics.runner import AnalyticsRunner


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action", choices=["run"], help="run: process everything received since the last run"
    )
    parser.add_argument("--api-url", help="collector to ask (default: TRACEHOUSE_API_URL)")
    parser.add_argument(
        "--db", help="database file or ClickHouse store URL for an offline run (default: TRACEHOUSE_STORE or TRACEHOUSE_DB)"
    )
    parser.add_argument(
        "--offline", action="store_true", help="do not ask a collector; open the file"
    )
    parser.add_argument("--json", action="store_true", help="print the run report as JSON")


def _ask_collector(url: str) -> dict[str, Any] | None:
    """The collector's run report, or None when no collector answers at ``url``."""
    try:
        response = httpx.post(f"{url.rstrip('/')}/api/analytics/run", timeout=600.0, headers=auth_headers())
    except httpx.TransportError:
        return None
    if response.status_code != 200:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise UserError(
            f"collector at {url} refused the run (HTTP {response.status_code}: {detail})"
        )
    return response.json()


def _with_progress(runner: AnalyticsRunner, console: Console) -> dict[str, Any]:
    columns = (TextColumn("analytics"), BarColumn(), MofNCompleteColumn(), TextColumn("spans"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("spans", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        report = runner.run_now(progress=advance)
    runner.notifier.stop()
    return asdict(report)


def _run_offline(target: str, settings: Settings, console: Console) -> tuple[dict[str, Any], str]:
    """Run here, on ``target``: a DuckDB file (free only while no collector holds it) or a
    ClickHouse store URL (any number of processes may use one)."""
    from analytics import forest
    from analytics.offline import DirectWriter
    from analytics.runner import AnalyticsRunner  # noqa: F811 - the class, at run time
    from collector.store import Store

    # This command is its own short-lived process: the forests are fitted here, not in a child.

    if re.match(r"^(clickhouses?|chdb)://", target):
        from analytics.clickhouse_runner import ClickHouseAnalyticsRunner
        from collector.clickhouse.store import ClickHouseStore

        try:
            clickhouse = ClickHouseStore(target, cluster=settings.clickhouse_cluster)
        except (RuntimeError, ValueError) as exc:  # unreachable store, bad URL: one line
            raise UserError(str(exc)) from None
        try:
            runner = ClickHouseAnalyticsRunner(clickhouse.client, settings, scorer=forest.in_process)
            return _with_progress(runner, console), clickhouse.path
        finally:
            clickhouse.close()
    store = Store(target)
    try:
        runner = AnalyticsRunner(store, DirectWriter(store), settings, scorer=forest.in_process)
        return _with_progress(runner, console), target
    finally:
        store.close()


def run(args: argparse.Namespace) -> int:
    overrides = {k: v for k, v in (("api_url", args.api_url), ("db", args.db)) if v}
    settings = Settings.from_env(**overrides)
    console = Console(stderr=True)
    report = None if args.offline else _ask_collector(settings.api_url)
    where = f"collector at {settings.api_url}"
    if report is None:
        try:
            report, where = _run_offline(args.db or settings.store or settings.db, settings, console)
        except (PriceFileError, RulesFileError) as exc:
            raise UserError(str(exc)) from None
    if args.json:
        print(json.dumps(report, default=str))
        return 0
    found = ", ".join(f"{k} {v}" for k, v in sorted(report["new_anomalies"].items())) or "none"
    print(
        f"analytics run on {where}: {report['spans']:,} new spans, {report['llm_spans']:,} LLM calls priced, "
        f"{report['traces']:,} traces, {report['minutes']:,} minutes rolled up in {report['seconds']:.1f} s"
        f"{' (full recompute)' if report['backfill'] else ''}\n"
        f"new anomalies: {found}; alerts fired {report['alerts_fired']}, resolved {report['alerts_resolved']}"
    )
    return 0
