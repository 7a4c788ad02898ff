"""`trackli` command line: the parser built from the command modules, and `main`.

Exit codes: 0 success, 1 user error (bad input, a rule of the product), 2 remote or connection
problem. Each module in this package owns its verbs and their parsers.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from sqlalchemy.exc import OperationalError

from trackli import __version__
from trackli.cli import admin, board, connections, demo, ops, queue
from trackli.cli.base import EXIT_OK, EXIT_REMOTE, EXIT_USER, Handler, Output
from trackli.config import ConfigError, load_settings
from trackli.context import Context
from trackli.errors import TrackliError, UserError

GROUPS = (admin, board, queue, connections, ops, demo)


class _Verbs:
    def __init__(self, sub: "argparse._SubParsersAction[argparse.ArgumentParser]", common: argparse.ArgumentParser):
        self.sub, self.common = sub, common

    def add(self, name: str, help: str, handler: Handler | None = None, *, migrate: bool = True,
            aliases: Sequence[str] = ()) -> argparse.ArgumentParser:
        parser = self.sub.add_parser(name, help=help, parents=[self.common], aliases=list(aliases))
        parser.set_defaults(handler=handler, migrate=migrate)
        return parser


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--user", metavar="EMAIL", default=argparse.SUPPRESS, help="act as this user (default: the local user)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
    parser = argparse.ArgumentParser(
        prog="trackli", parents=[common],
        description="Trackli: Confluence tasks assigned to you, on your own board.",
    )
    parser.add_argument("--version", action="version", version=f"trackli {__version__}")
    verbs = _Verbs(parser.add_subparsers(dest="command", metavar="COMMAND"), common)
    for group in GROUPS:
        group.register(verbs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return EXIT_OK
    out = Output(getattr(args, "json", False))
    try:
        settings = load_settings()
        # `db upgrade` applies migrations itself; every other verb needs an up-to-date schema.
        ctx = Context.from_settings(settings, migrate=args.migrate)
        return int(args.handler(ctx, args, out))
    except (ConfigError, UserError) as exc:
        print(f"trackli: {exc}", file=sys.stderr)
        return EXIT_USER
    except TrackliError as exc:
        print(f"trackli: {exc}", file=sys.stderr)
        return EXIT_REMOTE
    except OperationalError as exc:
        reason = str(exc.orig).splitlines()[0] if exc.orig else str(exc).splitlines()[0]
        print(f"trackli: cannot use the database ({reason}); check TRACKLI_DATABASE_URL", file=sys.stderr)
        return EXIT_REMOTE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
