"""The board as pages read it: cards as plain rows (`CardView`), filtered and counted in SQL, a page
of each column at a time, and what needs the person (failed, conflicting, gone). Reads only."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from trackli.clock import today_for, today_in
from trackli.db import contains_words
from trackli.errors import NotFound, ValidationError
from trackli.fields import check_status
from trackli.models import CARD_STATUSES, AtlassianConnection, Card, PendingTask, Project


@dataclass(frozen=True)
class CardView:
    id: int
    title: str
    status: str
    position: int
    project_id: int | None
    project: str | None
    project_colour: str | None
    due_date: dt.date | None
    source: str
    confluence_task_id: str | None
    confluence_page_title: str | None
    confluence_space_key: str | None
    confluence_url: str | None
    sync_state: str
    sync_error: str | None
    updated_at: dt.datetime
    site: str | None = None  # the Atlassian site of a Confluence card
    note: str = ""
    confluence_space_name: str | None = None
    gone_reason: str | None = None
    archived: bool = False
    returned_from_snooze: bool = False  # back from a snooze, until the person moves or edits it

    def overdue(self, today: dt.date | None = None) -> bool:
        return bool(self.due_date and self.status != "done" and self.due_date < (today or today_in(None)))

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status,
            "project": self.project,
            "due_date": self.due_date.isoformat() if self.due_date else None,
            "source": self.source,
            "confluence_task_id": self.confluence_task_id,
            "sync_state": self.sync_state,
            "sync_error": self.sync_error,
            "url": self.confluence_url,
            "note": self.note,
            "gone_reason": self.gone_reason,
            "archived": self.archived,
            "returned_from_snooze": self.returned_from_snooze,
        }


DUE_FILTERS = ("any", "overdue", "week", "none")
SYNC_FILTERS = ("any", "waiting", "failed", "conflict", "gone", "local")


@dataclass(frozen=True)
class CardFilter:
    """What the board shows: every field narrows it; the defaults show everything on the board."""

    project_id: int | None = None
    due: str = "any"  # any | overdue | week (due by the end of this week) | none
    sync: str = "any"  # any | waiting | failed | conflict | gone | local
    text: str = ""  # every word in the title, page title or note, any case
    archived: bool = False  # the archive instead of the board


def _filtered(stmt: Any, user_id: int, f: CardFilter, today: dt.date) -> Any:
    stmt = stmt.where(Card.owner_id == user_id,  # a snoozed card is off the board until its day (trackli.snooze)
                      Card.archived_at.isnot(None) if f.archived else Card.archived_at.is_(None),
                      *(() if f.archived else (Card.snoozed_until.is_(None),)))
    if f.project_id is not None:
        stmt = stmt.where(Card.project_id == f.project_id)
    if f.due == "overdue":
        stmt = stmt.where(Card.due_date < today, Card.status != "done")
    elif f.due == "week":
        stmt = stmt.where(Card.due_date <= today + dt.timedelta(days=6 - today.weekday()))
    elif f.due == "none":
        stmt = stmt.where(Card.due_date.is_(None))
    elif f.due != "any":
        raise ValidationError(f"unknown due filter {f.due!r}: use one of {', '.join(DUE_FILTERS)}")
    if f.sync == "gone":
        stmt = stmt.where(Card.gone_reason.isnot(None))
    elif f.sync == "local":
        stmt = stmt.where(Card.source == "manual")
    elif f.sync in ("waiting", "failed", "conflict"):
        stmt = stmt.where(Card.sync_state == f.sync)
    elif f.sync != "any":
        raise ValidationError(f"unknown sync filter {f.sync!r}: use one of {', '.join(SYNC_FILTERS)}")
    stmt = stmt.where(*contains_words(f.text, Card.title, Card.confluence_page_title, Card.description))
    return stmt


VIEW_COLUMNS = (Card.id, Card.title, Card.status, Card.position, Card.project_id, Card.due_date, Card.source,
                Card.confluence_task_id, Card.confluence_page_title, Card.confluence_space_key, Card.confluence_url,
                Card.sync_state, Card.sync_error, Card.updated_at, Card.description, Card.confluence_space_name,
                Card.gone_reason, Card.archived_at, Card.returned_from_snooze_at)


def _views(session: Session, stmt: Any) -> list[CardView]:
    """Plain rows of only the columns a view shows: no ORM object per card."""
    return [
        CardView(
            id=r.id, title=r.title, status=r.status, position=r.position, project_id=r.project_id,
            project=r.project_name, project_colour=r.project_colour, due_date=r.due_date, source=r.source,
            confluence_task_id=r.confluence_task_id, confluence_page_title=r.confluence_page_title,
            confluence_space_key=r.confluence_space_key, confluence_url=r.confluence_url,
            sync_state=r.sync_state, sync_error=r.sync_error, updated_at=r.updated_at, site=r.site,
            note=r.description or "", confluence_space_name=r.confluence_space_name, gone_reason=r.gone_reason,
            archived=r.archived_at is not None, returned_from_snooze=r.returned_from_snooze_at is not None,
        )
        for r in session.execute(stmt)
    ]


def _card_rows() -> Any:
    return (select(*VIEW_COLUMNS, Project.name.label("project_name"), Project.colour.label("project_colour"),
                   func.coalesce(AtlassianConnection.site_name, AtlassianConnection.site_url).label("site"))
            .outerjoin(Project, Project.id == Card.project_id)
            .outerjoin(AtlassianConnection, AtlassianConnection.id == Card.connection_id))


def list_cards(
    session: Session, user_id: int, *, project_id: int | None = None, status: str | None = None,
    where: CardFilter | None = None, limit: int | None = None, today: dt.date | None = None,
) -> list[CardView]:
    """The person's cards on the board (or, with `where.archived`, in the archive), in column order."""
    f = where or CardFilter(project_id=project_id)
    stmt = _filtered(_card_rows(), user_id, f, today or today_for(session, user_id))
    if status is not None:
        stmt = stmt.where(Card.status == check_status(status))
    stmt = stmt.order_by(Card.status, Card.position, Card.id)
    if limit is not None:
        stmt = stmt.limit(limit)
    return _views(session, stmt)


