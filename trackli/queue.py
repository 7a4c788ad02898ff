"""The approval queue: Confluence tasks waiting for the person to approve (a card), dismiss or restore.

Pending task states: pending -> approved (a card exists) | dismissed (can be restored) | gone
(no longer assigned and incomplete upstream; the reason is kept). `trackli.sync` fills the queue;
everything here is the person's side of it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Iterable

from sqlalchemy import Integer, and_, exists, func, insert, literal, or_, select, update
from sqlalchemy.orm import Session

from trackli import audit, board, changes, fields, outbox, positions, projects
from trackli.batches import chunks
from trackli.db import contains_words
from trackli.errors import NotFound, ValidationError
from trackli.models import AtlassianConnection, Card, OutboxEntry, PendingStatus, PendingTask, Project, utcnow


@dataclass(frozen=True)
class PendingView:
    id: int
    connection_id: int
    confluence_task_id: str
    title: str
    due_date: dt.date | None
    page_title: str | None
    space_key: str | None
    space_name: str | None
    url: str | None
    state: str
    project_id: int | None
    project: str | None
    edited_fields: tuple[str, ...]
    gone_reason: str | None
    card_id: int | None
    site: str | None = None  # the Atlassian site's name: a person may connect several
    rule: str | None = None  # the name of the rule that routed the row
    snoozed_until: dt.date | None = None
    returned_from_snooze: bool = False  # back from a snooze (shown first, marked), until the person acts on it

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "confluence_task_id": self.confluence_task_id, "title": self.title,
            "due_date": self.due_date.isoformat() if self.due_date else None, "page_title": self.page_title,
            "space_key": self.space_key, "space_name": self.space_name, "url": self.url, "state": self.state,
            "project": self.project, "rule": self.rule,
            "snoozed_until": self.snoozed_until.isoformat() if self.snoozed_until else None,
            "returned_from_snooze": self.returned_from_snooze,
        }


QUEUE_STATES = ("pending", "snoozed", "dismissed", "approved", "gone", "all")


def _narrowed(stmt: Any, user_id: int, state: str, space_key: str | None, text: str | None,
              due_before: dt.date | None) -> Any:
    if state not in QUEUE_STATES:
        raise ValidationError(f"unknown state {state!r}: use one of {', '.join(QUEUE_STATES)}")
    stmt = stmt.where(PendingTask.user_id == user_id)
    if state != "all":
        stmt = stmt.where(PendingTask.status == state)
    if space_key:
        stmt = stmt.where(PendingTask.confluence_space_key == space_key)
    stmt = stmt.where(*contains_words(text, PendingTask.task_title))
    if due_before:
        stmt = stmt.where(PendingTask.due_date <= due_before)
    return stmt


def count_pending(session: Session, user_id: int, state: str = "pending", *, space_key: str | None = None,
                  text: str | None = None, due_before: dt.date | None = None) -> int:
    """How many rows `list_pending` would return without a limit, counted in SQL."""
    stmt = _narrowed(select(func.count()).select_from(PendingTask), user_id, state, space_key, text, due_before)
    return session.scalar(stmt) or 0


def spaces(session: Session, user_id: int, state: str = "pending") -> list[str]:
    """The space keys of the person's queue rows in `state` (for the space filter)."""
    return sorted(space_names(session, user_id, state))


def space_names(session: Session, user_id: int, state: str = "pending") -> dict[str, str]:
    """Space key -> the space's name (the key when no name is known), as the grid shows it."""
    stmt = _narrowed(select(PendingTask.confluence_space_key, PendingTask.confluence_space_name).distinct(),
                     user_id, state, None, None, None).where(PendingTask.confluence_space_key.isnot(None))
    names: dict[str, str] = {}
    for key, name in session.execute(stmt):
        if key:
            names[key] = names.get(key) or name or key
    return names


