"""Operations verbs: `outbox`, `audit`, `worker`."""

from __future__ import annotations

import argparse
import json
from typing import Any

from trackli import audit, completion, outbox
from trackli.cli.base import EXIT_OK, EXIT_REMOTE, Output, Verbs, acting_user, count, seconds, table
from trackli.context import Context


def register(verbs: Verbs) -> None:
    ob = verbs.add("outbox", "completion changes waiting for Confluence", cmd_outbox)
    ob.add_argument("--drain", action="store_true", help="send them now")

    au = verbs.add("audit", "the integration audit log, newest first", cmd_audit)
    au.add_argument("--limit", type=count, default=50)

    worker = verbs.add("worker", "sync due connections and drain the outbox until stopped", cmd_worker)
    worker.add_argument("--every", type=seconds, default=None, metavar="SECONDS",
                        help="the cadence per connection (default TRACKLI_SYNC_EVERY_S, 300)")
    worker.add_argument("--concurrency", type=count, default=None, metavar="N",
                        help="connections synced at once (default TRACKLI_WORKER_CONCURRENCY, 8)")
    worker.add_argument("--once", action="store_true",
                        help="sync the connections due now (each by exactly one worker), drain, and exit")


def cmd_outbox(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    user_id = acting_user(ctx, args)
    drained = completion.drain(ctx, user_id=user_id).as_dict() if args.drain else None
    with ctx.session() as session:
        rows = [{"id": e.id, "card_id": e.card_id, "confluence_task_id": e.confluence_task_id,
                 "desired_status": e.desired_status, "state": e.state, "attempts": e.attempts,
                 "next_attempt_at": e.next_attempt_at.isoformat(), "last_error": e.last_error}
                for e in outbox.entries(session, user_id)]

    def text(d: dict[str, Any]) -> str:
        sent = d["drained"]
        head = f"sent {sent['sent']}, retrying {sent['retrying']}, failed {sent['failed']}\n" if sent else ""
        return head + table(d["entries"], ["id", "card_id", "desired_status", "state", "attempts", "last_error"])

    out.emit({"drained": drained, "entries": rows}, text)
    return EXIT_OK if not drained or not drained["failed"] else EXIT_REMOTE


def cmd_audit(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    user_id = acting_user(ctx, args)
    with ctx.session() as session:
        rows = [audit.as_dict(e) for e in audit.query(session, user_id, limit=args.limit)]
    out.emit(rows, lambda r: table(r, ["created_at", "event_type", "success", "error"]))
    return EXIT_OK


def cmd_worker(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    from trackli.worker import Worker

    worker = Worker(ctx, args.every, concurrency=args.concurrency,
                    on_cycle=lambda s: out.emit(s, json.dumps(s, default=str)))
    worker.install_signal_handlers()
    worker.run(max_cycles=1 if args.once else None)
    return EXIT_OK
