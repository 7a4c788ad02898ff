"""The one set-up every page calls first: page config, sign-in gate, database, header, navigation.

Streamlit runs a file in `pages/` on its own when it is the first request to a fresh server
(a bookmark, the OAuth callback), without home.py: so nothing here may rely on the home page having run.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
import logging
from typing import Any, Callable, Literal, NoReturn, TypeVar

import streamlit as st
from alembic.util.exc import CommandError
from sqlalchemy.exc import DatabaseError

from trackli import changes, connections, embedded, memory, presence, queue, snooze, users
from trackli.config import Settings, load_settings
from trackli.context import Context
from trackli.errors import TrackliError
from trackli.ui import widgets

log = logging.getLogger("trackli.ui")

T = TypeVar("T")

NAV = (
    ("home.py", "Home", ":material/home:"),
    ("pages/pending.py", "Pending", ":material/inbox:"),
    ("pages/board.py", "Board", ":material/view_kanban:"),
    ("pages/upcoming.py", "Upcoming", ":material/event_upcoming:"),
    ("pages/rules.py", "Rules", ":material/rule:"),
    ("pages/calendar.py", "Calendar", ":material/calendar_month:"),
    ("pages/connect.py", "Connect", ":material/link:"),
    ("pages/audit.py", "Audit log", ":material/history:"),
    ("pages/diagnostics.py", "Diagnostics", ":material/troubleshoot:"),
)

_contexts: dict[Settings, Context] = {}
_lock = threading.Lock()


def context_for(settings: Settings) -> Context:
    """One Context per settings per process; migrations are applied the first time."""
    with _lock:
        ctx = _contexts.get(settings)
        if ctx is None:
            memory.limit_malloc_arenas()  # Sync now runs in this process (see trackli.memory)
            ctx = _contexts[settings] = Context.from_settings(settings, migrate=True)
        embedded.start(ctx)  # this process's own scheduler (once per process; off when the settings say so)
        return ctx


@dataclass
class PageContext:
    ctx: Context
    user_id: int
    email: str
    display_name: str

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`fn(session, user_id, *args, **kwargs)` in one unit of work, for this page's person."""
        with self.ctx.session() as session:
            return fn(session, self.user_id, *args, **kwargs)


def teams_mode() -> bool:
    """Sign-in is on when `.streamlit/secrets.toml` (beside app.py) has an [auth] section, or
    TRACKLI_MODE=teams says it must be (then a missing [auth] stops every page: fail closed)."""
    try:
        has_auth = "auth" in st.secrets
    except Exception:  # no secrets file at all
        has_auth = False
    return has_auth or _declared_mode() == "teams"


def _declared_mode() -> str:
    try:
        return load_settings().mode
    except TrackliError:
        return "auto"


def _sign_in_gate() -> tuple[str | None, str]:
    if not teams_mode():
        return None, ""
    try:
        configured = "auth" in st.secrets
    except Exception:
        configured = False
    if not configured:  # TRACKLI_MODE=teams without [auth]: never fall back to one shared local user
        _cannot_start("TRACKLI_MODE=teams, but .streamlit/secrets.toml (beside app.py) has no [auth] section: "
                      "set up sign-in there (see the README), or unset TRACKLI_MODE for single-user mode")
    if not st.user.get("is_logged_in", False):
        st.title("Trackli")
        st.write("Sign in to see your Confluence tasks and your board.")
        st.button("Sign in", icon=":material/login:", on_click=st.login, type="primary")
        st.stop()
    return str(st.user.email), str(st.user.get("name") or "")


# Less empty space above each page (Streamlit's default is 6rem): the work starts high, on a phone too.
COMPACT = "<style>[data-testid='stMainBlockContainer'] { padding-top: 2.5rem; }</style>"


