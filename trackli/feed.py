"""A person's private calendar feed (RFC 5545): their cards with due dates (optionally pending tasks
too) as all-day events, served by the dashboard's own server at `/feeds/<token>.ics`.

- The token is 32 random bytes (URL-safe). The database keeps its SHA-256 (how a request finds the
  person) and the token encrypted with the secret key (so the URL can be shown again). Rotating makes
  the old URL answer 404; turning the feed off forgets the token. A wrong or revoked token gets the
  same 404 as any other unknown address: nothing is learnt from it.
- Events have stable UIDs (`card-<id>@trackli`, `pending-<id>@trackli`), the Confluence link and the
  project in the description; completed and archived cards are left out.
- The `ETag` is an opaque digest of the person's change versions: a calendar polling with
  `If-None-Match` gets `304` after one primary-key read, without a query of its cards; a calendar is
  rendered once per version (kept by ETag), whatever the number of GETs. `Cache-Control: private,
  no-cache`, so a rotated or turned-off URL is never served from a client's cache; at most 30
  requests a minute per token.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

from icalendar import Calendar, Event
from sqlalchemy import select
from sqlalchemy.orm import Session

from trackli import audit, changes
from trackli.context import Context
from trackli.models import Card, PendingTask, Project, User, utcnow
from trackli.text import one_line

log = logging.getLogger("trackli.feed")
TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
MAX_EVENTS = 20000
COLUMN_NAMES = {"backlog": "Backlog", "todo": "To do", "in_progress": "In progress", "done": "Done"}


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def url_for(ctx: Context, token: str) -> str:
    return f"{ctx.settings.public_url}/feeds/{token}.ics"


def turn_on(ctx: Context, session: Session, user_id: int, *, include_pending: bool | None = None) -> str:
    """The person's feed URL, made now if the feed was off."""
    user = session.get_one(User, user_id)
    if include_pending is not None:
        user.feed_include_pending = include_pending
    token = ctx.vault.decrypt(user.feed_token_enc) if user.feed_token_enc else None
    if token is None:
        token = _new_token(ctx, user)
        audit.record(session, user_id, "feed.turned_on", {"include_pending": user.feed_include_pending}, provider="trackli")
    return url_for(ctx, token)


def rotate(ctx: Context, session: Session, user_id: int) -> str:
    """A new URL; the old one answers 404 from now on."""
    user = session.get_one(User, user_id)
    token = _new_token(ctx, user)
    audit.record(session, user_id, "feed.rotated", {}, provider="trackli")
    return url_for(ctx, token)


def turn_off(session: Session, user_id: int) -> None:
    user = session.get_one(User, user_id)
    if user.feed_token_hash:
        user.feed_token_hash = user.feed_token_enc = None
        audit.record(session, user_id, "feed.turned_off", {}, provider="trackli")


def current_url(ctx: Context, session: Session, user_id: int) -> str | None:
    token = ctx.vault.decrypt(session.scalar(select(User.feed_token_enc).where(User.id == user_id)))
    return url_for(ctx, token) if token else None


def includes_pending(session: Session, user_id: int) -> bool:
    return bool(session.scalar(select(User.feed_include_pending).where(User.id == user_id)))


def _new_token(ctx: Context, user: User) -> str:
    token = secrets.token_urlsafe(32)
    user.feed_token_hash, user.feed_token_enc = _hash(token), ctx.vault.encrypt(token)
    return token


def owner_of(session: Session, token: str) -> User | None:
    """The person whose feed `token` opens, or None (malformed, rotated, revoked or unknown)."""
    if not TOKEN.fullmatch(token or ""):
        return None
    return session.scalar(select(User).where(User.feed_token_hash == _hash(token)))


def etag(session: Session, user: User) -> str:
    """Opaque: a digest of what the calendar shows (the person's versions, the options, the name and the
    token's own hash, so a rotated URL never matches an old tag). Nothing internal is readable in it."""
    board_v = changes.board_version(session, user.id)
    queue_v = changes.queue_version(session, user.id) if user.feed_include_pending else 0
    seed = f"{user.feed_token_hash}:{board_v}:{queue_v}:{int(user.feed_include_pending)}:{calendar_name(user)}"
    return f'"{hashlib.sha256(seed.encode()).hexdigest()[:32]}"'


def calendar_name(user: User) -> str:
    """The calendar's display name: one line, no control characters (a newline would break the feed)."""
    return one_line(user.display_name or user.email, 100)


@dataclass(frozen=True)
class Entry:
    uid: str
    title: str
    due: dt.date
    stamp: dt.datetime
    url: str | None
    project: str | None
    column: str


def entries(session: Session, user: User) -> list[Entry]:
    """What the feed lists: open, unarchived cards with a due date (and pending tasks, if asked)."""
    rows = session.execute(
        select(Card.id, Card.title, Card.due_date, Card.updated_at, Card.confluence_url, Project.name, Card.status)
        .outerjoin(Project, Project.id == Card.project_id)
        .where(Card.owner_id == user.id, Card.due_date.isnot(None), Card.status != "done", Card.archived_at.is_(None))
        .order_by(Card.due_date, Card.id).limit(MAX_EVENTS))
    out = [Entry(f"card-{i}@trackli", t, d, u, link, p, COLUMN_NAMES.get(s, s))
           for i, t, d, u, link, p, s in rows if d is not None]
    if user.feed_include_pending:
        waiting = session.execute(
            select(PendingTask.id, PendingTask.task_title, PendingTask.due_date, PendingTask.updated_at,
                   PendingTask.confluence_url, Project.name)
            .outerjoin(Project, Project.id == PendingTask.project_id)
            .where(PendingTask.user_id == user.id, PendingTask.status == "pending", PendingTask.due_date.isnot(None))
            .order_by(PendingTask.due_date, PendingTask.id).limit(MAX_EVENTS))
        out += [Entry(f"pending-{i}@trackli", t, d, u, link, p, "Waiting for approval")
                for i, t, d, u, link, p in waiting if d is not None]
    return out