def card_view(session: Session, user_id: int, card_id: int) -> CardView:
    views = _views(session, _card_rows().where(Card.id == card_id, Card.owner_id == user_id))
    if not views:
        raise NotFound(f"card {card_id} not found")
    return views[0]


@dataclass
class Board:
    columns: dict[str, list[CardView]]  # the first `limit` cards of each column, in order
    counts: dict[str, int]  # how many cards each column holds under the filter


def board(session: Session, user_id: int, *, project_id: int | None = None, where: CardFilter | None = None,
          limit: int | None = None, today: dt.date | None = None) -> dict[str, list[CardView]]:
    """The user's cards by status, each column in position order."""
    return board_page(session, user_id, where=where or CardFilter(project_id=project_id), limit=limit, today=today).columns


def column_counts(session: Session, user_id: int, where: CardFilter = CardFilter(),
                  today: dt.date | None = None) -> dict[str, int]:
    """How many cards each column holds (under `where`), counted in SQL."""
    counted = _filtered(select(Card.status, func.count()), user_id, where,
                        today or today_for(session, user_id)).group_by(Card.status)
    counts: dict[str, int] = {status: 0 for status in CARD_STATUSES}
    for status, count in session.execute(counted):
        counts[status] = count
    return counts


def needing_attention(session: Session, user_id: int, limit: int = 20) -> tuple[list[CardView], int]:
    """Cards in conflict or whose completion failed (the first `limit`, oldest change first), and how many."""
    stuck = (Card.owner_id == user_id, Card.archived_at.is_(None), Card.snoozed_until.is_(None),
             Card.sync_state.in_(("conflict", "failed")))
    count = session.scalar(select(func.count()).select_from(Card).where(*stuck)) or 0
    if not count:
        return [], 0
    return _views(session, _card_rows().where(*stuck).order_by(Card.updated_at, Card.id).limit(limit)), count


def board_page(session: Session, user_id: int, *, where: CardFilter = CardFilter(), limit: int | None = None,
               today: dt.date | None = None) -> Board:
    """What the board draws: each column's first `limit` cards under the filter, and every column's count.

    Reads only what is shown (one query per column, from the (owner, status, position) index) and
    counts in SQL, so a board of 10,000 cards costs what its visible cards cost.
    """
    today = today or today_for(session, user_id)
    counts = column_counts(session, user_id, where, today)
    columns: dict[str, list[CardView]] = {}
    for status in CARD_STATUSES:
        if not counts[status]:
            columns[status] = []
            continue
        stmt = _filtered(_card_rows(), user_id, where, today).where(Card.status == status).order_by(Card.position, Card.id)
        columns[status] = _views(session, stmt if limit is None else stmt.limit(limit))
    return Board(columns, counts)


@dataclass(frozen=True)
class Due:
    """One dated thing on the Upcoming view: an open card, or a task waiting in the queue."""

    kind: str  # "card" | "pending"
    id: int
    title: str
    due_date: dt.date
    column: str | None  # a card's status; None for a waiting task
    project: str | None
    url: str | None


def upcoming(session: Session, user_id: int, today: dt.date | None = None, days: int = 14) -> list[Due]:
    """Open cards and waiting tasks due from today to `days` ahead, overdue ones first, soonest first:
    the calendar inside the app (this week and next by default). At most 500 of each."""
    today = today or today_for(session, user_id)
    until = today + dt.timedelta(days=days - 1)
    cards = session.execute(
        select(Card.id, Card.title, Card.due_date, Card.status, Project.name, Card.confluence_url)
        .outerjoin(Project, Project.id == Card.project_id)
        .where(Card.owner_id == user_id, Card.archived_at.is_(None), Card.snoozed_until.is_(None),
               Card.status != "done", Card.due_date.isnot(None), Card.due_date <= until)
        .order_by(Card.due_date, Card.id).limit(500))
    waiting = session.execute(
        select(PendingTask.id, PendingTask.task_title, PendingTask.due_date, Project.name, PendingTask.confluence_url)
        .outerjoin(Project, Project.id == PendingTask.project_id)
        .where(PendingTask.user_id == user_id, PendingTask.status == "pending", PendingTask.due_date.isnot(None),
               PendingTask.due_date <= until)
        .order_by(PendingTask.due_date, PendingTask.id).limit(500))
    found = [Due("card", i, t, d, s, p, u) for i, t, d, s, p, u in cards if d is not None]
    found += [Due("pending", i, t, d, None, p, u) for i, t, d, p, u in waiting if d is not None]
    return sorted(found, key=lambda x: (x.due_date, x.kind, x.id))