def list_pending(
    session: Session, user_id: int, state: str = "pending", *, space_key: str | None = None,
    text: str | None = None, due_before: dt.date | None = None, stable_order: bool = False,
    limit: int | None = None, offset: int = 0, only_id: int | None = None,
) -> list[PendingView]:
    """The user's queue, soonest due first (or in discovery order, which edits never reshuffle);
    a page of it with `limit` and `offset`."""
    stmt = _narrowed(
        select(PendingTask.id, PendingTask.connection_id, PendingTask.confluence_task_id, PendingTask.task_title,
               PendingTask.due_date, PendingTask.confluence_page_title, PendingTask.confluence_space_key,
               PendingTask.confluence_space_name, PendingTask.confluence_url, PendingTask.status,
               PendingTask.project_id, PendingTask.edited_fields, PendingTask.gone_reason, PendingTask.card_id,
               Project.name, func.coalesce(AtlassianConnection.site_name, AtlassianConnection.site_url),
               PendingTask.rule_name, PendingTask.snoozed_until, PendingTask.returned_from_snooze_at)
        .outerjoin(Project, Project.id == PendingTask.project_id)
        .join(AtlassianConnection, AtlassianConnection.id == PendingTask.connection_id),
        user_id, state, space_key, text, due_before)
    if only_id is not None:
        stmt = stmt.where(PendingTask.id == only_id)
    back_first = PendingTask.returned_from_snooze_at.is_(None)  # back from a snooze: at the top
    if stable_order:
        stmt = stmt.order_by(back_first, PendingTask.id)
    elif state == "snoozed":
        stmt = stmt.order_by(PendingTask.snoozed_until, PendingTask.id)
    else:
        stmt = stmt.order_by(back_first, PendingTask.due_date.is_(None), PendingTask.due_date, PendingTask.id)
    if limit is not None:
        stmt = stmt.limit(limit).offset(max(0, offset))
    return [  # plain rows, only the columns shown: no ORM object per row
        PendingView(
            id=r[0], connection_id=r[1], confluence_task_id=r[2], title=r[3], due_date=r[4], page_title=r[5],
            space_key=r[6], space_name=r[7], url=r[8], state=r[9], project_id=r[10],
            edited_fields=tuple(r[11] or ()), gone_reason=r[12], card_id=r[13], project=r[14], site=r[15],
            rule=r[16], snoozed_until=r[17], returned_from_snooze=r[18] is not None,
        )
        for r in session.execute(stmt)
    ]


def pending_view(session: Session, user_id: int, pending_id: int) -> PendingView | None:
    """One of the person's queue rows, in any state; None if there is no such row of theirs."""
    found = list_pending(session, user_id, "all", only_id=pending_id)
    return found[0] if found else None


def arrivals_after(session: Session, user_id: int, mark: int | None) -> tuple[int, int]:
    """(tasks waiting that entered the queue after `mark`, the new mark): rows are numbered as they
    arrive, so "what is new since this tab last looked" is one indexed count. No mark: (0, newest)."""
    newest = session.scalar(select(func.max(PendingTask.id)).where(PendingTask.user_id == user_id)) or 0
    if mark is None:
        return 0, newest
    count = session.scalar(select(func.count()).select_from(PendingTask).where(
        PendingTask.user_id == user_id, PendingTask.id > mark, PendingTask.status == "pending")) or 0
    return count, max(newest, mark)


def pending_count(session: Session, user_id: int) -> int:
    return session.scalar(select(func.count()).select_from(PendingTask).where(
        PendingTask.user_id == user_id, PendingTask.status == "pending")) or 0


def _owned(session: Session, user_id: int, ids: Iterable[int], *, lock: bool = False) -> list[PendingTask]:
    ids = sorted({int(i) for i in ids})
    if not ids:
        return []
    rows: list[PendingTask] = []
    for batch in chunks(ids, 500):
        stmt = select(PendingTask).where(PendingTask.user_id == user_id, PendingTask.id.in_(batch))
        if lock:
            stmt = stmt.with_for_update()
        rows.extend(session.scalars(stmt))
    missing = set(ids) - {r.id for r in rows}
    if missing:
        shown = ", ".join(str(i) for i in sorted(missing)[:10])
        raise NotFound(f"pending task{'s' if len(missing) > 1 else ''} {shown} not found")
    return rows


def edit_pending(
    session: Session, user_id: int, pending_id: int, *, title: Any = ..., due_date: Any = ..., project: Any = ...,
) -> PendingTask:
    [row] = _owned(session, user_id, [pending_id])
    edited = list(row.edited_fields or [])
    if title is not ...:
        row.task_title = fields.clean_title(title)
        edited.append("title")
    if due_date is not ...:
        row.due_date = fields.parse_due(due_date)
        edited.append("due_date")
    if project is not ...:
        row.project_id = projects.resolve_project(session, user_id, project, create=True)
        edited.append("project")
    row.edited_fields = sorted(set(edited))
    row.updated_at, row.returned_from_snooze_at = utcnow(), None
    audit.record(session, user_id, "queue.edited", {"pending_id": row.id, "fields": row.edited_fields}, provider="trackli")
    return row


