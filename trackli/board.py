"""The Trackli side: projects and cards. Every function is scoped to the acting user.

Moving a Confluence card into or out of `done` queues its completion sync in the same
transaction (trackli.outbox): the board never waits on Confluence.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from trackli import audit, outbox
from trackli.errors import NotFound, ValidationError
from trackli.text import CONTROL, MAX_TITLE
from trackli.db import contains_words, lock_row
from trackli.models import (
    MAX_ID,
    CARD_STATUSES,
    AtlassianConnection,
    Card,
    CardStatus,
    Project,
    User,
    remote_status_for,
    utcnow,
)

MAX_PROJECT_NAME = 100
COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


# ---- validation ---------------------------------------------------------------------------------

def clean_title(title: str | None, what: str = "title") -> str:
    """Strip control characters and surrounding space; refuse empty or over-long titles."""
    text = CONTROL.sub("", title or "").strip()
    if not text:
        raise ValidationError(f"the {what} must not be empty")
    if len(text) > MAX_TITLE:
        raise ValidationError(f"the {what} is {len(text)} characters long; at most {MAX_TITLE} are allowed")
    return text


def check_status(status: str) -> CardStatus:
    """A column from what a person types: `in progress`, `In-Progress` and `in_progress` are one column."""
    typed = "_".join(str(status).strip().lower().replace("-", " ").split())
    typed = {"to_do": "todo"}.get(typed, typed)
    for known in CARD_STATUSES:
        if typed == known:
            return known
    raise ValidationError(f"unknown status {status!r}: use one of {', '.join(CARD_STATUSES)} (or 'in progress')")


def parse_due(value: Any) -> dt.date | None:
    """A real date from a date, a datetime or 'YYYY-MM-DD'; None/''/'none' clears it."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null")):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if hasattr(value, "date") and callable(value.date):  # pandas.Timestamp
        return value.date()
    text = str(value).strip()
    try:
        return dt.date.fromisoformat(text) if len(text) <= 10 else dt.datetime.fromisoformat(text).date()
    except ValueError:
        raise ValidationError(f"{value!r} is not a date: use YYYY-MM-DD") from None


# ---- projects -----------------------------------------------------------------------------------

def get_project(session: Session, user_id: int, project_id: int) -> Project:
    project = session.get(Project, project_id)
    if project is None or project.owner_id != user_id:
        raise NotFound(f"project {project_id} not found")
    return project


def project_by_name(session: Session, user_id: int, name: str) -> Project:
    """The person's project of that name, in any case ("ops" finds "Ops")."""
    project = session.scalar(select(Project).where(
        Project.owner_id == user_id, func.lower(Project.name) == name.strip().lower()).order_by(Project.id).limit(1))
    if project is None:
        raise NotFound(f"project {name!r} not found")
    return project


def _project_name(session: Session, user_id: int, name: str, exclude_id: int | None = None) -> str:
    name = clean_title(name, "project name")
    if len(name) > MAX_PROJECT_NAME:
        raise ValidationError(f"a project name is at most {MAX_PROJECT_NAME} characters")
    clash = select(Project.id).where(Project.owner_id == user_id, func.lower(Project.name) == name.lower())
    if exclude_id is not None:
        clash = clash.where(Project.id != exclude_id)
    if session.scalar(clash) is not None:
        raise ValidationError(f"you already have a project named {name!r}")
    return name


def create_project(session: Session, user_id: int, name: str, colour: str = "#4C6EF5") -> Project:
    if not COLOUR.match(colour):
        raise ValidationError(f"{colour!r} is not a colour: use #RRGGBB")
    project = Project(owner_id=user_id, name=_project_name(session, user_id, name), colour=colour)
    session.add(project)
    session.flush()
    return project


def rename_project(session: Session, user_id: int, project_id: int, name: str) -> Project:
    project = get_project(session, user_id, project_id)
    project.name = _project_name(session, user_id, name, exclude_id=project_id)
    return project


def recolour_project(session: Session, user_id: int, project_id: int, colour: str) -> Project:
    if not COLOUR.match(colour or ""):
        raise ValidationError(f"{colour!r} is not a colour: use #RRGGBB")
    project = get_project(session, user_id, project_id)
    project.colour = colour
    return project


def archive_project(session: Session, user_id: int, project_id: int, archived: bool = True) -> Project:
    project = get_project(session, user_id, project_id)
    project.archived = archived
    return project


def list_projects(session: Session, user_id: int, include_archived: bool = False) -> list[Project]:
    stmt = select(Project).where(Project.owner_id == user_id)
    if not include_archived:
        stmt = stmt.where(Project.archived.is_(False))
    return list(session.scalars(stmt.order_by(Project.name)))


