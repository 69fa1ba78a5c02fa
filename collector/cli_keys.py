"""`tracehouse keys create|list|revoke|generate`: API keys, through a running collector or in the file.

Without ``--db`` the command asks the collector at ``TRACEHOUSE_API_URL`` (``/api/keys``, with
the admin key in ``TRACEHOUSE_API_KEY``; none needed while the collector has no key at all): the
collector owns the database file while it runs, and a key made or revoked there counts at once.
When no collector answers, it opens ``TRACEHOUSE_DB`` itself. With ``--db`` it works on that
file only (its collector stopped). The secret of a new key is printed once.
"""

from __future__ import annotations

import argparse
from typing import Any

import httpx

from collector import keys
from collector.cli_sql import auth_headers
from collector.settings import Settings
from collector.store import Store, StoreLockedError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=None, help="work on this database file (its collector stopped)")
    parser.add_argument("--api-url", default=None, help="collector to ask (default: TRACEHOUSE_API_URL)")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = sub.add_parser("create", help="make a key and print it (shown only this once)")
    create.add_argument("--project", default=None, help="project an ingest or read key writes to or reads")
    create.add_argument("--kind", required=True, choices=keys.KINDS,
                        help="ingest: OTLP export; read: API, SQL, dashboard; admin: manage keys, read every "
                             "project, metrics; metrics: /metrics only")  # fmt: skip
    create.add_argument("--name", default=None, help="a note: who or what uses the key")
    sub.add_parser("list", help="list keys (ids, projects, kinds; never secrets)")
    generate = sub.add_parser("generate", help="print a new key without storing it (for TRACEHOUSE_*_KEYS)")
    generate.add_argument("--kind", required=True, choices=keys.KINDS)
    revoke = sub.add_parser("revoke", help="revoke a key by its id (or the whole key)")
    revoke.add_argument("key_id")


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200]
    return str(body.get("detail", body)) if isinstance(body, dict) else str(body)


def _ask(url: str, method: str, path: str, **kwargs: Any) -> dict[str, Any] | None:
    """The collector's answer, or None when no collector answers at ``url``."""
    from collector.cli import UserError

    try:
        response = httpx.request(method, f"{url.rstrip('/')}/api/keys{path}", headers=auth_headers(),
                                 timeout=30, **kwargs)  # fmt: skip
    except httpx.TransportError:
        return None
    if response.status_code in (401, 403):
        raise UserError(f"collector at {url} refused key management ({_detail(response)}): set TRACEHOUSE_API_KEY "
                        "to an admin key (make one with the collector stopped: tracehouse keys create --kind admin; "
                        "or start it with TRACEHOUSE_ADMIN_KEYS)")  # fmt: skip
    if response.status_code >= 400:
        raise UserError(f"collector at {url}: {_detail(response)} (HTTP {response.status_code})")
    return response.json()


def _print_created(key: str, kind: str, project: str | None, where: str) -> None:
    owner = f"project {project}" if project else "no project"
    print(key)
    print(f"({kind} key, {owner}, stored {where}; store it now, it is not shown again.)")


def _print_list(infos: list[keys.KeyInfo]) -> None:
    print(f"{'key id':<14} {'project':<20} {'kind':<8} {'created':<20} {'status':<22} name")
    for info in infos:
        status = f"revoked {info.revoked_at:%Y-%m-%d %H:%M}" if info.revoked_at else "active"
        created = f"{info.created_at:%Y-%m-%d %H:%M:%S}" if info.created_at else "(environment)"
        print(f"{info.key_id:<14} {info.project or '(all)':<20} {info.kind:<8} {created:<20}"
              f"  {status:<22} {info.name or ''}")  # fmt: skip


def _through_api(args: argparse.Namespace, url: str) -> bool:
    """Do the action on the collector at ``url``; False when none answers there."""
    from datetime import datetime

    if args.action == "create":
        body = {"kind": args.kind, "project": args.project, "name": args.name}
        answer = _ask(url, "POST", "", json=body)
        if answer is None:
            return False
        _print_created(answer["key"], answer["kind"], answer["project"], f"by the collector at {url}, in use now")
    elif args.action == "list":
        answer = _ask(url, "GET", "")
        if answer is None:
            return False
        stamp = lambda v: datetime.fromisoformat(v) if v else None  # noqa: E731
        _print_list([keys.KeyInfo(**{**k, "created_at": stamp(k["created_at"]), "revoked_at": stamp(k["revoked_at"])})
                     for k in answer["keys"]])  # fmt: skip
    else:
        answer = _ask(url, "DELETE", f"/{keys.key_id_of(args.key_id)}")
        if answer is None:
            return False
        print(f"revoked {answer['revoked']}; the collector at {url} refuses it from now on")
    return True


def _in_file(args: argparse.Namespace, path: str) -> None:
    from collector.cli import UserError

    try:
        store = Store(path)
    except StoreLockedError:
        raise UserError(f"{path} is held by a running collector: manage keys through it (drop --db; "
                        "TRACEHOUSE_API_URL names it)") from None  # fmt: skip
    con = store.write_connection
    try:
        if args.action == "create":
            try:
                key = keys.create(con, args.project, args.kind, args.name)
            except keys.KeyError_ as exc:
                raise UserError(str(exc)) from None
            _print_created(key, args.kind, args.project, f"in {path}; a collector started on it uses it")
        elif args.action == "list":
            _print_list(keys.list_keys(con))
        elif not keys.revoke(con, args.key_id):
            raise UserError(f"no active key with id {args.key_id!r} (see 'tracehouse keys list')")
        else:
            print(f"revoked {keys.key_id_of(args.key_id)} in {path}")
    finally:
        store.close()


def run(args: argparse.Namespace) -> int:
    from collector.cli import UserError

    if args.action == "generate":  # no database: the key lives in the environment
        print(keys.generate(args.kind))
        return 0
    if args.action == "create":
        try:
            keys.check_owner(args.kind, args.project)  # one line before anything is opened
        except keys.KeyError_ as exc:
            raise UserError(str(exc)) from None
    if args.db:
        _in_file(args, args.db)
        return 0
    settings = Settings.from_env(**({"api_url": args.api_url} if args.api_url else {}))
    if settings.store:
        # Keys made here would go to a DuckDB file, which a ClickHouse collector never reads.
        raise UserError(
            "TRACEHOUSE_STORE is a ClickHouse store: its collectors take keys from TRACEHOUSE_INGEST_KEYS / "
            "TRACEHOUSE_READ_KEYS / TRACEHOUSE_ADMIN_KEYS; make one with 'tracehouse keys generate --kind ...'"
        )
    if not _through_api(args, settings.api_url):
        if args.api_url:
            raise UserError(f"no collector answers at {args.api_url}")
        _in_file(args, settings.db)  # no collector runs: the file is free
    return 0
