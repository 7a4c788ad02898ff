"""Page, blog-post and space names per connection, kept between syncs.

A full sweep looks every name up and replaces the connection's cache; an incremental poll reads the
cache and asks Atlassian only for ids it has never seen (each look-up costs points). Names change
rarely: a renamed page shows its new name after the next sweep.
"""

from __future__ import annotations

import datetime as dt
from typing import Iterable, Mapping

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from trackli.atlassian.models import ContentInfo, Enrichment, SpaceInfo
from trackli.batches import chunks
from trackli.db import upsert
from trackli.models import ContentName
from trackli.text import MAX_TITLE
from trackli.plan import LIMITS, clip

KINDS = ("pages", "blogposts", "spaces")


def _rows(connection_id: int, found: Enrichment, now: dt.datetime) -> list[dict]:
    rows = []
    for kind in ("pages", "blogposts"):
        for info in getattr(found, kind).values():
            rows.append({"connection_id": connection_id, "kind": kind, "content_id": info.id[:64],
                         "title": clip(info.title, MAX_TITLE) or "", "space_id": (info.space_id or None) and info.space_id[:64],
                         "space_key": None, "status": (info.status or None) and info.status[:20],
                         "webui": clip(info.webui, LIMITS["confluence_url"]), "refreshed_at": now})
    for space in found.spaces.values():
        rows.append({"connection_id": connection_id, "kind": "spaces", "content_id": space.id[:64],
                     "title": clip(space.name, MAX_TITLE) or "", "space_id": None, "space_key": clip(space.key, 255),
                     "status": None, "webui": None, "refreshed_at": now})
    return rows


COMPARED = ("title", "space_id", "space_key", "status", "webui")


def replace(session: Session, connection_id: int, found: Enrichment, now: dt.datetime) -> None:
    """A full sweep's look-ups become the connection's cache: new and renamed names written, names it no
    longer needs dropped, the rest left alone (a sweep in which nothing changed writes nothing here)."""
    wanted = {(r["kind"], r["content_id"]): r for r in _rows(connection_id, found, now)}
    stale: list[tuple[str, str]] = []
    for row in session.execute(select(ContentName.kind, ContentName.content_id, *[getattr(ContentName, c) for c in COMPARED])
                               .where(ContentName.connection_id == connection_id).execution_options(yield_per=2000)):
        key = (row.kind, row.content_id)
        fresh = wanted.get(key)
        if fresh is None:
            stale.append(key)
        elif all(getattr(row, c) == fresh[c] for c in COMPARED):
            del wanted[key]  # cached as it is
    for kind in KINDS:
        gone = [content_id for k, content_id in stale if k == kind]
        for batch in chunks(gone, 500):
            session.execute(delete(ContentName).where(ContentName.connection_id == connection_id,
                                                      ContentName.kind == kind, ContentName.content_id.in_(batch)))
    _upsert(session, list(wanted.values()))


def add(session: Session, connection_id: int, found: Enrichment, now: dt.datetime) -> None:
    """Names an incremental poll looked up."""
    _upsert(session, _rows(connection_id, found, now))


def _upsert(session: Session, rows: list[dict]) -> None:
    upsert(session, ContentName, rows, [ContentName.connection_id, ContentName.kind, ContentName.content_id],
           [*COMPARED, "refreshed_at"])


def known(session: Session, connection_id: int, wanted: Mapping[str, Iterable[str]]) -> Enrichment:
    """The cached names of the ids in `wanted` (kind -> ids); ids not cached are simply absent."""
    out = Enrichment()
    for kind in KINDS:
        ids = sorted({i for i in wanted.get(kind, ()) if i})
        for batch in chunks(ids, 500):
            for row in session.execute(select(ContentName).where(
                    ContentName.connection_id == connection_id,
                    ContentName.kind == kind, ContentName.content_id.in_(batch))).scalars():
                if kind == "spaces":
                    out.spaces[row.content_id] = SpaceInfo(id=row.content_id, key=row.space_key or "", name=row.title)
                else:
                    getattr(out, kind)[row.content_id] = ContentInfo(
                        id=row.content_id, title=row.title, space_id=row.space_id, status=row.status, webui=row.webui)
    return out
