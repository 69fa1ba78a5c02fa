"""`tracehouse keys create|list|revoke`: API keys in the database file.

Works on the file directly, so the collector must be stopped (one process owns the file); a
running collector loads the keys at start-up. The secret of a new key is printed once.
"""

from __future__ import annotations

import argparse

from collector import keys
from collector.settings import Settings
from collector.store import Store


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=None, help="database file (default: TRACEHOUSE_DB)")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = sub.add_parser("create", help="make a key and print it (shown only this once)")
    create.add_argument("--project", required=True, help="project the key writes to or reads")
    create.add_argument("--kind", required=True, choices=keys.KINDS, help="ingest: OTLP export; read: API, SQL, dashboard")
    create.add_argument("--name", default=None, help="a note: who or what uses the key")
    sub.add_parser("list", help="list keys (ids, projects, kinds; never secrets)")
    generate = sub.add_parser("generate", help="print a new key without storing it (for TRACEHOUSE_*_KEYS)")
    generate.add_argument("--kind", required=True, choices=keys.KINDS)
    revoke = sub.add_parser("revoke", help="revoke a key by its id (or the whole key)")
    revoke.add_argument("key_id")


def run(args: argparse.Namespace) -> int:
    from collector.cli import UserError

    if args.action == "generate":  # no database: the key lives in the environment
        print(keys.generate(args.kind))
        return 0
    settings = Settings.from_env()
    if settings.store and not args.db:
        # Keys made here would go to the DuckDB file, which a ClickHouse collector never reads.
        raise UserError(
            "TRACEHOUSE_STORE is a ClickHouse store: its collectors take keys from TRACEHOUSE_INGEST_KEYS / "
            "TRACEHOUSE_READ_KEYS; make one with 'tracehouse keys generate --kind ingest|read'"
        )
    store = Store(args.db or settings.db)  # StoreLockedError while a collector runs
    con = store.write_connection
    try:
        if args.action == "create":
            try:
                key = keys.create(con, args.project, args.kind, args.name)
            except keys.KeyError_ as exc:
                raise UserError(str(exc)) from None
            print(key)
            print(f"({args.kind} key for project {args.project}; store it now, it is not shown again. "
                  "A running collector loads new keys when restarted.)")
        elif args.action == "list":
            print(f"{'key id':<14} {'project':<20} {'kind':<7} {'created':<20} {'status':<22} name")
            for info in keys.list_keys(con):
                status = f"revoked {info.revoked_at:%Y-%m-%d %H:%M}" if info.revoked_at else "active"
                print(f"{info.key_id:<14} {info.project:<20} {info.kind:<7} {info.created_at:%Y-%m-%d %H:%M:%S}"
                      f"  {status:<22} {info.name or ''}")
        elif not keys.revoke(con, args.key_id):
            raise UserError(f"no active key with id {args.key_id!r} (see 'tracehouse keys list')")
        else:
            print(f"revoked {args.key_id}; a running collector stops accepting it when restarted")
    finally:
        store.close()
    return 0