def render(entries_: list[Entry], name: str) -> bytes:
    """An RFC 5545 calendar of all-day events."""
    cal = Calendar()
    cal.add("prodid", "-//Trackli//Trackli task feed//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", f"Trackli — {name}" if name else "Trackli")
    cal.add("x-published-ttl", "PT15M")
    for e in entries_:
        event = Event()
        event.add("uid", e.uid)
        event.add("dtstamp", e.stamp.astimezone(dt.timezone.utc) if e.stamp else utcnow())
        event.add("dtstart", e.due)  # a date: an all-day event, no time zone to shift it
        event.add("dtend", e.due + dt.timedelta(days=1))
        event.add("summary", e.title)
        lines = [f"Column: {e.column}"]
        if e.project:
            lines.append(f"Project: {e.project}")
        if e.url:
            lines.append(f"Confluence: {e.url}")
            event.add("url", e.url)
        event.add("description", "\n".join(lines))
        event.add("transp", "TRANSPARENT")  # a due date does not make the person busy
        cal.add_component(event)
    return cal.to_ical()


@dataclass
class Answer:
    status: int
    body: bytes = b""
    etag: str | None = None


def answer(ctx: Context, token: str, if_none_match: str | None) -> Answer:
    """What `/feeds/<token>.ics` answers: 404 for any token that opens nothing, 304 when the calendar
    has the current version, else the calendar."""
    with ctx.session() as session:
        user = owner_of(session, token)
        if user is None:
            return Answer(404)
        tag = etag(session, user)
        if if_none_match and tag in [t.strip() for t in if_none_match.split(",")]:
            return Answer(304, etag=tag)
        body = _rendered.get(tag)
        if body is None:  # rendered once per version, not once per GET or HEAD
            body = _rendered.put(tag, render(entries(session, user), calendar_name(user)))
        return Answer(200, body, tag)


class _Rendered:
    """Calendars already rendered, by ETag (which changes with anything they show): a few dozen, the
    oldest dropped first, bounded in bytes."""

    def __init__(self, entries: int = 64, max_bytes: int = 64 * 1024 * 1024):
        self.entries, self.max_bytes = entries, max_bytes
        self.bodies: OrderedDict[str, bytes] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, tag: str) -> bytes | None:
        with self.lock:
            body = self.bodies.get(tag)
            if body is not None:
                self.bodies.move_to_end(tag)
            return body

    def put(self, tag: str, body: bytes) -> bytes:
        with self.lock:
            self.bodies[tag] = body
            while len(self.bodies) > self.entries or (
                    len(self.bodies) > 1 and sum(map(len, self.bodies.values())) > self.max_bytes):
                self.bodies.popitem(last=False)
        return body


_rendered = _Rendered()


class RateLimit:
    """At most `per_minute` requests a minute per token (a calendar polls every few minutes); more are
    answered 429 before any database work. Per process, by the token's hash."""

    def __init__(self, per_minute: int = 30):
        self.per_minute = per_minute
        self.seen: dict[str, list[float]] = {}
        self.lock = threading.Lock()

    def allow(self, token: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        key = _hash(token)
        with self.lock:
            if len(self.seen) > 10000:  # forget quiet tokens (and any flood of made-up ones)
                self.seen = {k: v for k, v in self.seen.items() if v and now - v[-1] < 60}
            recent = [t for t in self.seen.get(key, []) if now - t < 60]
            if len(recent) >= self.per_minute:
                self.seen[key] = recent
                return False
            recent.append(now)
            self.seen[key] = recent
            return True


rate_limit = RateLimit()


def route(context: Callable[[], Context]) -> Any:
    """The Starlette route the dashboard serves beside its pages (see app.py)."""
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    async def serve(request: Request) -> Response:
        token = request.path_params.get("token", "")
        if not rate_limit.allow(token):
            return PlainTextResponse("Too many requests for this feed: try again in a minute.", 429,
                                     headers={"Retry-After": "60"})
        try:
            found = await run_in_threadpool(answer, context(), token, request.headers.get("if-none-match"))
        except Exception:  # never a traceback to a calendar client
            log.exception("calendar feed")
            return PlainTextResponse("The feed is unavailable right now.", 503, headers={"Retry-After": "300"})
        if found.status == 404:
            return PlainTextResponse("Not Found", 404)
        # no-cache: a client asks again every time (a 304 is one primary-key read), so a rotated or
        # turned-off URL is never served from a cache.
        headers = {"ETag": found.etag or "", "Cache-Control": "private, no-cache"}
        if found.status == 304:
            return Response(status_code=304, headers=headers)
        return Response(found.body, media_type="text/calendar; charset=utf-8",
                        headers=headers | {"Content-Disposition": 'inline; filename="trackli.ics"'})

    return Route("/feeds/{token}.ics", serve, methods=["GET", "HEAD"])
