"""The board as one custom component (Streamlit components v2: inline HTML/CSS/JS, no build step).

Cards are dragged between columns and within one, moved by keys (Shift+arrows) or a card menu (touch,
phone width), and opened by a click. The browser moves a card at once and marks it "Saving…"; the
move reaches Python as a trigger value, `trackli.board.move_card` applies it, and the next run redraws
the board from the database, so a refused move puts the card back and says why.

Everything shown is passed as data and inserted with `textContent` (see assets/kanban.js): no text
from Confluence or a person ever becomes HTML.
"""

from __future__ import annotations

import datetime as dt
from importlib import resources
from typing import Any, Callable, Iterable

import streamlit as st

from trackli.clock import due_words
from trackli.board_view import Board, CardView
from trackli.models import CARD_STATUSES
from trackli.text import MAX_TITLE
from trackli.ui.widgets import STATUS_LABELS, SYNC_LABELS

_ASSETS = resources.files("trackli.ui") / "assets"
_COMPONENT = st.components.v2.component(
    "trackli.kanban",
    html="",
    css=(_ASSETS / "kanban.css").read_text(encoding="utf-8"),
    js=(_ASSETS / "kanban.js").read_text(encoding="utf-8"),
)
EMPTY = {"backlog": "Ideas and later", "todo": "Drop cards here", "in_progress": "Nothing in progress", "done": "Nothing done yet"}


ATTENTION = ("waiting", "failed", "conflict")  # sync states a card shows; "synced" is the quiet normal


def card_data(card: CardView, today: dt.date, show_site: bool) -> dict[str, Any]:
    due_label, due_kind = due_words(card.due_date if card.status != "done" else None, today)
    return {
        "id": card.id, "title": card.title, "project": card.project, "project_colour": card.project_colour,
        "due": card.due_date.isoformat() if card.due_date else None, "overdue": card.overdue(today),
        "due_label": due_label, "due_kind": due_kind,
        "sync": card.sync_state if card.source == "confluence" else "none",
        "sync_label": SYNC_LABELS.get(card.sync_state, "") if card.source == "confluence"
        and card.sync_state in ATTENTION else "",
        "gone": bool(card.gone_reason), "site": card.site if show_site else None,
        "returned": card.returned_from_snooze,
    }


def board_data(page: Board, *, today: dt.date, density: str = "comfortable", notice: str | None = None,
               version: Any = None, inbox: dict[str, Any] | None = None, undo: dict[str, Any] | None = None,
               projects: Iterable[tuple[int, str]] = (), draft: dict[str, str] | None = None) -> dict[str, Any]:
    """What the component draws: plain JSON, nothing in it is ever treated as HTML."""
    cards = [c for status in CARD_STATUSES for c in page.columns[status]]
    show_site = len({c.site for c in cards if c.site}) > 1
    return {
        "columns": [{"status": status, "label": STATUS_LABELS[status], "count": page.counts[status],
                     "empty": EMPTY[status], "cards": [card_data(c, today, show_site) for c in page.columns[status]]}
                    for status in CARD_STATUSES],
        "density": density, "notice": notice, "version": str(version) if version is not None else "",
        "inbox": inbox, "undo": undo,
        # Quick add at each column's foot: the projects it offers, and a title that was not saved (typed again).
        "projects": [{"id": i, "name": name} for i, name in projects], "draft": draft, "max_title": MAX_TITLE,
    }


def kanban(data: dict[str, Any], *, key: str, on_move: Callable[[dict], None] | None = None,
           on_open: Callable[[int], None] | None = None, on_more: Callable[[str], None] | None = None,
           on_inbox: Callable[[dict], None] | None = None, on_undo: Callable[[str], None] | None = None,
           on_add: Callable[[dict], None] | None = None) -> None:
    """Draw the board (or, with `data["mode"] == "cards"`, only the waiting tasks); each event calls its
    handler with the event's value before the page reruns."""

    def event(name: str, handle: Callable[[Any], None] | None, pick: Callable[[dict], Any]) -> Callable[[], None]:
        def callback() -> None:
            value = (st.session_state.get(key) or {}).get(name)
            if isinstance(value, dict) and handle is not None:
                handle(pick(value))
        return callback

    _COMPONENT(data=data, key=key,
               on_move_change=event("move", on_move, lambda v: v),
               on_open_change=event("open", on_open, lambda v: v.get("card")),
               on_more_change=event("more", on_more, lambda v: v.get("status")),
               on_inbox_change=event("inbox", on_inbox, lambda v: v),
               on_undo_change=event("undo", on_undo, lambda v: str(v.get("token") or "")),
               on_add_change=event("add", on_add, lambda v: v))
