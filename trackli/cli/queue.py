"""Approval-queue verbs: `pending`, `edit`, `approve`, `dismiss`, `restore`."""

from __future__ import annotations

import argparse
from typing import Any, Callable

from sqlalchemy.orm import Session

from trackli import board_view, queue, snooze
from trackli.cli.base import EXIT_OK, Handler, Output, Verbs, acting_user, record_id, table
from trackli.context import Context
from trackli.errors import UserError


def register(verbs: Verbs) -> None:
    pending = verbs.add("pending", "the approval queue", cmd_pending)
    pending.add_argument("--state", default="pending", choices=list(queue.QUEUE_STATES))

    edit = verbs.add("edit", "edit a pending task before approving it", cmd_edit)
    edit.add_argument("pending_id", type=record_id)
    edit.add_argument("--title")
    edit.add_argument("--due", metavar="YYYY-MM-DD|none")
    edit.add_argument("--project", metavar="NAME")

    approve = verbs.add("approve", "turn pending tasks into cards", cmd_approve)
    approve.add_argument("pending_ids", type=record_id, nargs="*")
    approve.add_argument("--all", action="store_true", help="approve every pending task")
    approve.add_argument("--project", metavar="NAME", help="project for cards that have none")

    verbs.add("dismiss", "dismiss pending tasks", cmd_dismiss).add_argument("pending_ids", type=record_id, nargs="+")
    verbs.add("restore", "bring dismissed tasks back", cmd_restore).add_argument("pending_ids", type=record_id, nargs="+")


def cmd_pending(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    user_id = acting_user(ctx, args)
    with ctx.session() as session:
        snooze.wake(session, user_id)  # a snooze whose day has come is over, worker or not
    with ctx.session() as session:
        rows = [p.as_dict() for p in queue.list_pending(session, user_id, args.state)]
    columns = ["id", "state", "title", "due_date", "space_key", "page_title", "project"]
    out.emit(rows, lambda r: table(r, columns + (["snoozed_until"] if args.state == "snoozed" else ["rule"])))
    return EXIT_OK


def cmd_edit(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    user_id = acting_user(ctx, args)
    changes: dict[str, Any] = {}
    if args.title is not None:
        changes["title"] = args.title
    if args.due is not None:
        changes["due_date"] = args.due
    if args.project is not None:
        changes["project"] = args.project
    if not changes:
        raise UserError("nothing to change: give --title, --due or --project")
    with ctx.session() as session:
        queue.edit_pending(session, user_id, args.pending_id, **changes)
    with ctx.session() as session:
        [row] = [p for p in queue.list_pending(session, user_id, "all") if p.id == args.pending_id]
    out.emit(row.as_dict(), f"pending task {row.id} updated")
    return EXIT_OK


def cmd_approve(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    user_id = acting_user(ctx, args)
    if not args.pending_ids and not args.all:
        raise UserError("name pending task ids, or use --all")
    with ctx.session() as session:
        cards = queue.approve(session, user_id, args.pending_ids, all_pending=args.all, project=args.project)
        ids = {c.id for c in cards}
    with ctx.session() as session:
        rows = [c.as_dict() for c in board_view.list_cards(session, user_id) if c.id in ids]
    out.emit(rows, f"{len(rows)} card(s) on the board")
    return EXIT_OK


def _changes_state(action: Callable[[Session, int, list[int]], int], done: str) -> Handler:
    """`dismiss` and `restore`: change the named rows, say how many, e.g. {"dismissed": 2}."""
    def handler(ctx: Context, args: argparse.Namespace, out: Output) -> int:
        user_id = acting_user(ctx, args)
        with ctx.session() as session:
            count = action(session, user_id, args.pending_ids)
        out.emit({done: count}, f"{count} {done}")
        return EXIT_OK
    return handler


cmd_dismiss = _changes_state(queue.dismiss, "dismissed")
cmd_restore = _changes_state(queue.restore, "restored")
