"""`trackli` command line: the parser built from the command modules, and `main`.

Exit codes: 0 success, 1 user error (bad input, a rule of the product), 2 remote or connection
problem. Each module in this package owns its verbs and their parsers.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import NoReturn, Sequence

from alembic.util.exc import CommandError
from sqlalchemy.exc import DatabaseError

from trackli import __version__, memory
from trackli.cli import admin, board, connections, demo, ops, queue, triage
from trackli.cli.base import EXIT_OK, EXIT_REMOTE, EXIT_USER, Handler, Output, UsageError
from trackli.config import ConfigError, load_settings
from trackli.context import Context
from trackli.errors import TrackliError, UserError

GROUPS = (admin, board, queue, triage, connections, ops, demo)


log = logging.getLogger("trackli.cli")


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line as a user error (exit 1), in JSON with --json."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


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
    common.add_argument("--demo", action="store_true", default=argparse.SUPPRESS,
                        help="act on the data of `trackli demo` (its database under the data directory)")
    parser = Parser(
        prog="trackli", parents=[common],
        description="Trackli: Confluence tasks assigned to you, on your own board.",
    )
    parser.add_argument("--version", action="version", version=f"trackli {__version__}")
    verbs = _Verbs(parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser), common)
    for group in GROUPS:
        group.register(verbs)
    return parser


EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a Unix tool killed by a closed pipe reports


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    memory.limit_malloc_arenas()  # before any sync thread allocates (see trackli.memory)
    out = Output("--json" in argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        out.error(str(exc))
        return EXIT_USER
    if not args.command:
        parser.print_help()
        return EXIT_OK
    try:
        settings = load_settings()
        if getattr(args, "demo", False):
            settings = load_settings(env={**os.environ, **demo.demo_data(settings.data_dir)})
        # `db upgrade` applies migrations itself; every other verb needs an up-to-date schema.
        ctx = Context.from_settings(settings, migrate=args.migrate)
        code = int(args.handler(ctx, args, out))
        sys.stdout.flush()  # a closed pipe shows here, inside the handler's care, not at exit
        return code
    except BrokenPipeError:  # `trackli … | head`: the reader has what it wanted; end quietly, as Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except (ConfigError, UserError) as exc:
        out.error(str(exc))
        return EXIT_USER
    except TrackliError as exc:
        out.error(str(exc))
        return EXIT_REMOTE
    except (DatabaseError, CommandError) as exc:
        out.error(f"cannot use the database ({_first_line(exc)}); check TRACKLI_DATABASE_URL and that the "
                  "database is running and is a Trackli database")
        return EXIT_REMOTE
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: one line for the person, the traceback only when asked for
        log.debug("unexpected error", exc_info=True)
        out.error(f"unexpected error ({type(exc).__name__}): {_first_line(exc)}"
                  + ("" if os.environ.get("TRACKLI_DEBUG") else "; run again with TRACKLI_DEBUG=1 for details"))
        if os.environ.get("TRACKLI_DEBUG"):
            raise
        return EXIT_REMOTE


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return (text.splitlines() or [type(exc).__name__])[0][:300]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
