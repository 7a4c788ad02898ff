"""The integration audit log: `record()` and the queries the audit page and CLI make.

Details are scrubbed before they are written: a key that looks like a secret is dropped, and a
value that contains a known secret is masked, so no token ever lands in the log.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Iterable, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.orm import Session

from trackli.models import AuditEntry, Card, PendingTask, utcnow

SECRET_KEYS = re.compile(r"(token|secret|password|authorization|code|cookie|state)$", re.I)
SECRET_VALUES = re.compile(
    r"(Bearer\s+[\w\-\.~+/=]+|Basic\s+[\w+/=]+|(?:access|refresh)_token[\"'=:\s]+[\w\-\.~+/=]+)", re.I
)


def scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("[redacted]" if SECRET_KEYS.search(str(k)) else scrub(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return SECRET_VALUES.sub("[redacted]", value)
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return str(value)


def record(
    session: Session,
    user_id: int | None,
    event_type: str,
    details: dict[str, Any] | None = None,
    *,
    success: bool = True,
    error: str | None = None,
    provider: str = "atlassian",
) -> AuditEntry:
    entry = AuditEntry(
        user_id=user_id,
        provider=provider,
        event_type=event_type,
        details=scrub(details or {}),
        success=success,
        error_message=scrub(error)[:2000] if error else None,
        created_at=utcnow(),
    )
    session.add(entry)
    return entry


def query(
    session: Session,
    user_id: int,
    *,
    event_types: Iterable[str] | None = None,
    success: bool | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int | None = 500,
) -> list[AuditEntry]:
    """A user's entries, newest first."""
    stmt = select(AuditEntry).where(AuditEntry.user_id == user_id)
    event_types = list(event_types or [])
    if event_types:
        stmt = stmt.where(AuditEntry.event_type.in_(event_types))
    if success is not None:
        stmt = stmt.where(AuditEntry.success.is_(success))
    if since is not None:
        stmt = stmt.where(AuditEntry.created_at >= since)
    if until is not None:
        stmt = stmt.where(AuditEntry.created_at < until)
    stmt = stmt.order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
    if limit:
        stmt = stmt.limit(limit)
    return list(session.scalars(stmt))


def subjects(session: Session, user_id: int, entries: Iterable[AuditEntry]) -> dict[int, str]:
    """What each entry is about, by title: the card or the queue row it names (the person's own only)."""
    entries = list(entries)

    def ids(entry: AuditEntry) -> list[int]:
        details = entry.details if isinstance(entry.details, dict) else {}
        found = details.get("pending_ids", [details.get("pending_id")])
        return [i for i in found if isinstance(i, int)] if isinstance(found, list) else []

    def card_of(entry: AuditEntry) -> int | None:
        card = entry.details.get("card_id") if isinstance(entry.details, dict) else None
        return card if isinstance(card, int) else None

    card_ids = {c for c in map(card_of, entries) if c is not None}
    pending_ids = {i for e in entries for i in ids(e)[:1]}
    cards = dict(session.execute(select(Card.id, Card.title).where(
        Card.owner_id == user_id, Card.id.in_(card_ids))).all()) if card_ids else {}
    rows = dict(session.execute(select(PendingTask.id, PendingTask.task_title).where(
        PendingTask.user_id == user_id, PendingTask.id.in_(pending_ids))).all()) if pending_ids else {}
    out: dict[int, str] = {}
    for entry in entries:
        card, several = card_of(entry), ids(entry)
        if card is not None and card in cards:
            out[entry.id] = cards[card]
        elif len(several) == 1 and several[0] in rows:
            out[entry.id] = rows[several[0]]
        elif several:
            count = entry.details.get("count") if isinstance(entry.details.get("count"), int) else len(several)
            out[entry.id] = f"{count} tasks"
        elif card is not None and isinstance(entry.details.get("title"), str):  # a deleted card names itself
            out[entry.id] = entry.details["title"]
    return out


def event_types(session: Session, user_id: int) -> list[str]:
    return list(
        session.scalars(
            select(AuditEntry.event_type).where(AuditEntry.user_id == user_id).distinct().order_by(AuditEntry.event_type)
        )
    )


def purge_older_than(session: Session, days: int) -> int:
    cutoff = utcnow() - dt.timedelta(days=days)
    result = cast(CursorResult[Any], session.execute(delete(AuditEntry).where(AuditEntry.created_at < cutoff)))
    return result.rowcount or 0


def as_dict(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "created_at": entry.created_at.isoformat(),
        "event_type": entry.event_type,
        "provider": entry.provider,
        "success": entry.success,
        "error": entry.error_message,
        "details": entry.details,
    }
