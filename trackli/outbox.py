"""The completion outbox table: enqueue, claim, requeue. Low in the stack: the board and the
connections write here; `trackli.completion` (above both) sends what is here.

A card move writes the desired Confluence status here in the same transaction as the move. At
most one unsent entry exists per card: a newer desire rewrites it, so done -> todo -> done before a
send leaves one final state, and a desire that equals what Confluence is known to hold sends
nothing at all.

Entry states: pending -> sending (claimed, with a lease) -> done | failed; a sender that dies
leaves `sending` behind, and the lease hands the entry back (the PUT is idempotent).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterable, Iterator, cast

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.orm import Session

from trackli.context import Context
from trackli.models import Card, OutboxEntry, OutboxState, RemoteStatus, remote_status_for, utcnow

UNSENT: tuple[OutboxState, ...] = ("pending", "sending")


def enqueue(session: Session, card: Card, desired: RemoteStatus, not_before_s: float = 0.0) -> OutboxEntry | None:
    """The card's desired Confluence status, to send (not before `not_before_s` from now: an Undo window)."""
    now = utcnow()
    entry = session.scalar(
        select(OutboxEntry).where(OutboxEntry.card_id == card.id, OutboxEntry.state == "pending").with_for_update()
    )
    # Anything already sent or being sent that leaves Confluence in `desired`?
    in_flight = session.scalar(
        select(OutboxEntry.desired_status)
        .where(OutboxEntry.card_id == card.id, OutboxEntry.state == "sending")
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
            card_id=card.id,
            user_id=card.owner_id,
            connection_id=card.connection_id,
            confluence_task_id=card.confluence_task_id,
            desired_status=desired,
            created_at=now,
        )
        session.add(entry)
    entry.desired_status = desired
    entry.attempts = 0
    entry.next_attempt_at = now + dt.timedelta(seconds=max(0.0, not_before_s))
    entry.last_error = None
    entry.updated_at = now
    card.sync_state = "waiting"
    card.sync_error = None
    return entry


def drop_unsent(session: Session, card_id: int) -> int:
    """Forget a card's completions not yet sent (the card no longer speaks for a Confluence task)."""
    result = session.execute(delete(OutboxEntry).where(OutboxEntry.card_id == card_id,
                                                       OutboxEntry.state.in_(("pending", "failed"))))
    return cast(CursorResult, result).rowcount or 0


def enqueue_current(session: Session, card: Card) -> OutboxEntry | None:
    """Send the card's own state again, whatever Confluence was believed to hold."""
    card.confluence_remote_status = None
    return enqueue(session, card, remote_status_for(card.status))


def requeue_after_reconnect(session: Session, connection_id: int) -> int:
    """A connection works again: changes that failed only because of it are sent again."""
    requeued = 0
    failed = session.scalars(select(OutboxEntry).where(
        OutboxEntry.connection_id == connection_id, OutboxEntry.state == "failed",
        OutboxEntry.failure_kind.in_(("reconnect", "scope", "key"))).order_by(OutboxEntry.id))
    for entry in failed:
        card = session.get(Card, entry.card_id)
        entry.state = "done"  # replaced by a fresh entry for the card's current state
        if card is None or card.sync_state != "failed":
            continue
        enqueue_current(session, card)
        requeued += 1
    session.flush()
    return requeued


def unsent_card_ids(session: Session, connection_id: int) -> set[int]:
    return set(session.scalars(select(OutboxEntry.card_id).where(
        OutboxEntry.connection_id == connection_id, OutboxEntry.state.in_(UNSENT))))


def entries(session: Session, user_id: int, states: Iterable[OutboxState] = ("pending", "sending", "failed"),
            connection_id: int | None = None) -> list[OutboxEntry]:
    stmt = select(OutboxEntry).where(OutboxEntry.user_id == user_id, OutboxEntry.state.in_(tuple(states)))
    if connection_id is not None:
        stmt = stmt.where(OutboxEntry.connection_id == connection_id)
    return list(session.scalars(stmt.order_by(OutboxEntry.id)))


def _release_stale(ctx: Context, now: dt.datetime) -> None:
    """Entries whose sender died mid-send go back to the queue, or make way for a newer desire."""
    with ctx.session() as session:
        stale = select(OutboxEntry.id).where(OutboxEntry.state == "sending", OutboxEntry.lease_until < now)
        for entry_id in session.scalars(stale).all():
            newer = session.scalar(select(OutboxEntry.id).where(
                OutboxEntry.state == "pending", OutboxEntry.card_id == select(OutboxEntry.card_id).where(
                    OutboxEntry.id == entry_id).scalar_subquery()))
            session.execute(update(OutboxEntry).where(OutboxEntry.id == entry_id, OutboxEntry.state == "sending").values(
                state="done" if newer else "pending", last_error="superseded" if newer else "resent after an interrupted send"))


def claim(ctx: Context, user_id: int | None, limit: int, card_id: int | None = None) -> list[int]:
    """Mark up to `limit` due entries (of one card, if given) as `sending` under a lease; each is claimed
    by one caller only."""
    now = utcnow()
    _release_stale(ctx, now)
    with ctx.session() as session:
        stmt = select(OutboxEntry.id).where(OutboxEntry.state == "pending", OutboxEntry.next_attempt_at <= now)
        if user_id is not None:
            stmt = stmt.where(OutboxEntry.user_id == user_id)
        if card_id is not None:
            stmt = stmt.where(OutboxEntry.card_id == card_id)
        candidates = list(session.scalars(stmt.order_by(OutboxEntry.id).limit(limit).with_for_update(skip_locked=True)))
        claimed = []
        for entry_id in candidates:
            res = cast(CursorResult[Any], session.execute(
                update(OutboxEntry).where(OutboxEntry.id == entry_id, OutboxEntry.state == "pending")
                .values(state="sending", lease_until=now + dt.timedelta(seconds=ctx.settings.lease_s), updated_at=now)))
            if res.rowcount == 1:
                claimed.append(entry_id)
        return claimed


def claims(ctx: Context, user_id: int | None, limit: int, chunk: int = 20, card_id: int | None = None) -> Iterator[int]:
    """Claim a few entries at a time, so a slow batch never outlives the lease of what it holds."""
    handed = 0
    while handed < limit:
        claimed = claim(ctx, user_id, min(chunk, limit - handed), card_id)
        if not claimed:
            return
        for entry_id in claimed:
            handed += 1
            yield entry_id