def resolve_project(session: Session, user_id: int, project: int | str | None, *, create: bool = False) -> int | None:
    """A project id of the user's from an id or a name (any case); None stays None. With `create`, a
    name that matches none of the person's projects makes a new one."""
    if project is None or (isinstance(project, str) and not project.strip()):
        return None
    if isinstance(project, int) or (isinstance(project, str) and project.isdigit()):
        return get_project(session, user_id, int(project)).id
    try:
        return project_by_name(session, user_id, str(project)).id
    except NotFound:
        if not create:
            raise
        return create_project(session, user_id, str(project)).id


# ---- cards --------------------------------------------------------------------------------------

def lock_board(session: Session, user_id: int) -> None:
    """Serialise changes to one person's column order (moves, approvals) until the transaction ends.

    Re-numbering a column touches many rows; taking the user's row first gives every such
    transaction the same lock order, so concurrent moves queue up instead of deadlocking.
    """
    lock_row(session, User, user_id)


def get_card(session: Session, user_id: int, card_id: int, *, for_update: bool = False) -> Card:
    card = session.get(Card, card_id, with_for_update=for_update or None) if 0 < card_id <= MAX_ID else None
    if card is None or card.owner_id != user_id:
        raise NotFound(f"card {card_id} not found")
    return card


GAP = 1024  # positions are spread this far apart, so a move writes one row (see move_card)


def next_position(session: Session, user_id: int, status: str) -> int:
    """A position below every card of the column."""
    top = session.scalar(select(func.max(Card.position)).where(Card.owner_id == user_id, Card.status == status))
    return 0 if top is None else top + GAP


def top_position(session: Session, user_id: int, status: str) -> int:
    """A position above every card of the column."""
    low = session.scalar(select(func.min(Card.position)).where(Card.owner_id == user_id, Card.status == status))
    return 0 if low is None else low - GAP


def renumber(session: Session, user_id: int, status: str) -> None:
    """Spread a column `GAP` apart again, in one statement. Needed only when two neighbours touch."""
    session.flush()
    ranked = (select(Card.id.label("id"), (func.row_number().over(order_by=(Card.position, Card.id)) * GAP).label("pos"))
              .where(Card.owner_id == user_id, Card.status == status).subquery())
    session.execute(update(Card).where(Card.id == ranked.c.id).values(position=ranked.c.pos)
                    .execution_options(synchronize_session=False))
    session.expire_all()


def create_card(
    session: Session,
    user_id: int,
    title: str,
    *,
    project_id: int | None = None,
    status: str = "todo",
    due_date: Any = None,
    description: str = "",
    **confluence: Any,
) -> Card:
    status = check_status(status)
    if project_id is not None:
        get_project(session, user_id, project_id)
    lock_board(session, user_id)
    now = utcnow()
    card = Card(
        owner_id=user_id,
        project_id=project_id,
        title=clean_title(title),
        description=description or "",
        status=status,
        position=next_position(session, user_id, status),
        due_date=parse_due(due_date),
        created_at=now,
        updated_at=now,
        completed_at=now if status == "done" else None,
        source="confluence" if confluence.get("confluence_task_id") else "manual",
        sync_state="synced" if confluence.get("confluence_task_id") else "none",
        **confluence,
    )
    session.add(card)
    session.flush()
    return card


def edit_card(
    session: Session,
    user_id: int,
    card_id: int,
    *,
    title: str | None = None,
    description: str | None = None,
    due_date: Any = ...,
    project_id: Any = ...,
) -> Card:
    card = get_card(session, user_id, card_id)
    if title is not None:
        card.title = clean_title(title)
    if description is not None:
        card.description = description
    if due_date is not ...:
        card.due_date = parse_due(due_date)
    if project_id is not ...:
        card.project_id = None if project_id is None else get_project(session, user_id, project_id).id
    card.updated_at, card.returned_from_snooze_at = utcnow(), None
    return card


