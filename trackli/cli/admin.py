"""Administration verbs: `db`, `users`, `keys`."""

from __future__ import annotations

import argparse

from trackli.cli.base import EXIT_OK, Output, Verbs, table
from trackli.context import Context


def register(verbs: Verbs) -> None:
    db = verbs.add("db", "database migrations", cmd_db, migrate=False)
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    up = db_sub.add_parser("upgrade", help="apply migrations (safe to repeat)", parents=[verbs.common])
    up.add_argument("--adopt", action="store_true",
                    help="add Trackli's tables to a database that already has other tables")
    db_sub.add_parser("current", help="show the applied revision", parents=[verbs.common])

    users = verbs.add("users", "Trackli users", cmd_users)
    users_sub = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    add = users_sub.add_parser("add", help="add a user", parents=[verbs.common])
    add.add_argument("email")
    add.add_argument("--name", default="")
    users_sub.add_parser("list", help="list users", parents=[verbs.common])

    keys = verbs.add("keys", "the key that encrypts tokens at rest", cmd_keys)
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    keys_sub.add_parser("generate", help="print a new key", parents=[verbs.common])
    keys_sub.add_parser("rotate", help="re-encrypt every stored token with the first key of TRACKLI_SECRET_KEY",
                        parents=[verbs.common])


def cmd_db(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    from trackli import db

    if args.db_command == "upgrade":
        before = db.current_revision(ctx.engine)
        db.upgrade(ctx.engine, adopt=args.adopt)
        after = db.current_revision(ctx.engine)
        out.emit({"before": before, "after": after, "changed": before != after},
                 f"database at revision {after}" + ("" if before != after else " (already up to date)"))
    else:
        out.emit({"revision": db.current_revision(ctx.engine), "head": db.head_revision(ctx.engine)},
                 lambda d: f"revision {d['revision']} (head {d['head']})")
    return EXIT_OK


def cmd_users(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    from trackli import users

    with ctx.session() as session:
        if args.users_command == "add":
            user = users.add(session, args.email, args.name)
            data = {"id": user.id, "email": user.email, "display_name": user.display_name}
            out.emit(data, f"added user {user.email} (id {user.id})")
        else:
            rows = [{"id": u.id, "email": u.email, "display_name": u.display_name} for u in users.list_all(session)]
            out.emit(rows, lambda r: table(r, ["id", "email", "display_name"]))
    return EXIT_OK


def cmd_keys(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    from trackli import crypto

    if args.keys_command == "generate":
        key = crypto.generate_key()
        out.emit({"key": key}, key)
        return EXIT_OK
    counts = crypto.rotate_all(ctx)
    out.emit(counts, f"re-encrypted {counts['connections']} connection(s), {counts.get('oauth_states', 0)} sign-in(s) in "
                     f"flight and {counts.get('users', 0)} calendar feed(s) with the first key; the old key can now be "
                     "removed from TRACKLI_SECRET_KEY")
    return EXIT_OK

