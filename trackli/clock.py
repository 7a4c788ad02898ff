"""Time as a person sees it: their time zone (checked against the known zones, never opened as a path
from browser input) and "today" there — the one function every room asks for today."""

from __future__ import annotations

import datetime as dt
import functools
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy import select
from sqlalchemy.orm import Session

from trackli.models import User, utcnow

UTC = ZoneInfo("UTC")


@functools.cache
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def valid_zone(name: str | None) -> str | None:
    """`name` if it is an IANA time zone this machine knows, else None. Checked against the list of
    zones, never by opening a file named after browser input ("America" is a folder, "../x" a path)."""
    if not name or len(name) > 64 or name not in _known_zones():
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None
    return name


def zone(name: str | None) -> ZoneInfo:
    """The zone named, or UTC when the name is not a known zone."""
    name = valid_zone(name)
    return ZoneInfo(name) if name else UTC


def today_in(name: str | None, now: dt.datetime | None = None) -> dt.date:
    """Today in the zone named (UTC if it is not a known zone)."""
    return (now or utcnow()).astimezone(zone(name)).date()


def today_for(session: Session, user_id: int, now: dt.datetime | None = None) -> dt.date:
    """Today in the person's time zone (the one their browser last said)."""
    return today_in(session.scalar(select(User.time_zone).where(User.id == user_id)), now)


def due_words(due: dt.date | None, today: dt.date) -> tuple[str, str]:
    """A due date as people read it, and its kind for colour: ("", "none") when there is none;
    "overdue" (before today), "today", "week" (tomorrow and the next days, by weekday), "later"."""
    if due is None:
        return "", "none"
    days = (due - today).days
    if days < 0:
        return ("due yesterday" if days == -1 else f"overdue · {due:%-d %b}"), "overdue"
    if days == 0:
        return "due today", "today"
    if days == 1:
        return "due tomorrow", "week"
    if days < 7:
        return f"due {due:%A}", "week"
    return f"due {due:%-d %b}" + (f" {due:%Y}" if due.year != today.year else ""), "later"