def page(title: str, icon: str = ":material/task_alt:", *, layout: Literal["centered", "wide"] = "wide") -> PageContext:
    st.set_page_config(page_title=f"{title} · Trackli", page_icon=icon, layout=layout)
    st.html(COMPACT)
    email, name = _sign_in_gate()
    try:
        ctx = context_for(load_settings())
        with ctx.session() as session:
            user = users.ensure(session, email, name) if email else users.ensure_local(session)
            pc = PageContext(ctx, user.id, user.email, user.display_name)
            snooze.remember_zone(session, user.id, st.context.timezone)  # snoozes return at the person's midnight
        with ctx.session() as session:
            snooze.wake(session, pc.user_id)  # a snooze whose day has come is over, worker or not
        presence.touch(ctx, pc.user_id)  # a tab is open: this person's connections are polled live
    except TrackliError as exc:  # settings, a foreign database
        _cannot_start(str(exc))
    except (DatabaseError, CommandError) as exc:  # unreachable, corrupt, or migrated by a newer Trackli
        log.error("the database cannot be used: %s", exc)
        _cannot_start("the database cannot be used: check TRACKLI_DATABASE_URL, that the database is running, "
                      "and that it is a Trackli database (details are in the server log)")
    _navigation(pc)
    _header(pc, title)
    return pc


def _cannot_start(reason: str) -> NoReturn:
    st.error(f"Trackli cannot start: {widgets.literal(reason)}", icon=":material/error:")
    st.stop()


def _navigation(pc: PageContext) -> None:
    with st.sidebar:
        st.markdown("### Trackli")
        for path, label, icon in NAV:
            st.page_link(path, label=label, icon=icon)
        st.divider()
        st.caption(f"Signed in as {pc.display_name or pc.email}" if teams_mode() else f"Single-user mode · {pc.email}")
        if pc.ctx.settings.demo:
            st.caption(DEMO_WORDS)
        if teams_mode():
            st.button("Sign out", icon=":material/logout:", on_click=st.logout)


def health(pc: PageContext) -> tuple[str, int]:
    """('ok' | 'attention' | 'none', pending count) for the header."""
    with pc.ctx.session() as session:
        conns = [connections.describe(c) for c in connections.list_connections(session, pc.user_id)]
        version = changes.queue_version(session, pc.user_id)
        count = widgets.per_version("pending_count", version, lambda: queue.pending_count(session, pc.user_id))
    if not conns:
        return "none", count
    healthy = all(c["status"] == "ok" and not c["missing_scopes"] for c in conns)
    return ("ok" if healthy else "attention"), count


DEMO_WORDS = ("Demo mode: Trackli is connected to a simulated Atlassian site on this machine; "
              "nothing here talks to atlassian.com.")


def _header(pc: PageContext, title: str) -> None:
    left, middle, right = st.columns([3, 2, 1], vertical_alignment="center")
    left.title(title)
    state, count = health(pc)
    demo = pc.ctx.settings.demo  # a badge in the header, not a banner above it: the work starts high
    badges = [":blue-badge[:material/science: Demo: simulated Atlassian]"] if demo else []
    if state == "ok":
        badges.append(":green-badge[:material/check_circle: Connected]")
    if badges:
        middle.markdown(" ".join(badges), help=DEMO_WORDS if demo else None)
    if state == "attention":
        middle.page_link("pages/connect.py", label="Connection needs attention", icon=":material/warning:")
    elif state == "none":
        middle.page_link("pages/connect.py", label="Connect Atlassian", icon=":material/link:")
    right.page_link("pages/pending.py", label=f"Pending {count}", icon=":material/inbox:")
    # The browser tab says how much is waiting, so new work is seen from another tab too.
    st.set_page_config(page_title=f"({count}) {title} · Trackli" if count else f"{title} · Trackli")
    arrived = st.session_state.pop("_arrived", 0)
    if arrived:
        st.toast(arrival_words(arrived), icon=":material/inbox:")


def arrival_words(n: int) -> str:
    return f"{n} new task{'s' if n != 1 else ''} from Confluence"
