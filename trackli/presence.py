"""Who is looking: a person's last sign of an open tab, and the cadence it earns their connections.

Confluence has no webhooks for OAuth 2.0 (3LO) or API-token integrations, so "real time" is a cheap
incremental poll aimed at the people who are looking:

- **live** — a Trackli tab seen within `live_window_s`: polled every `live_sync_every_s`;
- **today** — seen within the last day (or never seen: a person who uses only the CLI): `sync_every_s`;
- **idle** — not seen for a day: `idle_sync_every_s`, and swept in full half as often.

A page load or rerun calls `touch`; it writes at most once per person per `TOUCH_EVERY_S`, however
many tabs and reruns (a per-process memo first, then a conditional UPDATE that other processes
cannot double). A person who comes back after being away has their connections made due at once.
Near the points pool live polling slows down first (`every_for`).
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from typing import Literal, cast

from sqlalchemy import CursorResult, or_, select, update

from trackli.config import Settings
from trackli.context import Context
from trackli.models import AtlassianConnection, User, utcnow

Presence = Literal["live", "today", "idle"]
TOUCH_EVERY_S = 30.0
DAY = dt.timedelta(days=1)

_memo: dict[tuple[str, int], float] = {}  # (database, person) -> monotonic time of the last write
_memo_lock = threading.Lock()


def touch(ctx: Context, user_id: int) -> bool:
    """The person has a Trackli tab open. True if this call wrote (at most once per 30 s per person)."""
    key = (ctx.settings.database_url, int(user_id))
    mono = time.monotonic()
    with _memo_lock:
        if mono - _memo.get(key, -math.inf) < TOUCH_EVERY_S:
            return False
        _memo[key] = mono
    now = utcnow()
    fresh = now - dt.timedelta(seconds=TOUCH_EVERY_S)
    with ctx.session() as session:
        was = session.execute(select(User.last_seen_at).where(User.id == user_id)).first()
        if was is None or (was[0] is not None and was[0] >= fresh):
            return False  # no such person, or another process wrote a moment ago
        written = cast(CursorResult, session.execute(update(User).where(
            User.id == user_id, or_(User.last_seen_at.is_(None), User.last_seen_at < fresh),
        ).values(last_seen_at=now).execution_options(synchronize_session=False))).rowcount
        if written and state_of(ctx.settings, was[0], now) != "live":
            # Back after being away: the next sync is now, not at the idle cadence's next turn.
            session.execute(update(AtlassianConnection).where(
                AtlassianConnection.user_id == user_id, AtlassianConnection.next_sync_at > now,
            ).values(next_sync_at=now).execution_options(synchronize_session=False))
        return bool(written)


def forget_memo() -> None:
    """Tests: let the next touch write again."""
    with _memo_lock:
        _memo.clear()


def state_of(settings: Settings, last_seen: dt.datetime | None, now: dt.datetime) -> Presence:
    if last_seen is None:
        return "today"
    if last_seen.tzinfo is None:  # SQLite aggregates bypass the column type
        last_seen = last_seen.replace(tzinfo=dt.timezone.utc)
    age = now - last_seen
    if age <= dt.timedelta(seconds=settings.live_window_s):
        return "live"
    return "today" if age <= DAY else "idle"


def every_for(settings: Settings, presence: Presence, base: float, stretch: float = 1.0) -> float:
    """Seconds between scheduled syncs of a person's connection. `base` is the worker's cadence
    (`sync_every_s`, or `--every`); `stretch` the scheduler's (1, 2, 4, 8 near the points pool).
    Live polling slows first: at stretch s it is stretched by s³ (capped at the others' cadence)."""
    if presence == "live":
        live = min(settings.live_sync_every_s, base)
        return min(base * stretch, live * stretch ** 3)
    if presence == "idle":
        return max(settings.idle_sync_every_s, base) * stretch
    return base * stretch


def sweep_every(settings: Settings, presence: Presence) -> float:
    """Seconds between full sweeps: hourly by default; half as often for a person away for a day."""
    return settings.full_sync_every_s * (2 if presence == "idle" else 1)


def of_user(ctx: Context, user_id: int, now: dt.datetime | None = None) -> Presence:
    with ctx.session() as session:
        seen = session.scalar(select(User.last_seen_at).where(User.id == user_id))
    return state_of(ctx.settings, seen, now or utcnow())
