"""`tracehouse sql "SELECT ..."`: one read-only query, printed as a table, CSV or JSON.

Through the running collector's /api/sql by default (DESIGN.md decision 1: the collector owns
the file); with --db, straight from a database file that no collector holds, opened read-only,
or from a ClickHouse store (``--db clickhouse://...`` or ``chdb://...``: ClickHouse SQL, the
same sandbox as the collector's; a server may be queried while collectors run).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from collector import sql_sandbox
from collector.backend import Backend, DuckDBBackend
from collector.cli import UserError
from collector.query import QueryTimeout
from collector.settings import Settings
from collector.store import Store, StoreLockedError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "sql", help='the query, e.g. "SELECT count(*) FROM traces"; "-" reads it from stdin'
    )
    parser.add_argument(
        "--format", choices=("table", "csv", "json"), default="table", help="output format"
    )
    parser.add_argument(
        "--db", metavar="PATH|URL",
        help="query this database file directly (its collector stopped), or a ClickHouse store URL",
    )
    parser.add_argument("--url", help="collector URL (default: TRACEHOUSE_API_URL)")


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    text = sys.stdin.read() if args.sql == "-" else args.sql
    result = (
        query_file(args.db, text, settings)
        if args.db
        else query_api(args.url or settings.api_url, text, settings)
    )
    print_result(result, args.format)
    return 0


def open_offline(path: Path) -> Store:
    """The database file of a stopped collector, read-only; one clear line when that is not possible."""
    if not path.is_file():
        raise UserError(f"no database file at {path}")
    try:
        return Store(path, read_only=True)
    except StoreLockedError:
        raise UserError(
            f"{path} is held by a running collector; query through it instead: drop --db "
            "(and set TRACEHOUSE_API_URL if it is not on the default address)"
        ) from None


def open_target(target: str, settings: Settings) -> Backend:
    """The backend of --db: a ClickHouse store URL (its schema left as it is) or a DuckDB file."""
    if re.match(r"^(clickhouses?|chdb)://", target):
        from collector.clickhouse.backend import ClickHouseBackend
        from collector.clickhouse.store import ClickHouseStore
        from collector.clickhouse.url import parse_store_url

        try:
            url = parse_store_url(target)
        except ValueError as exc:
            raise UserError(f"--db {target.split('@')[-1]}: {exc}") from None
        try:
            return ClickHouseBackend(ClickHouseStore(url, cluster=settings.clickhouse_cluster, apply_schema=False))
        except RuntimeError as exc:
            raise UserError(str(exc)) from None
    return DuckDBBackend(open_offline(Path(target)))


def query_file(target: str | Path, text: str, settings: Settings) -> dict[str, Any]:
    backend = open_target(str(target), settings)
    try:
        return backend.run_sql(
            backend.store, text, timeout_s=settings.sql_timeout_s, max_rows=settings.sql_max_rows,
            max_bytes=settings.sql_max_bytes,
        ).as_json()
    except (sql_sandbox.SQLRefused, sql_sandbox.SQLFailed, QueryTimeout) as exc:
        raise UserError(str(exc)) from None
    finally:
        backend.close()


def api_call(url: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One request to the collector; connection problems and error answers become one line."""
    try:
        response = httpx.request(method, url.rstrip("/") + path, headers=auth_headers(), **kwargs)
    except httpx.TransportError:
        raise unreachable(url) from None
    raise_for_answer(response)
    return response


def auth_headers() -> dict[str, str]:
    """TRACEHOUSE_API_KEY as a bearer token, for a collector that has keys."""
    key = Settings.from_env().api_key
    return {"authorization": f"Bearer {key}"} if key else {}


def unreachable(url: str) -> UserError:
    return UserError(
        f"cannot reach the collector at {url} (is it running? start it with 'tracehouse collector', "
        "or read a stopped collector's file with --db PATH)"
    )


def raise_for_answer(response: httpx.Response) -> None:
    """An error answer of the collector as one line (its JSON ``detail`` when it has one)."""
    if response.status_code < 400:
        return
    response.read()
    try:
        detail = str(response.json().get("detail", response.text))
    except ValueError:
        detail = response.text
    raise UserError(detail.splitlines()[0] if detail.strip() else f"HTTP {response.status_code}")


def query_api(url: str, text: str, settings: Settings) -> dict[str, Any]:
    return api_call(
        url, "POST", "/api/sql", json={"sql": text}, timeout=settings.sql_timeout_s + 10
    ).json()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def print_result(result: dict[str, Any], fmt: str) -> None:
    columns, rows = result["columns"], result["rows"]
    if fmt == "json":
        print(json.dumps(result, ensure_ascii=False))
        return
    if fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([_cell(v) for v in row] for row in rows)
    else:
        table = Table(*columns, show_lines=False)
        for row in rows:
            table.add_row(*(_cell(v) for v in row))
        Console().print(table)
        Console(stderr=True).print(
            f"[dim]{len(rows)} row{'s' * (len(rows) != 1)} in {result.get('elapsed_ms', 0):.1f} ms[/dim]"
        )
    if result.get("truncated"):
        print(
            f"tracehouse sql: only the first {len(rows)} rows are shown "
            "(TRACEHOUSE_SQL_MAX_ROWS, TRACEHOUSE_SQL_MAX_BYTES)",
            file=sys.stderr,
        )
