"""Snooze: a pending task or a card leaves the queue or its column until a day, then comes back at the
top, marked as returned from snooze.

The day is the person's: a snooze until 3 December returns at midnight of 3 December in their time
zone (`users.time_zone`, from their browser; UTC until one is known). A snoozed Confluence task
follows the normal sync rules meanwhile: completed or removed upstream, a snoozed queue row becomes
gone; a snoozed card whose task is completed there moves to Done (and its snooze ends).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Iterable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from trackli import audit, board, changes, positions
from trackli.batches import chunks
from trackli.errors import NotFound, ValidationError
from trackli.clock import today_for, valid_zone, zone
from trackli.models import Card, PendingTask, User, utcnow

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MAX_DAYS = 3650


def remember_zone(session: Session, user_id: int, name: str | None) -> None:
    """Keep the person's browser time zone (only a valid one, only when it changed)."""
    name = valid_zone(name)
    if name:
        session.execute(update(User).where(User.id == user_id, User.time_zone.is_distinct_from(name))
                        .values(time_zone=name).execution_options(synchronize_session=False))


def parse_until(text: Any, today: dt.date) -> dt.date:
    """A return day from `2026-12-03`, `tomorrow`, `in 3 days`, `in 2 weeks`, `monday` or `next monday`.
    It must be after today (a snooze until today would return at once)."""
    if isinstance(text, dt.date):
        day = text
    else:
        words = " ".join(str(text or "").strip().lower().split())
        if not words:
            raise ValidationError("say until when: a date such as 2026-12-03, or 'tomorrow', 'in 3 days', 'next monday'")
        match = re.fullmatch(r"in (\d{1,4}) (day|days|week|weeks)", words)
        if words == "tomorrow":
            day = today + dt.timedelta(days=1)
        elif match:
            day = today + dt.timedelta(days=int(match[1]) * (7 if match[2].startswith("week") else 1))
        elif words.removeprefix("next ") in WEEKDAYS:
            ahead = (WEEKDAYS.index(words.removeprefix("next ")) - today.weekday()) % 7 or 7
            day = today + dt.timedelta(days=ahead)
        else:
            try:
                day = dt.date.fromisoformat(words)
            except ValueError:
                raise ValidationError(f"{str(text)[:40]!r} is not a day: use YYYY-MM-DD, 'tomorrow', 'in 3 days' "
                                      "or 'next monday'") from None
    if day <= today:
        raise ValidationError(f"{day.isoformat()} is not after today ({today.isoformat()}): pick a later day")
    if day > today + dt.timedelta(days=MAX_DAYS):
        raise ValidationError("snooze for at most ten years")
    return day


def snooze_pending(session: Session, user_id: int, ids: Iterable[int], until: Any) -> int:
    """Pending (or already snoozed) queue rows leave the queue until `until`; how many."""
    day = parse_until(until, today_for(session, user_id))
    ids = sorted({int(i) for i in ids})
    rows: list[PendingTask] = []
    for batch in chunks(ids, 500):
        rows.extend(session.scalars(select(PendingTask).where(PendingTask.user_id == user_id, PendingTask.id.in_(batch))
                                    .with_for_update()))
    missing = set(ids) - {r.id for r in rows}
    if missing:
        raise NotFound(f"pending task(s) {', '.join(map(str, sorted(missing)[:10]))} not found")
    refused = [r.id for r in rows if r.status not in ("pending", "snoozed")]
    if refused:
        raise ValidationError(f"pending task(s) {', '.join(map(str, refused[:10]))} are not waiting in the queue: "
                              "only a pending task can be snoozed (a card is snoozed on the board)")
    now = utcnow()
    for row in rows:
        row.status, row.snoozed_until, row.returned_from_snooze_at, row.updated_at = "snoozed", day, None, now
    if rows:
        audit.record(session, user_id, "queue.snoozed", {"count": len(rows), "pending_ids": [r.id for r in rows][:50],
                                                          "until": day.isoformat()}, provider="trackli")
    return len(rows)


def unsnooze_pending(session: Session, user_id: int, ids: Iterable[int]) -> int:
    """Snoozed rows back in the queue now; how many (rows not snoozed are left as they are)."""
    ids = sorted({int(i) for i in ids})
    rows: list[PendingTask] = []
    for batch in chunks(ids, 500):
        rows.extend(session.scalars(select(PendingTask).where(
            PendingTask.user_id == user_id, PendingTask.id.in_(batch), PendingTask.status == "snoozed").with_for_update()))
    now = utcnow()
    for row in rows:
        row.status, row.snoozed_until, row.returned_from_snooze_at, row.updated_at = "pending", None, None, now
    if rows:
        audit.record(session, user_id, "queue.unsnoozed", {"count": len(rows), "pending_ids": [r.id for r in rows][:50]},
                     provider="trackli")
    return len(rows)


