"""Streamlit pieces the pages share."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo
from typing import Any, Callable, Hashable, TypeVar

import streamlit as st

from trackli import clock, presence, queue
from trackli.errors import TrackliError
from trackli.models import MAX_ID

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
EVENT_LABELS = {
    "board.card_moved": "Card moved", "board.conflict_resolved": "Conflict settled",
    "board.card_archived": "Card archived", "board.card_restored": "Card restored", "board.card_deleted": "Card deleted",
    "board.card_unlinked": "Unlinked from Confluence", "board.card_sent_back": "Sent back to the queue",
    "confluence.fetch_failed": "Sync failed", "confluence.queue_updated": "Queue updated from Confluence",
    "confluence.task_completed": "Completed in Confluence", "confluence.task_reopened": "Reopened in Confluence",
    "confluence.task_update_failed": "Confluence not updated", "confluence.tasks_fetched": "Tasks fetched",
    "connection.created": "Connected with an API token", "connection.disconnected": "Disconnected",
    "connection.failed": "Connection failed", "keys.rotated": "Encryption key rotated",
    "oauth.connect_failed": "Sign-in at Atlassian failed", "oauth.connected": "Connected with OAuth",
    "oauth.initiated": "Sign-in at Atlassian started", "oauth.state_rejected": "Sign-in link refused",
    "oauth.token_refresh_failed": "Token refresh failed", "oauth.token_refreshed": "Token refreshed",
    "queue.approved": "Approved", "queue.dismissed": "Dismissed", "queue.edited": "Edited in the queue",
    "queue.restored": "Restored", "queue.undone": "Undone",
    "scheduler.cadence_stretched": "Scheduled syncs slowed (points quota)",
    "scheduler.cadence_restored": "Scheduled syncs back to normal",
}


def event_label(event_type: str) -> str:
    return EVENT_LABELS.get(event_type, event_type.replace("_", " ").replace(".", ": ").capitalize())


# Streamlit colour names for badges: a card's sync state, a connection's status.
SYNC_COLOURS = {"synced": "green", "waiting": "orange", "failed": "red", "conflict": "violet", "none": "gray"}
CONNECTION_BADGES = {"ok": ":green-badge[OK]", "needs_reconnect": ":orange-badge[Reconnect needed]",
                     "error": ":red-badge[Error]"}


def zone() -> ZoneInfo:
    """The person's time zone (the browser's, if it is a known zone), UTC until the browser has said which."""
    return clock.zone(st.context.timezone)


def today() -> dt.date:
    """Today where the person is (the browser's zone)."""
    return clock.today_in(st.context.timezone)


def when(moment: dt.datetime) -> str:
    """A moment in the person's own time zone, naming the zone."""
    here = zone()
    return f"{moment.astimezone(here):%Y-%m-%d %H:%M} ({here.key})"


def sync_badge(state: str) -> str:
    return f":{SYNC_COLOURS.get(state, 'gray')}-badge[{SYNC_LABELS.get(state, state)}]"


def literal(text: str | None) -> str:
    """Text from Confluence made safe for st.markdown: shown exactly as written, never rendered."""
    text = (text or "").replace("&", "&amp;")
    return MARKDOWN_SPECIAL.sub(r"\\\1", text).replace("\n", " ")


def watch(key: str, ctx: Any, user_id: int, stamp_of: Callable[[Any, int], Hashable], every: str = "5s", *,
          waiting: Callable[[Any, int, dt.datetime], int] | None = None) -> Callable[[], Hashable]:
    """Catch up with changes made elsewhere (another tab, the worker) when `stamp_of(session, user_id)` moves.

    Only this small fragment reruns on the timer. Without `waiting`, a change reruns the page. With it
    (a page where the person may be typing or has rows ticked), a change never reruns the page on its
    own: the fragment says how many changes are waiting (`waiting(session, user_id, drawn_at)`) and
    offers Refresh, so nothing the person has not saved is thrown away. Returns the stamp function,
    for `remember_stamp` after the page's own changes.
    """

    def stamp() -> Hashable:
        with ctx.session() as session:
            return stamp_of(session, user_id)

    @st.fragment(run_every=every)
    def _watch() -> None:
        presence.touch(ctx, user_id)  # the tab is open (at most one write per person per 30 s)
        current = stamp()
        previous = st.session_state.get(key)
        if previous is None:
            remember_stamp(key, current)
            return
        if previous == current:
            return
        arrived = _arrivals(ctx, user_id)
        if waiting is None:
            st.session_state[key] = current
            if arrived:
                st.session_state["_arrived"] = arrived  # said by a toast on the rerun (setup's header)
            st.rerun()
        if arrived:
            st.toast(f"{arrived} new task{'s' if arrived != 1 else ''} from Confluence", icon=":material/inbox:")
        with ctx.session() as session:
            count = waiting(session, user_id, st.session_state.get(f"{key}_drawn") or dt.datetime.now(dt.timezone.utc))
        left, right = st.columns([5, 1], vertical_alignment="center")
        left.info(f"{max(count, 1)} change(s) made elsewhere are waiting: refresh to see them. "
                  "What you are typing or have ticked stays until you do.", icon=":material/update:")
        if right.button("Refresh", key=f"{key}_refresh", icon=":material/refresh:"):
            st.session_state.pop(key, None)
            st.rerun(scope="app")

    if "_arrival_mark" not in st.session_state:
        _arrivals(ctx, user_id)  # what is waiting now is not news
    remember_stamp(key, stamp())  # a full run draws what the database holds now
    _watch()
    return stamp


def _arrivals(ctx: Any, user_id: int) -> int:
    """Tasks that entered the person's queue since this tab last looked (0 the first time)."""
    with ctx.session() as session:
        count, newest = queue.arrivals_after(session, user_id, st.session_state.get("_arrival_mark"))
    st.session_state["_arrival_mark"] = newest
    return count


def form_id(value: Any) -> int:
    """An id sent by the browser (a component event, a form): a whole number in the database's range,
    or ValueError — a forged 10^30 is refused like any id that names nothing."""
    if isinstance(value, bool) or not isinstance(value, (int, str, float)):
        raise ValueError("not an id")
    number = int(value) if not isinstance(value, float) or value.is_integer() else -1
    if not 0 < number <= MAX_ID:
        raise ValueError("not an id")
    return number


def per_version(name: str, version: Hashable, compute: Callable[[], T]) -> T:
    """`compute()` once per change version (and per `name`, which names the query and its arguments):
    a rerun in which nothing changed reads one version row, not the person's whole queue."""
    memo = st.session_state.setdefault("_per_version", {})
    hit = memo.get(name)
    if hit is not None and hit[0] == version:
        return hit[1]
    value = compute()
    if len(memo) > 50:
        memo.clear()
    memo[name] = (version, value)
    return value


def remember_stamp(key: str, stamp: Hashable) -> None:
    """The page shows the state with this stamp (its first draw, or its own change): nothing is waiting."""
    st.session_state[key] = stamp
    st.session_state[f"{key}_drawn"] = dt.datetime.now(dt.timezone.utc)


def flash(message: str | None = None, kind: str = "success") -> None:
    """Show a message on the next run (after st.rerun), or set one to show. Success is a toast (the
    page does not move under the person's pointer); a warning or an error stays on the page."""
    if message is not None:
        st.session_state["_flash"] = (kind, message)
        return
    pending = st.session_state.pop("_flash", None)
    if pending:
        kind, text = pending
        if kind == "success":
            st.toast(text, icon=":material/check_circle:", duration="long")
        else:
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
