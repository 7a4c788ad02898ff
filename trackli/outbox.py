"""Completion sync through an outbox.

A card move writes the desired Confluence status here in the same transaction as the move.
`drain()` (trackli.sync) sends it later. At most one unsent entry exists per card: a newer
desire rewrites it, so done -> todo -> done before a drain sends one final state, and a desire
that equals what Confluence is known to hold sends nothing at all.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from trackli.models import OutboxEntry, Task, utcnow


def enqueue(session: Session, card: Task, desired: str) -> OutboxEntry | None:
    now = utcnow()
    entry = session.scalar(
        select(OutboxEntry).where(OutboxEntry.task_id == card.id, OutboxEntry.state == "pending").with_for_update()
    )
    # Anything already sent or being sent that leaves Confluence in `desired`?
    in_flight = session.scalar(
        select(OutboxEntry.desired_status)
        .where(OutboxEntry.task_id == card.id, OutboxEntry.state == "sending")
        .order_by(OutboxEntry.id.desc())
        .limit(1)
    )
    settled = in_flight or card.confluence_remote_status
    if settled == desired:
        # Confluence already holds (or is about to hold) this state: drop any older unsent desire.
        if entry is not None:
            session.delete(entry)
        card.sync_state = "waiting" if in_flight else "synced"
        card.sync_error = None
        return None
    if entry is None:
        entry = OutboxEntry(
            task_id=card.id,
            user_id=card.owner_id,
            connection_id=card.connection_id,
            confluence_task_id=card.confluence_task_id,
            desired_status=desired,
            created_at=now,
        )
        session.add(entry)
    entry.desired_status = desired
    entry.attempts = 0
    entry.next_attempt_at = now
    entry.last_error = None
    entry.updated_at = now
    card.sync_state = "waiting"
    card.sync_error = None
    return entry


def requeue_after_reconnect(session: Session, connection_id: int) -> int:
    """A connection works again: changes that failed only because of it are sent again."""
    requeued = 0
    failed = session.scalars(select(OutboxEntry).where(
        OutboxEntry.connection_id == connection_id, OutboxEntry.state == "failed",
        OutboxEntry.failure_kind.in_(("reconnect", "scope", "key"))).order_by(OutboxEntry.id))
    for entry in failed:
        card = session.get(Task, entry.task_id)
        entry.state = "done"  # replaced by a fresh entry for the card's current state
        if card is None or card.sync_state != "failed":
            continue
        card.confluence_remote_status = None
        enqueue(session, card, "complete" if card.status == "done" else "incomplete")
        requeued += 1
    session.flush()
    return requeued
