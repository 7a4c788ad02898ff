"""Per-person change versions: "did anything change?" in one primary-key read, whatever the size.

Every unit of work that changes a person's cards (the `board` area), queue rows (`queue`), projects
(both) or connections (`queue`, which the header's status reads with it) bumps that person's counter
once, at commit. ORM changes are noticed by themselves (a `before_flush` hook); code that writes with
bulk statements says so with `touch`. The bump is the transaction's last write, so it never waits
while holding a lock another transaction needs first (no deadlock can run through it).
"""

from __future__ import annotations

from itertools import chain
from typing import Any, Literal

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from trackli.db import insert_for
from trackli.models import AtlassianConnection, Card, ChangeVersion, PendingTask, Project

Area = Literal["board", "queue"]
_KEY = "trackli_touched"


def touch(session: Session, user_id: int | None, *areas: Area) -> None:
    """Bump the person's versions of `areas` when this unit of work commits."""
    if user_id is not None:
        session.info.setdefault(_KEY, set()).update((int(user_id), area) for area in areas)


def version(session: Session, user_id: int, area: Area) -> int:
    """The person's current version of `area` (0 before anything changed)."""
    return session.scalar(select(getattr(ChangeVersion, area)).where(ChangeVersion.user_id == user_id)) or 0


def versions(session: Session, user_id: int) -> tuple[int, int]:
    """(board, queue) in one primary-key read: the board shows both (its inbox lane is the queue)."""
    row = session.execute(select(ChangeVersion.board, ChangeVersion.queue).where(ChangeVersion.user_id == user_id)).first()
    return (row[0], row[1]) if row else (0, 0)


def board_version(session: Session, user_id: int) -> int:
    return version(session, user_id, "board")


def queue_version(session: Session, user_id: int) -> int:
    return version(session, user_id, "queue")


@event.listens_for(Session, "before_flush")
def _notice(session: Session, flush_context: Any, instances: Any) -> None:
    for obj in chain(session.new, session.dirty, session.deleted):
        if isinstance(obj, Card):
            touch(session, obj.owner_id, "board")
        elif isinstance(obj, PendingTask):
            touch(session, obj.user_id, "queue")
        elif isinstance(obj, Project):
            touch(session, obj.owner_id, "board", "queue")
        elif isinstance(obj, AtlassianConnection):
            touch(session, obj.user_id, "queue")


@event.listens_for(Session, "before_commit")
def _bump(session: Session) -> None:
    session.flush()
    touched = session.info.pop(_KEY, None)
    if not touched:
        return
    areas: dict[int, set[str]] = {}
    for user_id, area in touched:
        areas.setdefault(user_id, set()).add(area)
    insert = insert_for(session)
    for user_id in sorted(areas):  # one order for everyone
        board, queue = int("board" in areas[user_id]), int("queue" in areas[user_id])
        stmt = insert(ChangeVersion).values(user_id=user_id, board=board, queue=queue)
        session.execute(stmt.on_conflict_do_update(index_elements=[ChangeVersion.user_id], set_={
            "board": ChangeVersion.board + board, "queue": ChangeVersion.queue + queue}))


@event.listens_for(Session, "after_soft_rollback")
def _forget(session: Session, previous_transaction: Any) -> None:
    session.info.pop(_KEY, None)
