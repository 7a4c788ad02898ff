"""The Trackli side: projects and cards. Every function is scoped to the acting user.

Moving a Confluence card into or out of `done` queues its completion sync in the same
transaction (trackli.outbox): the board never waits on Confluence.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from trackli import audit, outbox
from trackli.errors import NotFound, ValidationError
from trackli.db import lock_row
from trackli.models import (
    CARD_STATUSES,
    AtlassianConnection,
    Card,
    CardStatus,
    Project,
    User,
    remote_status_for,
    utcnow,
)

MAX_TITLE = 500
MAX_PROJECT_NAME = 100
COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


# ---- validation ---------------------------------------------------------------------------------

CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


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
    card = session.get(Card, card_id, with_for_update=for_update or None)
    if card is None or card.owner_id != user_id:
        raise NotFound(f"card {card_id} not found")
    return card


def next_position(session: Session, user_id: int, status: str) -> int:
    top = session.scalar(select(func.max(Card.position)).where(Card.owner_id == user_id, Card.status == status))
    return 0 if top is None else top + 1


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
    card.updated_at = utcnow()
    return card


def move_card(
    session: Session, user_id: int, card_id: int, status: str, position: int | None = None
) -> Card:
    """Move a card to `status` at `position` (default: the end of the column).

    A Confluence card entering or leaving `done` gets an outbox entry in this same transaction.
    """
    status = check_status(status)
    lock_board(session, user_id)
    card = get_card(session, user_id, card_id, for_update=True)
    old_status = card.status
    column = list(
        session.scalars(
            select(Card)
            .where(Card.owner_id == user_id, Card.status == status, Card.id != card.id)
            .order_by(Card.position, Card.id)
        )
    )
    index = len(column) if position is None else max(0, min(int(position), len(column)))
    column.insert(index, card)
    for pos, other in enumerate(column):
        if other.position != pos or other is card:
            other.position = pos
    if old_status != status:  # close the gap the card leaves behind
        left = session.scalars(select(Card).where(Card.owner_id == user_id, Card.status == old_status,
                                                  Card.id != card.id).order_by(Card.position, Card.id))
        for pos, other in enumerate(left):
            if other.position != pos:
                other.position = pos
    card.status = status
    card.updated_at = utcnow()
    if status == "done" and old_status != "done":
        card.completed_at = utcnow()
    elif status != "done":
        card.completed_at = None
    if card.source == "confluence" and card.confluence_task_id and (old_status == "done") != (status == "done"):
        outbox.enqueue(session, card, remote_status_for(status))
    if old_status != status:
        audit.record(
            session, user_id, "board.card_moved",
            {"card_id": card.id, "from": old_status, "to": status}, provider="trackli",
        )
    session.flush()
    return card


def delete_card(session: Session, user_id: int, card_id: int) -> None:
    card = get_card(session, user_id, card_id)
    session.delete(card)
    session.flush()


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
        }


def list_cards(
    session: Session, user_id: int, *, project_id: int | None = None, status: str | None = None
) -> list[CardView]:
    stmt = (
        select(Card, Project.name, Project.colour,
               func.coalesce(AtlassianConnection.site_name, AtlassianConnection.site_url))
        .outerjoin(Project, Project.id == Card.project_id)
        .outerjoin(AtlassianConnection, AtlassianConnection.id == Card.connection_id)
        .where(Card.owner_id == user_id)
    )
    if project_id is not None:
        stmt = stmt.where(Card.project_id == project_id)
    if status is not None:
        stmt = stmt.where(Card.status == check_status(status))
    stmt = stmt.order_by(Card.status, Card.position, Card.id)
    return [
        CardView(
            id=t.id, title=t.title, status=t.status, position=t.position, project_id=t.project_id,
            project=name, project_colour=colour, due_date=t.due_date, source=t.source,
            confluence_task_id=t.confluence_task_id, confluence_page_title=t.confluence_page_title,
            confluence_space_key=t.confluence_space_key, confluence_url=t.confluence_url,
            sync_state=t.sync_state, sync_error=t.sync_error, updated_at=t.updated_at, site=site,
        )
        for t, name, colour, site in session.execute(stmt)
    ]


def board(session: Session, user_id: int, *, project_id: int | None = None) -> dict[str, list[CardView]]:
    """The user's cards by status, each column in position order."""
    columns: dict[str, list[CardView]] = {status: [] for status in CARD_STATUSES}
    for card in list_cards(session, user_id, project_id=project_id):
        columns[card.status].append(card)
    return columns


def change_stamp(session: Session, user_id: int) -> tuple:
    """A cheap value that changes whenever the user's board changes (for auto-refresh)."""
    return tuple(
        session.execute(
            select(func.count(Card.id), func.max(Card.updated_at)).where(Card.owner_id == user_id)
        ).one()
    )


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