def move_card(
    session: Session, user_id: int, card_id: int, status: str, position: int | None = None, *,
    before: int | None = None,
) -> Card:
    """Move a card to `status`: above the card `before`, or at index `position`, or to the column's end.

    Writes the moved card only: its new position is the midpoint of its new neighbours' (a column is
    renumbered in one statement on the rare move that finds no gap). A Confluence card entering or
    leaving `done` gets an outbox entry in this same transaction.
    """
    status = check_status(status)
    lock_board(session, user_id)
    card = get_card(session, user_id, card_id, for_update=True)
    if card.archived_at is not None:
        raise ValidationError(f"card {card_id} is archived: restore it first")
    old_status = card.status
    column = (Card.owner_id == user_id, Card.status == status, Card.id != card.id, Card.archived_at.is_(None))
    below: Card | None = None  # the card that will sit right under the moved one
    if before is not None:
        below = session.get(Card, before)
        if below is None or below.owner_id != user_id or below.id == card.id or below.archived_at is not None:
            raise NotFound(f"card {before} not found on your board")
        if below.status != status:
            raise ValidationError(f"card {before} is no longer in {status}: the board changed, try again")
    elif position is not None:
        below = session.scalar(select(Card).where(*column).order_by(Card.position, Card.id)
                               .offset(max(0, int(position))).limit(1))
    if below is None:
        last = session.scalar(select(func.max(Card.position)).where(*column))
        if last is not None and (old_status != status or card.position <= last):
            card.position = last + GAP
    else:
        for _ in range(2):  # at most one renumbering
            above = session.scalar(select(func.max(Card.position)).where(*column, Card.position < below.position))
            crowded = (session.scalar(select(func.count()).where(*column, Card.position == below.position)) or 0) > 1
            low = below.position - 2 * GAP if above is None else above
            if below.position - low >= 2 and not crowded:
                card.position = (low + below.position) // 2
                break
            renumber(session, user_id, status)
        else:  # unreachable: a renumbered column always has gaps
            raise RuntimeError("no room in the column after renumbering")
    card.status = status
    card.updated_at = utcnow()
    card.returned_from_snooze_at = None  # the person has it in hand again
    if status == "done" and old_status != "done":
        card.completed_at = utcnow()
    elif status != "done":
        card.completed_at = None
    if (card.source == "confluence" and card.confluence_task_id and not card.gone_reason
            and (old_status == "done") != (status == "done")):
        outbox.enqueue(session, card, remote_status_for(status))
    if old_status != status:
        audit.record(
            session, user_id, "board.card_moved",
            {"card_id": card.id, "from": old_status, "to": status}, provider="trackli",
        )
    session.flush()
    return card


def delete_card(session: Session, user_id: int, card_id: int) -> None:
    """Delete a card for good. A Confluence task stays approved in the queue, so it does not come back."""
    card = get_card(session, user_id, card_id)
    audit.record(session, user_id, "board.card_deleted", {"card_id": card.id, "title": card.title[:100],
                                                          "confluence_task_id": card.confluence_task_id}, provider="trackli")
    session.delete(card)
    session.flush()


def archive_card(session: Session, user_id: int, card_id: int, archived: bool = True) -> Card:
    """Take a card off the board (kept, restorable), or put it back at the end of its column."""
    card = get_card(session, user_id, card_id, for_update=True)
    if archived and card.archived_at is None:
        card.archived_at = utcnow()
    elif not archived and card.archived_at is not None:
        lock_board(session, user_id)
        card.archived_at = None
        card.position = next_position(session, user_id, card.status)
    else:
        return card
    card.updated_at = utcnow()
    audit.record(session, user_id, "board.card_archived" if archived else "board.card_restored",
                 {"card_id": card.id}, provider="trackli")
    return card


def unlink_card(session: Session, user_id: int, card_id: int) -> Card:
    """Keep the card as a local one: nothing more is sent to Confluence for it, and sync leaves it alone.

    The Confluence link stays on the card for reference; its unsent completions are dropped.
    """
    card = get_card(session, user_id, card_id, for_update=True)
    if card.source != "confluence":
        raise ValidationError(f"card {card_id} is not linked to Confluence")
    dropped = outbox.drop_unsent(session, card.id)
    task_id = card.confluence_task_id
    card.source, card.confluence_task_id, card.connection_id = "manual", None, None
    card.sync_state, card.sync_error, card.confluence_remote_status, card.gone_reason = "none", None, None, None
    card.updated_at = utcnow()
    audit.record(session, user_id, "board.card_unlinked", {"card_id": card.id, "confluence_task_id": task_id,
                                                           "unsent_dropped": dropped}, provider="trackli")
    session.flush()
    return card


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
        return bool(self.due_date and self.status != "done" and self.due_date < (today or dt.date.today()))

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
    stmt = _filtered(_card_rows(), user_id, f, today or dt.date.today())
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
    counted = _filtered(select(Card.status, func.count()), user_id, where, today or dt.date.today()).group_by(Card.status)
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
    today = today or dt.date.today()
    counts = column_counts(session, user_id, where, today)
    columns: dict[str, list[CardView]] = {}
    for status in CARD_STATUSES:
        if not counts[status]:
            columns[status] = []
            continue
        stmt = _filtered(_card_rows(), user_id, where, today).where(Card.status == status).order_by(Card.position, Card.id)
        columns[status] = _views(session, stmt if limit is None else stmt.limit(limit))
    return Board(columns, counts)


def mark_remote_completed(session: Session, card: Card) -> None:
    """Confluence says the task is complete: move the card to done without calling Confluence back."""
    if card.status != "done":
        lock_board(session, card.owner_id)
        card.position = next_position(session, card.owner_id, "done")
        card.status = "done"
        card.completed_at = utcnow()
        card.updated_at = utcnow()
    card.confluence_remote_status = "complete"
    card.sync_state = "synced"
    card.sync_error = None
    card.snoozed_until = None  # done: nothing to come back to

