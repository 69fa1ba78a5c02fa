"""The `tracehouse` command. Each subcommand lives in its own module, imported only when used.

A command module exposes ``add_arguments(parser)`` and ``run(args) -> int``. Errors a person can
act on are raised as :class:`UserError` (or SettingsError / StoreLockedError) and printed as one
line, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from collector.settings import SettingsError
from collector.store import StoreLockedError

# name → (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "up": ("collector.up", "run the collector, the dashboard and demo traffic (the quickstart)"),
    "collector": ("collector.serve", "run the collector alone in the foreground"),
    "sql": ("collector.cli_sql", "run a read-only SQL query and print the result as a table"),
    "export": ("collector.cli_export", "write spans of a time range to Parquet or CSV"),
    "demo": ("sdk_shim.demo.cli", "send realistic multi-agent demo traffic to a collector over OTLP"),
    "analytics": ("analytics.cli", "run the analytics jobs now (in a running collector, else on the file)"),
    "keys": ("collector.cli_keys", "create, list or revoke API keys (through a running collector, else on the file)"),
    "dashboard": ("dashboard.serve", "run the Streamlit dashboard (talks to the collector's /api)"),
}


class UserError(Exception):
    """An error with a message a person can act on; printed as one line."""


def _top_parser() -> argparse.ArgumentParser:
    lines = "\n".join(f"  {name:<11} {help_}" for name, (_, help_) in COMMANDS.items())
    parser = argparse.ArgumentParser(
        prog="tracehouse",
        description="Tracehouse: observability for AI agents.",
        epilog=f"commands:\n{lines}\n\nRun 'tracehouse COMMAND --help' for a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=list(COMMANDS), metavar="COMMAND")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    top = _top_parser()
    if not argv or argv[0] in {"-h", "--help"}:
        top.print_help()
        return 0
    command = top.parse_args(argv[:1]).command
    module_name, help_ = COMMANDS[command]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"tracehouse {command}", description=help_)
    module.add_arguments(parser)
    args = parser.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except (UserError, SettingsError, StoreLockedError) as exc:
        for line in str(exc).splitlines():
            print(f"tracehouse {command}: error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    # Run the imported module, not this __main__ copy: command modules raise collector.cli.UserError,
    # which this copy's except clause would not catch.
    from collector.cli import main as _main

    sys.exit(_main())
