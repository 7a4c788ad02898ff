"""Board verbs: `projects`, `tasks` (alias `cards`), `add`, `move`."""

from __future__ import annotations

import argparse
from typing import Any

from trackli import board, board_view, completion, projects
from trackli.cli.base import EXIT_OK, EXIT_REMOTE, Output, Verbs, acting_user, record_id, table
from trackli.context import Context


def register(verbs: Verbs) -> None:
    group = verbs.add("projects", "your projects", cmd_projects)
    projects_sub = group.add_subparsers(dest="projects_command", metavar="ACTION", required=True)
    add = projects_sub.add_parser("add", help="add a project", parents=[verbs.common])
    add.add_argument("name")
    add.add_argument("--colour", default=None, help="#RRGGBB (default: the next colour no project of yours has)")
    projects_sub.add_parser("list", help="list projects", parents=[verbs.common])

    tasks = verbs.add("tasks", "list your cards", cmd_tasks, aliases=["cards"])
    tasks.add_argument("--status", default=None)
    tasks.add_argument("--project", default=None)

    new = verbs.add("add", "add a manual card", cmd_add)
    new.add_argument("title")
    new.add_argument("--project", default=None)
    new.add_argument("--status", default="todo")
    new.add_argument("--due", default=None, metavar="YYYY-MM-DD")

    move = verbs.add("move", "move a card to another column", cmd_move)
    move.add_argument("card_id", type=record_id, help="the card's id (trackli tasks lists them)")
    move.add_argument("status")
    move.add_argument("--position", type=int, default=None)
    move.add_argument("--now", action="store_true", help="send the completion to Confluence before returning")


def cmd_projects(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    user_id = acting_user(ctx, args)
    with ctx.session() as session:
        if args.projects_command == "add":
            p = projects.create_project(session, user_id, args.name, args.colour)
            out.emit({"id": p.id, "name": p.name, "colour": p.colour}, f"added project {p.name!r} (id {p.id})")
        else:
            rows = [{"id": p.id, "name": p.name, "colour": p.colour, "archived": p.archived}
                    for p in projects.list_projects(session, user_id, include_archived=True)]
            out.emit(rows, lambda r: table(r, ["id", "name", "colour", "archived"]))
    return EXIT_OK


def cmd_tasks(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    user_id = acting_user(ctx, args)
    with ctx.session() as session:
        project_id = projects.resolve_project(session, user_id, args.project)
        rows = [c.as_dict() for c in board_view.list_cards(session, user_id, project_id=project_id, status=args.status)]
    out.emit(rows, lambda r: table(r, ["id", "status", "title", "project", "due_date", "source", "sync_state"]))
    return EXIT_OK


def cmd_add(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    user_id = acting_user(ctx, args)
    with ctx.session() as session:
        project_id = projects.resolve_project(session, user_id, args.project)
        card = board.create_card(session, user_id, args.title, project_id=project_id, status=args.status, due_date=args.due)
        card_id = card.id
        data = next(c.as_dict() for c in board_view.list_cards(session, user_id) if c.id == card_id)
    out.emit(data, f"added card {card_id}")
    return EXIT_OK


def cmd_move(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    user_id = acting_user(ctx, args)
    with ctx.session() as session:
        card = board.move_card(session, user_id, args.card_id, args.status, args.position)
        card_id = card.id
        data: dict[str, Any] = {"id": card.id, "status": card.status, "position": card.position,
                                "sync_state": card.sync_state}
    if args.now and data["sync_state"] == "waiting":
        drained = completion.drain(ctx, user_id=user_id, card_id=card_id)
        with ctx.session() as session:
            card = board.get_card(session, user_id, card_id)
            data |= {"sync_state": card.sync_state, "sync_error": card.sync_error, "sent": drained.sent}
    text = f"card {data['id']} is now in {data['status']}"
    if data["sync_state"] == "waiting":
        text += "; Confluence is updated by the next drain (the worker, `trackli outbox --drain`, or --now)"
    elif args.now and data.get("sent"):
        text += "; Confluence is updated"
    elif data["sync_state"] == "failed":
        text += f"; Confluence was not updated: {data.get('sync_error')}"
    out.emit(data, text)
    return EXIT_REMOTE if data["sync_state"] == "failed" else EXIT_OK
