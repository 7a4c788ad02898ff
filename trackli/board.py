"""Card commands: create, edit, move, archive, unlink, delete. Every function is scoped to the acting user.

Moving a Confluence card into or out of `done` queues its completion sync in the same
transaction (trackli.outbox): the board never waits on Confluence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from trackli import audit, outbox
from trackli.errors import NotFound, ValidationError
from trackli.fields import check_status, clean_title, parse_due
from trackli.models import MAX_ID, Card, PendingTask, remote_status_for, utcnow
from trackli.positions import GAP, lock_board, next_position, renumber, top_position
from trackli.projects import get_project, resolve_project

# Names other rooms and pages have used from here; their homes are fields, positions and projects.
__all__ = ["GAP", "check_status", "clean_title", "create_card", "delete_card", "edit_card", "get_card", "lock_board",
           "mark_remote_completed", "move_card", "next_position", "parse_due", "renumber", "resolve_project",
           "top_position", "unlink_card", "archive_card", "DeletedCard", "undelete_card", "unarchive_to"]


# ---- cards --------------------------------------------------------------------------------------

def get_card(session: Session, user_id: int, card_id: int, *, for_update: bool = False) -> Card:
    card = session.get(Card, card_id, with_for_update=for_update or None) if 0 < card_id <= MAX_ID else None
    if card is None or card.owner_id != user_id:
        raise NotFound(f"card {card_id} not found")
    return card


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
    before: int | None = None, send_after_s: float = 0.0,
) -> Card:
    """Move a card to `status`: above the card `before`, or at index `position`, or to the column's end.
    `send_after_s`: its completion waits that long before it may be sent (the board's Undo window), so a
    move back within it sends nothing at all.

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
        outbox.enqueue(session, card, remote_status_for(status), not_before_s=send_after_s)
    if old_status != status:
        audit.record(
            session, user_id, "board.card_moved",
            {"card_id": card.id, "from": old_status, "to": status}, provider="trackli",
        )
    session.flush()
    return card


def place_of(session: Session, user_id: int, card_id: int) -> tuple[str, int | None]:
    """Where a card sits: its column and the card right below it (None at the end) — what Undo puts back."""
    card = get_card(session, user_id, card_id)
    below = session.scalar(select(Card.id).where(
        Card.owner_id == user_id, Card.status == card.status, Card.archived_at.is_(None), Card.id != card.id,
        (Card.position > card.position) | ((Card.position == card.position) & (Card.id > card.id)))
        .order_by(Card.position, Card.id).limit(1))
    return card.status, below


@dataclass(frozen=True)
class DeletedCard:
    """A card as it was the moment it was deleted (or sent back): what Undo puts back, id and all."""

    values: dict[str, Any]
    pending_id: int | None  # the queue row that approved it, if any

    @property
    def card_id(self) -> int:
        return int(self.values["id"])


def keep(session: Session, card: Card) -> DeletedCard:
    """Everything needed to bring `card` back after it is deleted."""
    values = {attr.key: getattr(card, attr.key) for attr in Card.__mapper__.column_attrs}
    pending_id = session.scalar(select(PendingTask.id).where(PendingTask.card_id == card.id))
    return DeletedCard(values, pending_id)


def delete_card(session: Session, user_id: int, card_id: int) -> DeletedCard:
    """Delete a card. A Confluence task stays approved in the queue, so it does not come back; what is
    returned lets Undo bring the card back (`undelete_card`)."""
    card = get_card(session, user_id, card_id)
    kept = keep(session, card)
    audit.record(session, user_id, "board.card_deleted", {"card_id": card.id, "title": card.title[:100],
                                                          "confluence_task_id": card.confluence_task_id}, provider="trackli")
    session.delete(card)
    session.flush()
    return kept


def undelete_card(session: Session, user_id: int, kept: DeletedCard, *, relink: bool = True) -> Card:
    """Undo a delete: the card back with its id, place, fields and Confluence link; the queue row that
    approved it points at it again (`relink`); an unsent completion it had is queued again."""
    if kept.values.get("owner_id") != user_id:
        raise NotFound(f"card {kept.card_id} not found")
    lock_board(session, user_id)
    if session.get(Card, kept.card_id) is not None:
        raise ValidationError("the card is already back (or its number was taken meanwhile)")
    card = Card(**kept.values)
    if card.project_id is not None:
        try:
            get_project(session, user_id, card.project_id)
        except NotFound:  # its project was deleted meanwhile
            card.project_id = None
    session.add(card)
    session.flush()
    if relink and kept.pending_id is not None:
        row = session.get(PendingTask, kept.pending_id)
        if row is not None and row.user_id == user_id and row.status == "approved" and row.card_id is None:
            row.card_id = card.id
    if card.source == "confluence" and card.sync_state == "waiting":
        outbox.enqueue_current(session, card)  # its unsent completion went with it: queue it again
    audit.record(session, user_id, "board.card_undeleted", {"card_id": card.id}, provider="trackli")
    session.flush()
    return card


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


def unarchive_to(session: Session, user_id: int, card_id: int, place: tuple[str, int | None]) -> Card:
    """Undo an archive: the card back on the board where it sat (`place_of` before it was archived),
    or at the end of its column if the card it sat above has gone meanwhile."""
    card = archive_card(session, user_id, card_id, False)
    status, below = place
    if below is not None:
        try:
            card = move_card(session, user_id, card_id, status, before=below)
        except (NotFound, ValidationError):
            pass
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

