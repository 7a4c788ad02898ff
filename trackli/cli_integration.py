"""CLI verbs of the Atlassian integration: connect, sync, the queue, the outbox, audit, worker, demo."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from trackli import audit, board, sync, users
from trackli.atlassian import connections
from trackli.cli import EXIT_OK, EXIT_REMOTE, Output, _acting_user, _table, command
from trackli.context import Context
from trackli.errors import UserError


@command("connect")
def cmd_connect(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    user_id = _acting_user(ctx, args)
    conn_id = connections.connect_api_token(ctx, user_id, args.site, args.email, args.token)
    with ctx.session() as session:
        conn = connections.get_connection(session, user_id, conn_id)
        data = {"id": conn.id, "site_url": conn.site_url, "account_id": conn.account_id, "status": conn.status}
    out.emit(data, f"connected {data['site_url']} as {data['account_id']} (connection {data['id']})")
    return EXIT_OK


@command("connections")
def cmd_connections(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    user_id = _acting_user(ctx, args)
    with ctx.session() as session:
        rows = [connections.describe(c) for c in connections.list_connections(session, user_id)]
    out.emit(rows, lambda r: _table(r, ["id", "kind", "site_url", "account_id", "status", "last_error"]))
    return EXIT_OK


@command("sync")
def cmd_sync(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    user_id = _acting_user(ctx, args)
    results = [r.as_dict() for r in sync.sync_user(ctx, user_id, "cli")]
    if not results:
        raise UserError("no Atlassian connection: connect one with `trackli connect token` or on the Connect page")

    def text(rows):
        return "\n".join(
            f"connection {r['connection_id']}: {r['outcome']}" + (
                f" — {r['new']} new, {r['updated']} updated, {r['unchanged']} unchanged, {r['gone']} gone, "
                f"{r['requests']} requests in {r['duration_s']:.2f} s" if r["outcome"] == "ok" else f" — {r['error']}")
            for r in rows)

    out.emit(results, text)
    return EXIT_OK if all(r["outcome"] in ("ok", "already_running") for r in results) else EXIT_REMOTE


@command("pending")
def cmd_pending(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    user_id = _acting_user(ctx, args)
    with ctx.session() as session:
        rows = [p.as_dict() for p in sync.list_pending(session, user_id, args.state)]
    out.emit(rows, lambda r: _table(r, ["id", "state", "title", "due_date", "space_key", "page_title", "project"]))
    return EXIT_OK


@command("edit")
def cmd_edit(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    user_id = _acting_user(ctx, args)
    changes = {}
    if args.title is not None:
        changes["title"] = args.title
    if args.due is not None:
        changes["due_date"] = args.due
    if args.project is not None:
        changes["project"] = args.project
    if not changes:
        raise UserError("nothing to change: give --title, --due or --project")
    with ctx.session() as session:
        sync.edit_pending(session, user_id, args.pending_id, **changes)
    with ctx.session() as session:
        [row] = [p for p in sync.list_pending(session, user_id, "all") if p.id == args.pending_id]
    out.emit(row.as_dict(), f"pending task {row.id} updated")
    return EXIT_OK


@command("approve")
def cmd_approve(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    user_id = _acting_user(ctx, args)
    if not args.pending_ids and not args.all:
        raise UserError("name pending task ids, or use --all")
    with ctx.session() as session:
        cards = sync.approve(session, user_id, args.pending_ids, all_pending=args.all, project=args.project)
        ids = {c.id for c in cards}
    with ctx.session() as session:
        rows = [c.as_dict() for c in board.list_cards(session, user_id) if c.id in ids]
    out.emit(rows, f"{len(rows)} card(s) on the board")
    return EXIT_OK


@command("dismiss")
def cmd_dismiss(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    user_id = _acting_user(ctx, args)
    with ctx.session() as session:
        count = sync.dismiss(session, user_id, args.pending_ids)
    out.emit({"dismissed": count}, f"{count} dismissed")
    return EXIT_OK


@command("restore")
def cmd_restore(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    user_id = _acting_user(ctx, args)
    with ctx.session() as session:
        count = sync.restore(session, user_id, args.pending_ids)
    out.emit({"restored": count}, f"{count} restored")
    return EXIT_OK


@command("outbox")
def cmd_outbox(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    user_id = _acting_user(ctx, args)
    drained = sync.drain(ctx, user_id=user_id).as_dict() if args.drain else None
    with ctx.session() as session:
        rows = [{"id": e.id, "card_id": e.task_id, "confluence_task_id": e.confluence_task_id,
                 "desired_status": e.desired_status, "state": e.state, "attempts": e.attempts,
                 "next_attempt_at": e.next_attempt_at.isoformat(), "last_error": e.last_error}
                for e in sync.outbox_rows(session, user_id)]
    data = {"drained": drained, "entries": rows}
    out.emit(data, lambda d: (f"sent {d['drained']['sent']}, retrying {d['drained']['retrying']}, failed "
                              f"{d['drained']['failed']}\n" if d["drained"] else "") +
             _table(d["entries"], ["id", "card_id", "desired_status", "state", "attempts", "last_error"]))
    return EXIT_OK if not drained or not drained["failed"] else EXIT_REMOTE


@command("audit")
def cmd_audit(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    user_id = _acting_user(ctx, args)
    with ctx.session() as session:
        rows = [audit.as_dict(e) for e in audit.query(session, user_id, limit=args.limit)]
    out.emit(rows, lambda r: _table(r, ["created_at", "event_type", "success", "error"]))
    return EXIT_OK


@command("worker")
def cmd_worker(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    from trackli.worker import Worker

    worker = Worker(ctx, args.every, on_cycle=lambda s: out.emit(s, json.dumps(s, default=str)))
    worker.install_signal_handlers()
    worker.run(max_cycles=1 if args.once else None)
    return EXIT_OK


@command("keys")
def cmd_keys(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    from trackli import crypto

    if args.keys_command == "generate":
        key = crypto.generate_key()
        out.emit({"key": key}, key)
        return EXIT_OK
    counts = crypto.rotate_all(ctx)
    out.emit(counts, f"re-encrypted {counts['connections']} connection(s) and {counts['oauth_states']} pending sign-in(s) "
                     "with the first key; the old key can now be removed from TRACKLI_SECRET_KEY")
    return EXIT_OK


@command("simulator")
def cmd_simulator(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    from trackli.simulator import Simulator, SimState, populate

    state = SimState()
    populate(state, tasks=args.tasks, pages=args.pages, spaces=args.spaces, blogposts=args.blogposts)
    state.knobs.auto_approve = args.auto_approve
    sim = Simulator(state, port=args.port)
    print(f"simulated Atlassian on {sim.url} (client id {state.client_id}, secret {state.client_secret})", file=sys.stderr)
    sim.serve_forever()
    return EXIT_OK


def demo_environment(sim_url: str, port: int, data_dir: Path) -> dict[str, str]:
    from trackli.simulator.state import SimState

    defaults = SimState()
    return {
        "TRACKLI_DEMO": "1",
        "TRACKLI_DATA_DIR": str(data_dir),
        "TRACKLI_DATABASE_URL": os.environ.get("TRACKLI_DATABASE_URL") or f"sqlite:///{data_dir / 'trackli-demo.db'}",
        "ATLASSIAN_AUTH_URL": sim_url,
        "ATLASSIAN_API_URL": sim_url,
        "ATLASSIAN_CLIENT_ID": defaults.client_id,
        "ATLASSIAN_CLIENT_SECRET": defaults.client_secret,
        "ATLASSIAN_REDIRECT_URI": f"http://localhost:{port}/connect",
    }


@command("demo")
def cmd_demo(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    """Simulator + dashboard, with an API-token connection to the simulated site already made."""
    from trackli.config import load_settings
    from trackli.simulator import ME, ME_API_TOKEN, Simulator

    app = Path(__file__).resolve().parent.parent / "app.py"
    if not app.exists():
        raise UserError(f"cannot find the dashboard at {app}: run `trackli demo` from a checkout of Trackli")
    with Simulator.running(port=args.sim_port, tasks=args.tasks, pages=max(8, args.tasks // 3)) as sim:
        env = demo_environment(sim.url, args.port, ctx.settings.data_dir / "demo")
        demo_ctx = Context.from_settings(load_settings(env={**os.environ, **env}), migrate=True)
        with demo_ctx.session() as session:
            user_id = users.ensure_local(session).id
        connections.connect_api_token(demo_ctx, user_id, sim.url, ME[1], ME_API_TOKEN)
        print(f"simulated Atlassian on {sim.url}; dashboard on http://localhost:{args.port}", file=sys.stderr)
        command_line = [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(args.port),
                        "--server.headless", "true", "--browser.gatherUsageStats", "false"]
        try:
            return subprocess.call(command_line, env={**os.environ, **env}, cwd=str(app.parent))
        except KeyboardInterrupt:
            return EXIT_OK