def approve(
    session: Session, user_id: int, ids: Iterable[int] = (), *, all_pending: bool = False, project: Any = None,
) -> list[Card]:
    """Cards for the given pending tasks (or all pending), in one transaction. Approving twice makes one card."""
    card_ids = approve_ids(session, user_id, ids, all_pending=all_pending, project=project)
    cards: list[Card] = []
    for batch in chunks(card_ids, 1000):
        cards.extend(session.scalars(select(Card).where(Card.id.in_(batch)).order_by(Card.position, Card.id)))
    return cards


def approve_ids(
    session: Session, user_id: int, ids: Iterable[int] = (), *, all_pending: bool = False, project: Any = None,
    column: str = "todo", known_pending: bool = False,
) -> list[int]:
    """`approve`, as set-based statements (INSERT … SELECT the cards, UPDATE the rows), returning card ids:
    approving 50,000 tasks costs a few statements per thousand, not an object and a round trip each."""
    positions.lock_board(session, user_id)  # before reading: a concurrent approval of the same rows waits, then sees them approved
    default_project = projects.resolve_project(session, user_id, project, create=True)
    column = fields.check_status(column)
    if all_pending:
        chosen = list(session.scalars(select(PendingTask.id).where(
            PendingTask.user_id == user_id, PendingTask.status == "pending").order_by(PendingTask.id)))
    elif known_pending:  # the caller read them as the person's pending rows in this transaction (rules)
        chosen = sorted({int(i) for i in ids})
    else:
        chosen = sorted({int(i) for i in ids})
        refused = [r.id for r in _owned(session, user_id, chosen) if r.status in ("dismissed", "gone", "snoozed")]
        if refused:  # (an id that is not the person's: NotFound, from _owned)
            raise ValidationError(f"pending task(s) {', '.join(map(str, refused[:10]))} are dismissed, gone or snoozed: "
                                  "restore them first (a snoozed one: unsnooze it)")
    now = utcnow()
    made: list[int] = []
    for batch in chunks(chosen, 1000):
        made.extend(_approve_batch(session, user_id, batch, default_project, now, column))
    for obj in list(session.identity_map.values()):  # rows loaded earlier in this unit of work are stale now
        if isinstance(obj, PendingTask):
            session.expire(obj)
    card_ids: list[int] = []
    for batch in chunks(chosen, 1000):
        card_ids.extend(session.scalars(select(PendingTask.card_id).where(
            PendingTask.id.in_(batch), PendingTask.card_id.isnot(None)).order_by(PendingTask.id)))
    if column == "done" and made:  # approved as done: Confluence is told, as for a card moved there
        for batch in chunks(card_ids, 1000):
            for card in session.scalars(select(Card).where(Card.id.in_(batch), Card.confluence_task_id.isnot(None))):
                card.completed_at = now
                outbox.enqueue(session, card, "complete")
    if made:
        audit.record(session, user_id, "queue.approved", {
            "count": len(made), "pending_ids": made[:50],
            "card_ids": card_ids[:50],
        }, provider="trackli")
    return card_ids


NOT_WAITING = {
    "approved": "it was approved meanwhile (in another tab, or by a rule): its card is on the board",
    "dismissed": "it was dismissed meanwhile: restore it on Pending first",
    "snoozed": "it was snoozed meanwhile: it comes back on its day, or unsnooze it on Pending",
    "gone": "it is gone from Confluence",
}


def approve_into(session: Session, user_id: int, pending_id: int, column: str = "todo", *,
                 before: int | None = None) -> tuple[int, RowState]:
    """Approve one waiting task into `column` above the card `before` (None: at the column's end) — a
    drop from the board's inbox. With its row's project (or its rule's). Returns the new card's id and
    the row as it was, for Undo; a task no longer waiting is refused, saying why."""
    positions.lock_board(session, user_id)  # first, as approve_ids does: one lock order for everyone
    [row] = _owned(session, user_id, [pending_id], lock=True)
    if row.status != "pending":
        raise ValidationError(f"“{row.task_title[:80]}” was not approved: {NOT_WAITING.get(row.status, row.status)}")
    [before_state] = snapshot(session, user_id, [row.id])
    [card_id] = approve_ids(session, user_id, [row.id], column=column, known_pending=True)
    if before is not None:
        board.move_card(session, user_id, card_id, column, before=before)
    return card_id, before_state


