"""Connection verbs: `connect token`, `connections`, `sync`."""

from __future__ import annotations

import argparse

from trackli import connections, sync
from trackli.cli.base import EXIT_OK, EXIT_REMOTE, Output, Verbs, acting_user, table
from trackli.context import Context
from trackli.errors import UserError


def register(verbs: Verbs) -> None:
    connect = verbs.add("connect", "connect an Atlassian site", cmd_connect)
    kinds = connect.add_subparsers(dest="connect_command", metavar="KIND", required=True)
    token = kinds.add_parser("token", help="connect with an API token", parents=[verbs.common])
    token.add_argument("--site", required=True, metavar="URL")
    token.add_argument("--email", required=True)
    token.add_argument("--token", required=True)

    verbs.add("connections", "list your Atlassian connections", cmd_connections)
    run = verbs.add("sync", "fetch the Confluence tasks assigned to you into the approval queue", cmd_sync)
    run.add_argument("--dry-run", action="store_true",
                     help="fetch and print what the sync would do (new, changed, gone, cards to Done, conflicts); "
                          "write nothing")


def cmd_connect(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    user_id = acting_user(ctx, args)
    conn_id = connections.connect_api_token(ctx, user_id, args.site, args.email, args.token)
    with ctx.session() as session:
        conn = connections.get_connection(session, user_id, conn_id)
        data = {"id": conn.id, "site_url": conn.site_url, "account_id": conn.account_id, "status": conn.status}
    out.emit(data, f"connected {data['site_url']} as {data['account_id']} (connection {data['id']})")
    return EXIT_OK


def cmd_connections(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    user_id = acting_user(ctx, args)
    with ctx.session() as session:
        rows = [connections.describe(c) for c in connections.list_connections(session, user_id)]
    out.emit(rows, lambda r: table(r, ["id", "kind", "site_url", "account_id", "status", "last_error"]))
    return EXIT_OK


def cmd_sync(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    user_id = acting_user(ctx, args)
    if args.dry_run:
        return _dry_run(ctx, user_id, out)
    results = sync.sync_user(ctx, user_id, "cli")
    if not results:
        raise UserError("no Atlassian connection: connect one with `trackli connect token` or on the Connect page")
    out.emit([r.as_dict() for r in results],
             "\n".join(f"connection {r.connection_id}: {sync.summary(r)}" for r in results))
    for r in results:
        if r.outcome == "already_running":
            out.error(f"connection {r.connection_id}: {sync.summary(r)}")
    return EXIT_OK if all(r.outcome == "ok" for r in results) else EXIT_REMOTE


def _dry_run(ctx: Context, user_id: int, out: Output) -> int:
    with ctx.session() as session:
        ids = [c.id for c in connections.list_connections(session, user_id) if c.access_token_enc]
    if not ids:
        raise UserError("no Atlassian connection: connect one with `trackli connect token` or on the Connect page")
    plans = [sync.dry_run(ctx, cid, user_id=user_id) for cid in ids]

    def words(p: dict) -> str:
        return (f"connection {p['connection_id']} ({p['site']}): would add {p['new']} new task(s), update "
                f"{p['changed']}, leave {p['unchanged']} unchanged, mark {p['gone']} gone; move {p['cards_to_done']} "
                f"card(s) to Done, flag {p['conflicts']} conflict(s), mark {p['cards_gone']} card(s) gone upstream "
                f"and {p['cards_back']} back — nothing written ({p['requests']} requests, {p['points']} points)")
    out.emit(plans, "\n".join(words(p) for p in plans))
    return EXIT_OK
