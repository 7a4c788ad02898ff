"""`trackli` command line. Exit codes: 0 success, 1 user error, 2 remote or connection problem.

Every verb takes `--user EMAIL` (default: the local user) and `--json` (machine-readable output on
stdout and nothing else there; messages go to stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, Sequence

from sqlalchemy.exc import OperationalError

from trackli import __version__
from trackli.config import ConfigError, load_settings
from trackli.context import Context
from trackli.errors import TrackliError, UserError

EXIT_OK, EXIT_USER, EXIT_REMOTE = 0, 1, 2

COMMANDS: dict[str, Callable[[Context, argparse.Namespace], Any]] = {}


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


def command(name: str):
    def register(fn):
        COMMANDS[name] = fn
        return fn

    return register


def _table(rows: list[dict], columns: Sequence[str]) -> str:
    if not rows:
        return "(none)"
    widths = {c: max(len(c), *(len(str(r.get(c) if r.get(c) is not None else "")) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(min(widths[c], 60)) for c in columns)]
    for r in rows:
        lines.append("  ".join(str(r.get(c) if r.get(c) is not None else "")[:60].ljust(min(widths[c], 60)) for c in columns))
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--user", metavar="EMAIL", default=argparse.SUPPRESS, help="act as this user (default: the local user)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")

    parser = argparse.ArgumentParser(
        prog="trackli", parents=[common],
        description="Trackli: Confluence tasks assigned to you, on your own board.",
    )
    parser.add_argument("--version", action="version", version=f"trackli {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help: str, **kw) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, parents=[common], **kw)

    db = add("db", "database migrations")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    db_sub.add_parser("upgrade", help="apply migrations (safe to repeat)", parents=[common])
    db_sub.add_parser("current", help="show the applied revision", parents=[common])

    users = add("users", "Trackli users")
    users_sub = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    ua = users_sub.add_parser("add", help="add a user", parents=[common])
    ua.add_argument("email")
    ua.add_argument("--name", default="")
    users_sub.add_parser("list", help="list users", parents=[common])

    projects = add("projects", "your projects")
    projects_sub = projects.add_subparsers(dest="projects_command", metavar="ACTION", required=True)
    pa = projects_sub.add_parser("add", help="add a project", parents=[common])
    pa.add_argument("name")
    pa.add_argument("--colour", default="#4C6EF5")
    projects_sub.add_parser("list", help="list projects", parents=[common])

    tasks = add("tasks", "list your cards")
    tasks.add_argument("--status", default=None)
    tasks.add_argument("--project", default=None)

    new = add("add", "add a manual card")
    new.add_argument("title")
    new.add_argument("--project", default=None)
    new.add_argument("--status", default="todo")
    new.add_argument("--due", default=None, metavar="YYYY-MM-DD")

    move = add("move", "move a card to another column")
    move.add_argument("task_id", type=int)
    move.add_argument("status")
    move.add_argument("--position", type=int, default=None)

    connect = add("connect", "connect an Atlassian site")
    connect_sub = connect.add_subparsers(dest="connect_command", metavar="KIND", required=True)
    ct = connect_sub.add_parser("token", help="connect with an API token", parents=[common])
    ct.add_argument("--site", required=True, metavar="URL")
    ct.add_argument("--email", required=True)
    ct.add_argument("--token", required=True)

    add("connections", "list your Atlassian connections")
    add("sync", "fetch the Confluence tasks assigned to you into the approval queue")

    pending = add("pending", "the approval queue")
    pending.add_argument("--state", default="pending", choices=["pending", "dismissed", "approved", "gone", "all"])

    edit = add("edit", "edit a pending task before approving it")
    edit.add_argument("pending_id", type=int)
    edit.add_argument("--title")
    edit.add_argument("--due", metavar="YYYY-MM-DD|none")
    edit.add_argument("--project", metavar="NAME")

    approve = add("approve", "turn pending tasks into cards")
    approve.add_argument("pending_ids", type=int, nargs="*")
    approve.add_argument("--all", action="store_true", help="approve every pending task")
    approve.add_argument("--project", metavar="NAME", help="project for cards that have none")

    for name, helptext in (("dismiss", "dismiss pending tasks"), ("restore", "bring dismissed tasks back")):
        p = add(name, helptext)
        p.add_argument("pending_ids", type=int, nargs="+")

    ob = add("outbox", "completion changes waiting for Confluence")
    ob.add_argument("--drain", action="store_true", help="send them now")

    au = add("audit", "the integration audit log, newest first")
    au.add_argument("--limit", type=int, default=50)

    worker = add("worker", "sync and drain on a schedule until stopped")
    worker.add_argument("--every", type=float, default=300.0, metavar="SECONDS")
    worker.add_argument("--once", action="store_true", help="run one cycle and exit")

    keys = add("keys", "the key that encrypts tokens at rest")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    keys_sub.add_parser("generate", help="print a new key", parents=[common])
    keys_sub.add_parser("rotate", help="re-encrypt every stored token with the first key of TRACKLI_SECRET_KEY",
                        parents=[common])

    sim = add("simulator", "serve the simulated Atlassian on 127.0.0.1")
    sim.add_argument("--port", type=int, default=8765)
    sim.add_argument("--tasks", type=int, default=60)
    sim.add_argument("--pages", type=int, default=20)
    sim.add_argument("--spaces", type=int, default=4)
    sim.add_argument("--blogposts", type=int, default=3)
    sim.add_argument("--auto-approve", action="store_true")

    demo = add("demo", "start the simulated Atlassian and the dashboard, already connected")
    demo.add_argument("--port", type=int, default=8501, help="dashboard port")
    demo.add_argument("--sim-port", type=int, default=8765)
    demo.add_argument("--tasks", type=int, default=40)
    return parser


def _acting_user(ctx: Context, args: argparse.Namespace) -> int:
    from trackli import users

    with ctx.session() as session:
        return users.resolve(session, getattr(args, "user", None)).id


@command("db")
def cmd_db(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    from trackli import db

    if args.db_command == "upgrade":
        before = db.current_revision(ctx.engine)
        db.upgrade(ctx.engine)
        after = db.current_revision(ctx.engine)
        out.emit({"before": before, "after": after, "changed": before != after},
                 f"database at revision {after}" + ("" if before != after else " (already up to date)"))
    else:
        out.emit({"revision": db.current_revision(ctx.engine), "head": db.head_revision(ctx.engine)},
                 lambda d: f"revision {d['revision']} (head {d['head']})")
    return EXIT_OK


@command("users")
def cmd_users(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    from trackli import users

    with ctx.session() as session:
        if args.users_command == "add":
            user = users.add(session, args.email, args.name)
            data = {"id": user.id, "email": user.email, "display_name": user.display_name}
            out.emit(data, f"added user {user.email} (id {user.id})")
        else:
            rows = [{"id": u.id, "email": u.email, "display_name": u.display_name} for u in users.list_all(session)]
            out.emit(rows, lambda r: _table(r, ["id", "email", "display_name"]))
    return EXIT_OK


@command("projects")
def cmd_projects(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    from trackli import board

    user_id = _acting_user(ctx, args)
    with ctx.session() as session:
        if args.projects_command == "add":
            p = board.create_project(session, user_id, args.name, args.colour)
            out.emit({"id": p.id, "name": p.name, "colour": p.colour}, f"added project {p.name!r} (id {p.id})")
        else:
            rows = [{"id": p.id, "name": p.name, "colour": p.colour, "archived": p.archived}
                    for p in board.list_projects(session, user_id, include_archived=True)]
            out.emit(rows, lambda r: _table(r, ["id", "name", "colour", "archived"]))
    return EXIT_OK


@command("tasks")
def cmd_tasks(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    from trackli import board

    user_id = _acting_user(ctx, args)
    with ctx.session() as session:
        project_id = board.resolve_project(session, user_id, args.project)
        rows = [c.as_dict() for c in board.list_cards(session, user_id, project_id=project_id, status=args.status)]
    out.emit(rows, lambda r: _table(r, ["id", "status", "title", "project", "due_date", "source", "sync_state"]))
    return EXIT_OK


@command("add")
def cmd_add(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    from trackli import board

    user_id = _acting_user(ctx, args)
    with ctx.session() as session:
        project_id = board.resolve_project(session, user_id, args.project)
        card = board.create_card(session, user_id, args.title, project_id=project_id, status=args.status, due_date=args.due)
        card_id = card.id
        data = next(c.as_dict() for c in board.list_cards(session, user_id) if c.id == card_id)
    out.emit(data, f"added card {card_id}")
    return EXIT_OK


@command("move")
def cmd_move(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    from trackli import board

    user_id = _acting_user(ctx, args)
    with ctx.session() as session:
        card = board.move_card(session, user_id, args.task_id, args.status, args.position)
        data = {"id": card.id, "status": card.status, "position": card.position, "sync_state": card.sync_state}
    out.emit(data, f"card {data['id']} is now in {data['status']}" + (
        " (completion sync queued)" if data["sync_state"] == "waiting" else ""))
    return EXIT_OK


from trackli.cli_integration import *  # noqa: E402,F401,F403  (registers the integration verbs)


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
        ctx = Context.from_settings(settings, migrate=args.command not in ("db", "simulator", "demo"))
        return COMMANDS[args.command](ctx, args, out)
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
