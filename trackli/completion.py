"""Sending completions to Confluence: drain the outbox, settle each entry, retry, settle conflicts.

Above `board` (which enqueues moves) and `connections` (which gives a client): the drain claims
entries from `trackli.outbox`, PUTs each task's status and records the outcome on the entry and
the card. Several drainers at once send each change once.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import httpx
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from trackli import audit, board, connections, outbox
from trackli.atlassian.client import ConfluenceClient
from trackli.atlassian.errors import AtlassianError, MissingScope, NotFoundOrNoPermission, ReconnectRequired, RemoteError
from trackli.atlassian.transport import RetryPolicy
from trackli.backoff import doubling
from trackli.context import Context
from trackli.crypto import SecretKeyError
from trackli.errors import ValidationError
from trackli.models import AtlassianConnection, Card, FailureKind, OutboxEntry, RemoteStatus, utcnow

MAX_ATTEMPTS = 8
log = logging.getLogger("trackli.completion")


@dataclass
class DrainResult:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    requests: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def backoff(attempts: int) -> dt.timedelta:
    return dt.timedelta(seconds=doubling(1.0, attempts, 600.0))


def drain(
    ctx: Context, *, user_id: int | None = None, limit: int = 200, http: httpx.Client | None = None,
    retry: RetryPolicy | None = None, card_id: int | None = None,
) -> DrainResult:
    """Send claimed outbox entries (all users', one user's, or one card's)."""
    result = DrainResult()
    clients: dict[int, ConfluenceClient | Exception] = {}
    try:
        for entry_id in outbox.claims(ctx, user_id, limit, card_id=card_id):
            with ctx.session() as session:
                entry = session.get_one(OutboxEntry, entry_id)
                conn = session.get(AtlassianConnection, entry.connection_id) if entry.connection_id else None
                entry_card_id, desired, remote_id = entry.card_id, entry.desired_status, entry.confluence_task_id
            error = _send(ctx, conn, remote_id, desired, clients, result, http=http, retry=retry)
            _settle(ctx, entry_id, entry_card_id, desired, error, result)
    finally:
        for client in clients.values():
            if isinstance(client, ConfluenceClient):
                client.close()
    return result


def _send(ctx: Context, conn: AtlassianConnection | None, remote_id: str, desired: RemoteStatus,
          clients: dict[int, ConfluenceClient | Exception], result: DrainResult, **client_kwargs: Any) -> Exception | None:
    """PUT one entry's status; the error, whatever was raised (one poisoned entry never stops the
    others': a body that is no task, a date out of range, a bug — each entry is settled on its own)."""
    if conn is None:
        return ReconnectRequired("the card's Atlassian connection was removed")
    client = clients.get(conn.id)
    if client is None:
        try:
            client = clients[conn.id] = connections.client_for(ctx, conn, **client_kwargs)
        except OperationalError:
            raise  # the database is away for everyone: the leases hand the entries back
        except Exception as exc:
            client = clients[conn.id] = exc if isinstance(exc, (AtlassianError, SecretKeyError)) else _unexpected(exc)
    if isinstance(client, Exception):
        return client
    before = client.stats.requests
    try:
        client.set_task_status(remote_id, desired)
    except (AtlassianError, SecretKeyError) as exc:
        return exc
    except OperationalError:
        raise
    except Exception as exc:
        return _unexpected(exc)
    finally:
        result.requests += client.stats.requests - before
    return None


def _unexpected(exc: Exception) -> RemoteError:
    log.warning("sending a completion failed unexpectedly", exc_info=exc)
    return RemoteError(f"unexpected error while sending ({type(exc).__name__}); it is retried", transient=True)


def _settle(ctx: Context, entry_id: int, card_id: int, desired: RemoteStatus, error: Exception | None,
            result: DrainResult) -> None:
    now = utcnow()
    with ctx.session() as session:
        entry = session.get_one(OutboxEntry, entry_id)
        card = session.get(Card, card_id)
        if card is not None and card.source != "confluence":  # unlinked meanwhile: the card is local now
            card = None
        newer = session.scalar(select(OutboxEntry.id).where(OutboxEntry.card_id == card_id, OutboxEntry.state == "pending"))
        event = "confluence.task_completed" if desired == "complete" else "confluence.task_reopened"
        details = {"card_id": card_id, "confluence_task_id": entry.confluence_task_id, "status": desired,
                   "attempts": entry.attempts + 1}
        entry.attempts += 1
        entry.updated_at = now
        if error is None:
            entry.state, entry.sent_at, entry.last_error = "done", now, None
            if card is not None:
                card.confluence_remote_status = desired
                if newer is None:
                    card.sync_state, card.sync_error = "synced", None
            audit.record(session, entry.user_id, event, details)
            result.sent += 1
            return
        message = str(error)
        transient = isinstance(error, AtlassianError) and not error.permanent
        if transient and entry.attempts < MAX_ATTEMPTS:
            if newer is not None:  # a newer desire replaces this one; no need to retry it
                entry.state, entry.last_error = "done", "superseded"
            else:
                entry.state, entry.last_error = "pending", message
                entry.next_attempt_at = now + backoff(entry.attempts)
                if card is not None:
                    card.sync_error = f"Retrying: {message}"
            result.retrying += 1
            return
        entry.state, entry.last_error = "failed", message
        entry.failure_kind = failure_kind(error)
        if card is not None and newer is None:
            card.sync_state, card.sync_error = "failed", message
        audit.record(session, entry.user_id, "confluence.task_update_failed", details, success=False, error=message)
        result.failed += 1
        result.errors.append(message)


def failure_kind(error: Exception) -> FailureKind:
    if isinstance(error, ReconnectRequired):
        return "reconnect"
    if isinstance(error, MissingScope):
        return "scope"
    if isinstance(error, SecretKeyError):
        return "key"
    if isinstance(error, NotFoundOrNoPermission):
        return "not_found"
    return "remote"


def retry_card(session: Session, user_id: int, card_id: int) -> OutboxEntry | None:
    """Queue the card's completion sync again (after a failure, a reconnect or a conflict)."""
    card = board.get_card(session, user_id, card_id)
    if card.source != "confluence":
        raise ValidationError("only cards from Confluence sync their completion")
    if card.gone_reason:
        raise ValidationError(f"this task is gone from Confluence ({card.gone_reason}): keep it as a local card or delete it")
    return outbox.enqueue_current(session, card)


def resolve_conflict(session: Session, user_id: int, card_id: int, keep: Literal["here", "confluence"] | str) -> Card:
    """`keep="here"`: Confluence gets completed again. `keep="confluence"`: the card reopens here."""
    card = board.get_card(session, user_id, card_id)
    if card.sync_state != "conflict":
        raise ValidationError("this card has no conflict to settle")
    if keep == "here":
        outbox.enqueue(session, card, "complete")
    elif keep == "confluence":
        card.confluence_remote_status = "incomplete"
        card.sync_state, card.sync_error = "synced", None
        board.move_card(session, user_id, card.id, "todo")
    else:
        raise ValidationError("keep must be 'here' or 'confluence'")
    audit.record(session, user_id, "board.conflict_resolved", {"card_id": card_id, "kept": keep}, provider="trackli")
    return card