def _approve_batch(session: Session, user_id: int, batch: list[int], default_project: int | None,
                   now: dt.datetime, column: str = "todo") -> list[int]:
    """One INSERT … SELECT of the batch's new cards, one UPDATE of its rows; the pending ids approved."""
    has_card = exists().where(Card.id == PendingTask.card_id)
    todo = (PendingTask.id.in_(batch), PendingTask.user_id == user_id,
            or_(PendingTask.status == "pending", and_(PendingTask.status == "approved", ~has_card)))
    approved = list(session.scalars(select(PendingTask.id).where(*todo).order_by(PendingTask.id)))
    if not approved:
        return []
    base = positions.next_position(session, user_id, column)
    when = literal(now, Card.created_at.type)
    columns = {
        "owner_id": literal(user_id), "project_id": func.coalesce(PendingTask.project_id, literal(default_project, Integer)),
        "title": PendingTask.task_title, "description": func.coalesce(PendingTask.task_description, ""),
        "status": literal(column),
        "position": literal(base) + (func.row_number().over(order_by=PendingTask.id) - 1) * positions.GAP,
        "due_date": PendingTask.due_date, "created_at": when, "updated_at": when, "source": literal("confluence"),
        "connection_id": PendingTask.connection_id, "confluence_task_id": PendingTask.confluence_task_id,
        "confluence_page_id": func.coalesce(PendingTask.confluence_page_id, PendingTask.confluence_blogpost_id),
        "confluence_page_title": PendingTask.confluence_page_title,
        "confluence_space_key": PendingTask.confluence_space_key,
        "confluence_space_name": PendingTask.confluence_space_name, "confluence_url": PendingTask.confluence_url,
        "confluence_remote_status": func.coalesce(PendingTask.remote_status, "incomplete"),
        "sync_state": literal("synced"),
    }
    session.execute(insert(Card).from_select(list(columns), select(*columns.values()).where(PendingTask.id.in_(approved))))
    card_of = (select(Card.id).where(Card.connection_id == PendingTask.connection_id,
                                     Card.confluence_task_id == PendingTask.confluence_task_id)
               .order_by(Card.id.desc()).limit(1).scalar_subquery())
    session.execute(update(PendingTask).where(PendingTask.id.in_(approved))
                    .values(status="approved", card_id=card_of, updated_at=now)
                    .execution_options(synchronize_session=False))
    changes.touch(session, user_id, "queue", "board")
    return approved


def send_back(session: Session, user_id: int, card_id: int) -> PendingTask:
    """Undo a mistaken approval: the card goes away and its Confluence task waits in the queue again,
    with the card's title, due date and project kept as the person's edits."""
    positions.lock_board(session, user_id)
    card = board.get_card(session, user_id, card_id, for_update=True)
    row = session.scalar(select(PendingTask).where(PendingTask.user_id == user_id, PendingTask.card_id == card.id)
                         .with_for_update()) if card.source == "confluence" else None
    if row is None:
        raise ValidationError("only a card approved from the queue can be sent back to it")
    if card.status == "done":
        raise ValidationError("this card is done (and so is its Confluence task): move it out of Done first, "
                              "so Confluence is told, then send it back")
    edits = set(row.edited_fields or ())
    if card.title != row.task_title:
        row.task_title = card.title
        edits.add("title")
    if card.due_date != row.due_date:
        row.due_date = card.due_date
        edits.add("due_date")
    if card.project_id is not None:
        row.project_id = card.project_id
        edits.add("project")
    row.status, row.card_id, row.edited_fields, row.updated_at = "pending", None, sorted(edits), utcnow()
    audit.record(session, user_id, "board.card_sent_back", {"card_id": card.id, "pending_id": row.id}, provider="trackli")
    session.delete(card)
    session.flush()
    return row


@dataclass(frozen=True)
class SentBack:
    """What sending a card back changed: the queue row as it was, and the card (for Undo)."""

    row: "RowState"
    card: board.DeletedCard


def send_back_undoable(session: Session, user_id: int, card_id: int) -> SentBack:
    """`send_back`, keeping what `undo_send_back` needs to put the card and its row back as they were."""
    card = board.get_card(session, user_id, card_id)
    kept = board.keep(session, card)
    before = snapshot(session, user_id, [kept.pending_id]) if kept.pending_id is not None else []
    row = send_back(session, user_id, card_id)
    return SentBack(before[0] if before else RowState(row.id, "approved", None, card_id), kept)


def undo_send_back(session: Session, user_id: int, sent: SentBack) -> Card:
    """The card back on the board (id, place, fields), its task approved again — unless the task was
    approved, dismissed or snoozed since, which is left as the person then chose."""
    row = session.get(PendingTask, sent.row.pending_id)
    if row is None or row.user_id != user_id:
        raise NotFound("the task is no longer in your queue")
    if row.status != "pending":
        raise ValidationError("the task was approved, dismissed or snoozed since it was sent back")
    card = board.undelete_card(session, user_id, sent.card, relink=False)
    put_back(session, user_id, [sent.row])
    return card


