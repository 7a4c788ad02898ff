"""Streamlit pieces the pages share."""

from __future__ import annotations

import re
from typing import Any, Callable, Hashable, TypeVar

import streamlit as st

from trackli.errors import TrackliError

T = TypeVar("T")

MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")

STATUS_LABELS = {"backlog": "Backlog", "todo": "To do", "in_progress": "In progress", "done": "Done"}
SYNC_LABELS = {
    "none": "",
    "synced": "Synced",
    "waiting": "Waiting to sync",
    "failed": "Sync failed",
    "conflict": "Conflict",
}
# Streamlit colour names for badges: a card's sync state, a connection's status.
SYNC_COLOURS = {"synced": "green", "waiting": "orange", "failed": "red", "conflict": "violet", "none": "gray"}
CONNECTION_BADGES = {"ok": ":green-badge[OK]", "needs_reconnect": ":orange-badge[Reconnect needed]",
                     "error": ":red-badge[Error]"}


def sync_badge(state: str) -> str:
    return f":{SYNC_COLOURS.get(state, 'gray')}-badge[{SYNC_LABELS.get(state, state)}]"


def literal(text: str | None) -> str:
    """Text from Confluence made safe for st.markdown: shown exactly as written, never rendered."""
    text = (text or "").replace("&", "&amp;")
    return MARKDOWN_SPECIAL.sub(r"\\\1", text).replace("\n", " ")


def watch(key: str, ctx, user_id: int, stamp_of: Callable[[Any, int], Hashable], every: str = "5s") -> Callable[[], Hashable]:
    """Rerun the page when `stamp_of(session, user_id)` changes (another tab, the worker); else do nothing.

    Only this small fragment reruns on the timer; the page reruns only on a real change, so an
    edit being made is never thrown away by a refresh that had nothing to show. Returns the
    stamp function, for `remember_stamp` after the page's own changes.
    """

    def stamp() -> Hashable:
        with ctx.session() as session:
            return stamp_of(session, user_id)

    @st.fragment(run_every=every)
    def _watch() -> None:
        current = stamp()
        previous = st.session_state.get(key)
        st.session_state[key] = current
        if previous is not None and previous != current:
            st.rerun()

    _watch()
    return stamp


def remember_stamp(key: str, stamp: Hashable) -> None:
    """After the page itself changed something, take the new stamp so the watcher does not rerun again."""
    st.session_state[key] = stamp


def flash(message: str | None = None, kind: str = "success") -> None:
    """Show a message on the next run (after st.rerun), or set one to show."""
    if message is not None:
        st.session_state["_flash"] = (kind, message)
        return
    pending = st.session_state.pop("_flash", None)
    if pending:
        kind, text = pending
        getattr(st, kind)(text)


def act(action: Callable[[], T], *, done: str | Callable[[T], str] | None = None,
        later: bool = False, where: str | None = None, failure: str = "error") -> tuple[bool, T | None]:
    """Run one product action for the person: `(True, result)`, or `(False, None)` after showing its error.

    A `TrackliError` is shown in words (after `where: `, if given) as a `failure` message (error,
    warning), never raised. With `later`, the
    messages wait for the next run: use it before `st.rerun()` and inside widget callbacks.
    """
    try:
        result = action()
    except TrackliError as exc:
        _say(literal(f"{where}: {exc}" if where else str(exc)), failure, later)
        return False, None
    if done is not None:
        _say(done(result) if callable(done) else done, "success", later)
    return True, result


def _say(message: str, kind: str, later: bool) -> None:
    if later:
        flash(message, kind)
    else:
        getattr(st, kind)(message)
