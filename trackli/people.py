"""The people who create the person's tasks, by name: the rules form picks "created by" from them.

Confluence gives a task's creator as an account id. Atlassian's users-bulk look-up names them (scope
read:user:confluence, optional: an API token always has it, an OAuth connection when the deployment
asks for it). Names are kept per connection (`person_names`) and looked up only for ids never named;
without the scope, or when the look-up fails, a person is shown by account id and nothing else changes.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from trackli import connections
from trackli.atlassian import scopes
from trackli.atlassian.errors import AtlassianError
from trackli.batches import MAX_BATCH, chunks
from trackli.context import Context
from trackli.db import upsert
from trackli.errors import TrackliError
from trackli.models import AtlassianConnection, PendingTask, PersonName, utcnow

log = logging.getLogger(__name__)
NAME_CHARS = 255
ASK_AGAIN_AFTER = dt.timedelta(days=7)  # an account Atlassian did not name is asked about again after this


@dataclass(frozen=True)
class Person:
    account_id: str
    name: str | None  # None until Atlassian has named them
    tasks: int  # how many of the person's tasks (in any state) they created

    @property
    def label(self) -> str:
        return self.name or f"{self.account_id} (name not known)"


def seen(session: Session, user_id: int) -> list[Person]:
    """Everyone who created one of the person's tasks, named where a name is known: named people by name,
    then the rest by id."""
    counts = {account_id: n for account_id, n in session.execute(
        select(PendingTask.confluence_created_by, func.count())
        .where(PendingTask.user_id == user_id, PendingTask.confluence_created_by.is_not(None))
        .group_by(PendingTask.confluence_created_by)) if account_id}
    names = names_of(session, user_id, counts)
    people = [Person(account_id, names.get(account_id), n) for account_id, n in counts.items()]
    return sorted(people, key=lambda p: (p.name is None, (p.name or p.account_id).casefold(), p.account_id))


def names_of(session: Session, user_id: int, account_ids: Iterable[str]) -> dict[str, str]:
    """The known names of these accounts, on any of the person's connections."""
    ids = sorted({a for a in account_ids if a})
    mine = select(AtlassianConnection.id).where(AtlassianConnection.user_id == user_id)
    names: dict[str, str] = {}
    for batch in chunks(ids, 500):
        for account_id, name in session.execute(select(PersonName.account_id, PersonName.display_name).where(
                PersonName.connection_id.in_(mine), PersonName.account_id.in_(batch), PersonName.display_name != "")):
            names.setdefault(account_id, name)
    return names


def unnamed(session: Session, user_id: int, now: dt.datetime | None = None) -> dict[int, list[str]]:
    """Per connection that may ask: the creators of its tasks with no name yet (an account Atlassian did
    not name is left alone for ASK_AGAIN_AFTER)."""
    since = (now or utcnow()) - ASK_AGAIN_AFTER
    wanted: dict[int, list[str]] = {}
    for conn in connections.list_connections(session, user_id):
        if not may_ask(conn):
            continue
        named = select(PersonName.account_id).where(PersonName.connection_id == conn.id,
                                                    (PersonName.display_name != "") | (PersonName.refreshed_at > since))
        ids = session.scalars(select(PendingTask.confluence_created_by).distinct().where(
            PendingTask.connection_id == conn.id, PendingTask.confluence_created_by.is_not(None),
            PendingTask.confluence_created_by.not_in(named))).all()
        if ids:
            wanted[conn.id] = sorted(i for i in ids if i)
    return wanted


def may_ask(conn: AtlassianConnection) -> bool:
    """An API token acts as the person (it may look people up); an OAuth grant must include the scope."""
    if conn.status == "needs_reconnect":
        return False
    return conn.kind == "api_token" or scopes.NAMES_SCOPE in (conn.scopes or "").split()


def look_up(ctx: Context, user_id: int, *, most: int = 4 * MAX_BATCH) -> int:
    """Ask Atlassian for the names of up to `most` unnamed creators per connection, and keep them. One
    connection's failure (no scope, refused, broken upstream) never stops the others, and is never raised:
    those people stay shown by id. Returns how many names were learned."""
    with ctx.session() as session:
        wanted = unnamed(session, user_id)
        conns = {c.id: c for c in connections.list_connections(session, user_id) if c.id in wanted}
        for conn in conns.values():
            session.expunge(conn)
    learned = 0
    for conn_id, ids in wanted.items():
        asked = ids[:most]
        try:
            with connections.client_for(ctx, conns[conn_id]) as client:
                found = client.get_users(asked)
        except (AtlassianError, TrackliError) as exc:
            log.info("names of people not looked up for connection %s: %s", conn_id, exc)
            continue
        except Exception:  # a hostile answer must not break the page that asked
            log.exception("names of people not looked up for connection %s", conn_id)
            continue
        with ctx.session() as session:
            learned += keep(session, conn_id, found, asked, utcnow())
    return learned


def keep(session: Session, connection_id: int, found: dict[str, str], asked: Iterable[str], now: dt.datetime) -> int:
    """Keep the names found; an account asked about and not named is kept with an empty name (not asked
    again for a while). Returns how many names were found."""
    rows = [{"connection_id": connection_id, "account_id": account_id[:128],
             "display_name": (found.get(account_id) or "")[:NAME_CHARS], "refreshed_at": now}
            for account_id in dict.fromkeys([*found, *asked]) if account_id]
    upsert(session, PersonName, rows, [PersonName.connection_id, PersonName.account_id],
           ["display_name", "refreshed_at"])
    return sum(1 for r in rows if r["display_name"])