def snooze_card(session: Session, user_id: int, card_id: int, until: Any) -> Card:
    """A card leaves its column until `until` (a Done or archived card cannot be snoozed)."""
    day = parse_until(until, today_for(session, user_id))
    card = board.get_card(session, user_id, card_id, for_update=True)
    if card.archived_at is not None:
        raise ValidationError("this card is archived: restore it first")
    if card.status == "done":
        raise ValidationError("this card is done: there is nothing to come back to")
    card.snoozed_until, card.returned_from_snooze_at, card.updated_at = day, None, utcnow()
    audit.record(session, user_id, "board.card_snoozed", {"card_id": card.id, "until": day.isoformat()}, provider="trackli")
    return card


def unsnooze_card(session: Session, user_id: int, card_id: int) -> Card:
    card = board.get_card(session, user_id, card_id, for_update=True)
    if card.snoozed_until is not None:
        positions.lock_board(session, user_id)
        card.snoozed_until, card.returned_from_snooze_at = None, None
        card.position = positions.top_position(session, user_id, card.status)
        card.updated_at = utcnow()
        audit.record(session, user_id, "board.card_unsnoozed", {"card_id": card.id}, provider="trackli")
    return card


def wake(session: Session, user_id: int | None = None, now: dt.datetime | None = None) -> int:
    """Everything whose snooze day has come in its owner's time zone returns (at the top, marked);
    how many. Cheap when nothing is due: one indexed look per table."""
    now = now or utcnow()
    latest = (now + dt.timedelta(days=1)).date()  # no time zone is more than a day ahead of UTC
    zones: dict[int, dt.date] = {}

    def due(owner: int, day: dt.date) -> bool:
        if owner not in zones:
            name = session.scalar(select(User.time_zone).where(User.id == owner))
            zones[owner] = now.astimezone(zone(name)).date()
        return day <= zones[owner]

    woken = 0
    pending = select(PendingTask.id, PendingTask.user_id, PendingTask.snoozed_until).where(
        PendingTask.status == "snoozed", PendingTask.snoozed_until <= latest)
    cards = select(Card.id, Card.owner_id, Card.snoozed_until).where(
        Card.snoozed_until.isnot(None), Card.snoozed_until <= latest)
    if user_id is not None:
        pending, cards = pending.where(PendingTask.user_id == user_id), cards.where(Card.owner_id == user_id)
    back = [(row_id, owner) for row_id, owner, day in session.execute(pending) if day and due(owner, day)]
    for batch in chunks([r for r, _ in back], 500):
        session.execute(update(PendingTask).where(PendingTask.id.in_(batch), PendingTask.status == "snoozed").values(
            status="pending", snoozed_until=None, returned_from_snooze_at=now, updated_at=now)
            .execution_options(synchronize_session=False))
    returning = [(card_id, owner) for card_id, owner, day in session.execute(cards) if day and due(owner, day)]
    for card_id, owner in returning:
        positions.lock_board(session, owner)
        card = session.get(Card, card_id)
        if card is not None and card.snoozed_until is not None:
            card.position = positions.top_position(session, owner, card.status)
            card.snoozed_until, card.returned_from_snooze_at, card.updated_at = None, now, now
            session.flush()
    owners: dict[int, dict[str, int]] = {}
    for _, owner in back:
        owners.setdefault(owner, {"pending": 0, "cards": 0})["pending"] += 1
    for _, owner in returning:
        owners.setdefault(owner, {"pending": 0, "cards": 0})["cards"] += 1
    for owner, counts in sorted(owners.items()):
        changes.touch(session, owner, "queue", "board")
        audit.record(session, owner, "snooze.returned", counts, provider="trackli")
        woken += counts["pending"] + counts["cards"]
    return woken


@dataclass(frozen=True)
class Snoozed:
    kind: str  # "pending" | "card"
    id: int
    title: str
    until: dt.date
    column: str | None  # a card's column

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id, "title": self.title, "until": self.until.isoformat(),
                "column": self.column}


def snoozed(session: Session, user_id: int, limit: int = 500) -> list[Snoozed]:
    """The person's snoozed queue rows and cards, soonest return first."""
    rows = [Snoozed("pending", i, t, d, None) for i, t, d in session.execute(
        select(PendingTask.id, PendingTask.task_title, PendingTask.snoozed_until).where(
            PendingTask.user_id == user_id, PendingTask.status == "snoozed").limit(limit)) if d is not None]
    rows += [Snoozed("card", i, t, d, s) for i, t, d, s in session.execute(
        select(Card.id, Card.title, Card.snoozed_until, Card.status).where(
            Card.owner_id == user_id, Card.snoozed_until.isnot(None)).limit(limit)) if d is not None]
    return sorted(rows, key=lambda r: (r.until, r.kind, r.id))[:limit]
