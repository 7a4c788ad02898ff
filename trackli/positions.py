"""Where a card sits in its column: positions spread `GAP` apart, so a move writes one row; the
person's board lock that serialises reordering (moves, approvals, snoozes) across transactions."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from trackli.db import lock_row
from trackli.models import Card, User


def lock_board(session: Session, user_id: int) -> None:
    """Serialise changes to one person's column order (moves, approvals) until the transaction ends.

    Re-numbering a column touches many rows; taking the user's row first gives every such
    transaction the same lock order, so concurrent moves queue up instead of deadlocking.
    """
    lock_row(session, User, user_id)


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
