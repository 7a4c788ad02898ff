"""Applying a sync: plan against what the database holds (streamed), route new tasks through the person's
rules, and carry the plan out in one transaction — queue rows, cards, names, the change versions."""

from __future__ import annotations

from typing import Any, Callable, Iterator, Mapping

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from trackli import audit, changes, names, outbox, rules
from trackli.atlassian.models import Enrichment
from trackli.batches import chunks
from trackli.board import mark_remote_completed
from trackli.context import Context
from trackli.db import bulk_insert
from trackli.models import AtlassianConnection, Card, PendingTask, utcnow
from trackli.plan import GONE_REASON, UPSTREAM, SyncPlan, new_rows, plan
from trackli.sync.runs import SyncResult

def queue_rows(connection_id: int) -> Any:
    """The connection's queue rows as the plan reads them: plain rows, streamed in batches (a server-side
    cursor on PostgreSQL), so comparing 50,000 unchanged tasks never holds them all."""
    return (select(PendingTask.id, PendingTask.confluence_task_id, PendingTask.status, PendingTask.edited_fields,
                   *[getattr(PendingTask, name) for name in UPSTREAM])
            .where(PendingTask.connection_id == connection_id).execution_options(yield_per=2000))


def linked_cards(connection_id: int) -> Any:
    return (select(Card.id, Card.confluence_task_id, Card.status, Card.confluence_remote_status, Card.gone_reason)
            .where(Card.connection_id == connection_id, Card.confluence_task_id.isnot(None))
            .execution_options(yield_per=2000))


def apply(ctx: Context, conn: AtlassianConnection, fetched: Mapping[str, dict[str, Any]], completed: set[str],
           result: SyncResult, *, complete: bool = True, names_seen: Enrichment | None = None,
           tick: Callable[[], None] | None = None) -> None:
    """Plan against what the database holds now, and carry the plan out in one transaction.

    complete=False (an incremental poll): only the rows and cards of the tasks it returned are read
    and planned, and nothing is marked gone."""
    now = utcnow()
    with ctx.session() as session:
        # Plain rows, not ORM objects, streamed in batches (a server-side cursor on PostgreSQL): comparing
        # 50,000 unchanged tasks stays cheap and never holds them all.
        rows, linked = queue_rows(conn.id), linked_cards(conn.id)
        asked = sorted(set(fetched) | completed) if not complete else []

        def read(stmt: Any, column: Any) -> Iterator[Any]:
            if complete:
                yield from session.execute(stmt)
            else:  # an incremental poll: only the rows of the tasks it returned
                for batch in chunks(asked, 1000):
                    yield from session.execute(stmt.where(column.in_(batch)))

        planned = plan(read(rows, PendingTask.confluence_task_id), fetched,
                    read(linked, Card.confluence_task_id),  # read after the queue rows: one stream at a time
                    completed, outbox.unsent_card_ids(session, conn.id), complete=complete)
        if planned.touches_anything or planned.remote_incomplete:  # bulk statements: say so for the open tabs
            changes.touch(session, conn.user_id, "queue", "board")

        # The person's triage rules route tasks as they first enter the queue: the rows are written routed.
        incoming = rules.Incoming()
        if planned.new and rules.any_enabled(session, conn.user_id):  # each new row's fields computed once, then
            fetched = {t: fetched[t] for t in planned.new}  # routed and written (only the new ones are needed below)
            incoming = rules.route_incoming(session, conn.user_id, fetched, tick=tick)
        unrouted = {"status": "pending", "project_id": None, "rule_id": None, "rule_name": None, "snoozed_until": None}
        for rows in new_rows(planned, fetched, 2000):
            bulk_insert(session, PendingTask.__table__, [row | {
                "user_id": conn.user_id, "connection_id": conn.id, "edited_fields": [],
                "task_description": "", "first_seen_at": now, "last_seen_at": now, "created_at": now, "updated_at": now,
            } | unrouted | incoming.marks.get(row["confluence_task_id"], {}) for row in rows])
        if incoming.rules:
            rules.finish_incoming(session, conn.user_id, conn.id, incoming)
            result.routed = incoming.count
        plain = {"synchronize_session": False}  # no ORM objects of these rows are loaded
        by_columns: dict[frozenset[str], list[dict[str, Any]]] = {}  # one executemany per set of changed columns
        for row_id, changed in planned.changed.items():
            by_columns.setdefault(frozenset(changed), []).append({"id": row_id, **changed, "last_seen_at": now,
                                                                  "updated_at": now})
        for params in by_columns.values():
            for some in chunks(params, 1000):
                session.execute(update(PendingTask), some, execution_options=plain)
        for batch in chunks(planned.gone, 500):
            session.execute(update(PendingTask).where(PendingTask.id.in_(batch)).execution_options(**plain).values(
                status="gone", gone_reason=GONE_REASON, updated_at=now))
        apply_to_cards(session, planned)
        if names_seen is not None:
            (names.replace if complete else names.add)(session, conn.id, names_seen, now)
        result.new, result.updated, result.unchanged, result.gone = len(planned.new), len(planned.changed), planned.unchanged, len(planned.gone)
        result.errors += planned.refused
        result.clipped += planned.clipped
        result.conflicts, result.completed_upstream = len(planned.conflicts), len(planned.completed_upstream)
        if planned.touches_anything:
            audit.record(session, conn.user_id, "confluence.queue_updated", {
                "connection_id": conn.id, "new": result.new, "updated": result.updated, "gone": result.gone,
                "completed_upstream": result.completed_upstream, "conflicts": result.conflicts,
                "cards_gone": len(planned.cards_gone), "cards_back": len(planned.cards_back),
                "values_cut_to_fit": result.clipped, "tasks_refused": planned.refused,
            })


CARD_GONE = "no longer assigned to you in Confluence (deleted there, or reassigned)"


CONFLICT = "Reopened in Confluence after you completed it here: keep it done, or reopen it here"


def apply_to_cards(session: Session, planned: SyncPlan) -> None:
    for batch in chunks(planned.remote_incomplete, 500):
        session.execute(update(Card).where(Card.id.in_(batch)).values(confluence_remote_status="incomplete"))
    for batch in chunks(planned.conflicts, 500):
        session.execute(update(Card).where(Card.id.in_(batch)).values(
            sync_state="conflict", sync_error=CONFLICT, confluence_remote_status="incomplete"))
    for card_id in planned.completed_upstream:
        mark_remote_completed(session, session.get_one(Card, card_id))
    for batch in chunks(planned.cards_gone, 500):
        session.execute(update(Card).where(Card.id.in_(batch)).values(gone_reason=CARD_GONE))
    for batch in chunks(planned.cards_back, 500):
        session.execute(update(Card).where(Card.id.in_(batch)).values(gone_reason=None))
