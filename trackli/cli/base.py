"""What every command module shares: exit codes, output, tables, the acting user, the parser helper.

Every verb takes `--user EMAIL` (default: the local user) and `--json` (machine-readable output on
stdout and nothing else there; messages go to stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, Protocol, Sequence

from trackli.context import Context

EXIT_OK, EXIT_USER, EXIT_REMOTE = 0, 1, 2


class Output:
    def __init__(self, as_json: bool):
        self.as_json = as_json

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
