"""What a person may type into a card's or a waiting task's fields: a title, a column, a due date.
Checked once here for the board, the queue, the rules and the CLI alike."""

from __future__ import annotations

import datetime as dt
from typing import Any

from trackli.errors import ValidationError
from trackli.models import CARD_STATUSES, CardStatus
from trackli.text import CONTROL, MAX_TITLE


def clean_title(title: str | None, what: str = "title") -> str:
    """Strip control characters and surrounding space; refuse empty or over-long titles."""
    text = CONTROL.sub("", title or "").strip()
    if not text:
        raise ValidationError(f"the {what} must not be empty")
    if len(text) > MAX_TITLE:
        raise ValidationError(f"the {what} is {len(text)} characters long; at most {MAX_TITLE} are allowed")
    return text


def check_status(status: str) -> CardStatus:
    """A column from what a person types: `in progress`, `In-Progress` and `in_progress` are one column."""
    typed = "_".join(str(status).strip().lower().replace("-", " ").split())
    typed = {"to_do": "todo"}.get(typed, typed)
    for known in CARD_STATUSES:
        if typed == known:
            return known
    raise ValidationError(f"unknown status {status!r}: use one of {', '.join(CARD_STATUSES)} (or 'in progress')")


def parse_due(value: Any) -> dt.date | None:
    """A real date from a date, a datetime or 'YYYY-MM-DD'; None/''/'none' clears it."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null")):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if hasattr(value, "date") and callable(value.date):  # pandas.Timestamp
        return value.date()
    text = str(value).strip()
    try:
        return dt.date.fromisoformat(text) if len(text) <= 10 else dt.datetime.fromisoformat(text).date()
    except ValueError:
        raise ValidationError(f"{value!r} is not a date: use YYYY-MM-DD") from None