def dismiss(session: Session, user_id: int, ids: Iterable[int]) -> int:
    rows = _owned(session, user_id, ids, lock=True)
    changed = [r for r in rows if r.status == "pending"]
    if any(r.status == "approved" for r in rows):
        raise ValidationError("approved tasks already have a card: move or delete the card instead")
    for row in changed:
        row.status, row.updated_at = "dismissed", utcnow()
    if changed:
        audit.record(session, user_id, "queue.dismissed", {"count": len(changed), "pending_ids": [r.id for r in changed][:50]},
                     provider="trackli")
    return len(changed)


def restore(session: Session, user_id: int, ids: Iterable[int]) -> int:
    rows = _owned(session, user_id, ids, lock=True)
    changed = [r for r in rows if r.status in ("dismissed", "gone")]
    for row in changed:
        row.status, row.gone_reason, row.updated_at = "pending", None, utcnow()
    if changed:
        audit.record(session, user_id, "queue.restored", {"count": len(changed), "pending_ids": [r.id for r in changed][:50]},
                     provider="trackli")
    return len(changed)


# ---- undo ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RowState:
    """A queue row as it was before a bulk action, to put it back exactly so."""

    pending_id: int
    status: PendingStatus
    gone_reason: str | None
    card_id: int | None
    project_id: int | None = None
    rule_id: int | None = None
    rule_name: str | None = None
    snoozed_until: dt.date | None = None


def snapshot(session: Session, user_id: int, ids: Iterable[int]) -> list[RowState]:
    return [RowState(r.id, r.status, r.gone_reason, r.card_id, r.project_id, r.rule_id, r.rule_name,
                     r.snoozed_until) for r in _owned(session, user_id, ids)]


@dataclass
class Undone:
    rows: int = 0  # rows back as they were
    cards_removed: int = 0  # cards the action made, untouched since, taken off the board
    kept: list[int] = field(default_factory=list)  # pending ids whose card was worked on since: left approved

    def describe(self) -> str:
        text = f"{self.rows} task(s) back as they were"
        if self.cards_removed:
            text += f", {self.cards_removed} card(s) taken off the board"
        if self.kept:
            text += f"; {len(self.kept)} card(s) were moved or edited since and stay on the board"
        return text


def put_back(session: Session, user_id: int, states: Iterable[RowState], column: str = "todo") -> Undone:
    """Undo a bulk approve, dismiss, restore or rule: each row gets its status, reason, card, project,
    rule and snooze back; a card the action made (in `column`) is removed only while it has no history
    of its own (not moved, edited or sent)."""
    positions.lock_board(session, user_id)
    states = list(states)
    rows = {r.id: r for r in _owned(session, user_id, [s.pending_id for s in states], lock=True)}
    out = Undone()
    for state in states:
        row = rows[state.pending_id]
        made = row.card_id if row.card_id != state.card_id else None
        if made is not None:
            card = session.get(Card, made)
            if card is not None and not _untouched(session, card, row, column):
                out.kept.append(row.id)
                continue
            if card is not None:
                session.delete(card)
                out.cards_removed += 1
        row.status, row.gone_reason, row.card_id = state.status, state.gone_reason, state.card_id
        row.project_id, row.rule_id, row.rule_name = state.project_id, state.rule_id, state.rule_name
        row.snoozed_until = state.snoozed_until
        row.updated_at = utcnow()
        out.rows += 1
    session.flush()
    if out.rows:
        audit.record(session, user_id, "queue.undone", {"count": out.rows, "cards_removed": out.cards_removed,
                                                        "kept": out.kept[:50]}, provider="trackli")
    return out


def _untouched(session: Session, card: Card, row: PendingTask, column: str = "todo") -> bool:
    """Still the card approving `row` made: in its column, with the row's title, date and text, nothing sent."""
    sent = session.scalar(select(func.count()).select_from(OutboxEntry).where(OutboxEntry.card_id == card.id))
    return (card.status == column and not sent and card.title == row.task_title and card.due_date == row.due_date
            and card.description == (row.task_description or ""))


def changes_since(session: Session, user_id: int, since: Any) -> int:
    """How many of the person's queue rows changed after `since` (what a deferred refresh would show)."""
    return session.scalar(select(func.count()).select_from(PendingTask).where(
        PendingTask.user_id == user_id, PendingTask.updated_at > since)) or 0
