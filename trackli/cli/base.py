"""What every command module shares: exit codes, output, tables, the acting user, the parser helper.

Every verb takes `--user EMAIL` (default: the local user) and `--json` (machine-readable output on
stdout and nothing else there; messages go to stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, Protocol, Sequence

from trackli.models import MAX_ID
from trackli.context import Context

EXIT_OK, EXIT_USER, EXIT_REMOTE = 0, 1, 2


class UsageError(Exception):
    """The command line itself is wrong (exit 1, like any other user error)."""


def record_id(text: str) -> int:
    """An id on the command line: a whole number from 1 to 2147483647."""
    if not text.strip().isdigit() or not 1 <= int(text) <= MAX_ID:
        raise argparse.ArgumentTypeError(f"{text!r} is not an id: use a whole number from 1 to {MAX_ID}")
    return int(text)


def count(text: str) -> int:
    """A positive count (`--limit`), at most a million."""
    if not text.strip().isdigit() or not 1 <= int(text) <= 1_000_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count: use a whole number from 1 to 1000000")
    return int(text)


def seconds(text: str) -> float:
    """A duration in seconds (`--every`): up to a day (0: due again at once, for tests and demos)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value <= 86400:  # also false for nan and inf
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds: use 0 to 86400")
    return value


class Output:
    def __init__(self, as_json: bool):
        self.as_json = as_json

    def error(self, message: str) -> None:
        """One line on stderr: `trackli: message`, or `{"error": message}` with --json."""
        if self.as_json:
            print(json.dumps({"error": message}, ensure_ascii=False), file=sys.stderr)
        else:
            print(f"trackli: {message}", file=sys.stderr)

    def emit(self, data: Any, text: Callable[[Any], str] | str | None = None) -> None:
        if self.as_json:
            json.dump(data, sys.stdout, indent=2, default=str, ensure_ascii=False)
            sys.stdout.write("\n")
        elif text is not None:
            print(text(data) if callable(text) else text)
        else:
            print(json.dumps(data, indent=2, default=str, ensure_ascii=False))


Handler = Callable[[Context, argparse.Namespace, Output], int]


class Verbs(Protocol):
    """Adds a command group's verbs: `verbs.add(name, help, handler)` returns the verb's parser;
    sub-actions take `parents=[verbs.common]` so `--user` and `--json` work after them too."""

    common: argparse.ArgumentParser

    def add(self, name: str, help: str, handler: Handler | None = None, *, migrate: bool = True,
            aliases: Sequence[str] = ()) -> argparse.ArgumentParser: ...


def table(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    if not rows:
        return "(none)"

    def cell(row: dict[str, Any], column: str) -> str:
        value = row.get(column)
        return "" if value is None else str(value)

    widths = {c: min(60, max(len(c), *(len(cell(r, c)) for r in rows))) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines += ["  ".join(cell(r, c)[:60].ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(lines)


def acting_user(ctx: Context, args: argparse.Namespace) -> int:
    from trackli import users

    with ctx.session() as session:
        return users.resolve(session, getattr(args, "user", None)).id
