"""The board's inbox lane and the phone's triage cards: waiting tasks approved by a drop, a key or a menu,
dismissed, snoozed or edited where the person is, each with Undo (as on Pending).

The component (trackli/ui/kanban.py) sends one `inbox` event per action; `handle` applies it through
the queue's functions and leaves a notice (and what Undo needs) for the redraw. A task changed
elsewhere is refused with the reason, and the redraw shows it where it really is.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any, Callable

import streamlit as st

from trackli import board, fields, projects, queue, snooze, users
from trackli.clock import due_words
from trackli.errors import TrackliError
from trackli.queue import PendingView
from trackli.ui import widgets
from trackli.ui.setup import PageContext
from trackli.text import MAX_TITLE
from trackli.ui.widgets import STATUS_LABELS

PAGE = 200  # waiting tasks drawn; "Show more" adds another page
SNOOZE_PRESETS = ("Tomorrow", "In 3 days", "Next Monday", "In 2 weeks")
UNDO_FOR_S = 10.0  # a board action's Undo; a move into Done waits this long before Confluence is told
NOTICE = "board_notice"
UNDO = "board_undo"


def task_data(row: PendingView, today: dt.date, show_site: bool) -> dict[str, Any]:
    url = row.url if row.url and row.url.startswith(("https://", "http://")) else None
    due_label, due_kind = due_words(row.due_date, today)
    return {"id": row.id, "title": row.title, "due": row.due_date.isoformat() if row.due_date else None,
            "overdue": bool(row.due_date and row.due_date < today), "due_label": due_label, "due_kind": due_kind,
            "page": row.page_title,
            "space": row.space_name or row.space_key, "site": row.site if show_site else None, "url": url,
            "project": row.project, "returned": row.returned_from_snooze}


def inbox_data(pc: PageContext, today: dt.date, *, force_open: bool = False) -> dict[str, Any]:
    """The waiting tasks the lane (or the phone's cards) shows: the first pages of them and the count of all."""
    shown = int(st.session_state.get("inbox_shown", PAGE))
    with pc.ctx.session() as session:
        is_open = force_open or users.inbox_open(session, pc.user_id)
        count = queue.pending_count(session, pc.user_id)
        rows = queue.list_pending(session, pc.user_id, limit=shown) if count else []
    show_site = len({r.site for r in rows if r.site}) > 1
    return {"open": is_open, "count": count, "tasks": [task_data(r, today, show_site) for r in rows],
            "presets": list(SNOOZE_PRESETS)}


def undo_offer() -> dict[str, Any] | None:
    """The Undo the notice offers, while its window lasts."""
    offer = st.session_state.get(UNDO)
    if not offer or time.monotonic() > offer["until"]:
        st.session_state.pop(UNDO, None)
        return None
    return {"token": offer["token"], "label": "Undo", "seconds": round(offer["until"] - time.monotonic(), 1)}


def _offer_undo(states: list[queue.RowState], column: str) -> None:
    st.session_state[UNDO] = {"token": uuid.uuid4().hex, "kind": "queue", "states": states, "column": column,
                              "until": time.monotonic() + UNDO_FOR_S}


def offer_move_undo(card_id: int, was: tuple[str, int | None], now_in: str, *, sending: bool) -> None:
    """A card moved on the board: Undo puts it back where it was (a move into Done is sent to Confluence
    only after this window, so an undone drop never reaches it)."""
    if was[0] == now_in and not sending:
        return  # reordered within a column: nothing worth a notice
    st.session_state[UNDO] = {"token": uuid.uuid4().hex, "kind": "move", "card": card_id, "place": was,
                              "until": time.monotonic() + UNDO_FOR_S}
    label = STATUS_LABELS.get(now_in, now_in)
    st.session_state[NOTICE] = (f"Moved to {label} — sent to Confluence in {UNDO_FOR_S:.0f} s unless you undo it."
                                if sending else f"Moved to {label}.")


def offer_card_undo(kind: str, notice: str, **what: Any) -> None:
    """A card archived, deleted or sent back from its details: the board says so, with Undo for a while
    (`kind` is "archive" with the card's `card` and `place`, "delete" with `kept`, "send_back" with `sent`)."""
    st.session_state[UNDO] = {"token": uuid.uuid4().hex, "kind": kind, "until": time.monotonic() + UNDO_FOR_S, **what}
    st.session_state[NOTICE] = notice


def handle(pc: PageContext, event: dict[str, Any]) -> None:
    """One action from the lane, the sheet or the phone's cards."""
    action = str(event.get("action") or "")
    if action == "toggle":
        pc.run(users.set_inbox_open, bool(event.get("open")))
        return
    if action == "more":
        st.session_state["inbox_shown"] = int(st.session_state.get("inbox_shown", PAGE)) + PAGE
        return
    many = event.get("tasks")
    if action in ("approve", "dismiss", "snooze") and isinstance(many, list) and len(many) > 1:
        _handle_many(pc, action, many, event)
        return
    try:
        task_id = widgets.form_id(event.get("task"))
    except ValueError:
        return
    if action == "edit":
        st.session_state["edit_task"] = task_id
        return
    try:
        if action == "approve":
            to = fields.check_status(str(event.get("to") or "todo"))
            before = None if event.get("before") is None else widgets.form_id(event.get("before"))
            _, was = pc.run(queue.approve_into, task_id, to, before=before)
            _offer_undo([was], to)
            st.session_state[NOTICE] = f"Approved into {STATUS_LABELS[to]}."
        elif action == "dismiss":
            states = pc.run(queue.snapshot, [task_id])
            if pc.run(queue.dismiss, [task_id]) == 0:
                raise TrackliError("it is no longer waiting (changed in another tab?)")
            _offer_undo(states, "todo")
            st.session_state[NOTICE] = "Dismissed: restore it from Pending › Dismissed, or Undo."
        elif action == "snooze":
            preset = str(event.get("preset") or "")
            if preset not in SNOOZE_PRESETS:
                return
            states = pc.run(queue.snapshot, [task_id])
            until = snooze.parse_until(preset, widgets.today())
            pc.run(snooze.snooze_pending, [task_id], until)
            _offer_undo(states, "todo")
            st.session_state[NOTICE] = f"Snoozed until {until:%a %d %b}."
        else:
            return
    except (TrackliError, ValueError) as exc:
        st.session_state.pop(UNDO, None)
        st.session_state[NOTICE] = f"That was not saved: {exc}"


def _handle_many(pc: PageContext, action: str, many: list[Any], event: dict[str, Any]) -> None:
    """The ticked tasks of the keyboard list, in one action with one Undo (as Pending's bulk buttons)."""
    try:
        ids = sorted({widgets.form_id(i) for i in many[:PAGE]})
        if action == "snooze" and str(event.get("preset") or "") not in SNOOZE_PRESETS:
            return
        states = pc.run(queue.snapshot, ids)
        if action == "approve":
            to = fields.check_status(str(event.get("to") or "todo"))
            done = len(pc.run(queue.approve_ids, ids, column=to))
            words = f"{done} approved into {STATUS_LABELS[to]}."
        elif action == "dismiss":
            done = pc.run(queue.dismiss, ids)
            words = f"{done} dismissed: restore them from Pending › Dismissed, or Undo."
        else:
            until = snooze.parse_until(str(event["preset"]), widgets.today())
            done = pc.run(snooze.snooze_pending, ids, until)
            words = f"{done} snoozed until {until:%a %d %b}."
        to_column = str(event.get("to") or "todo") if action == "approve" else "todo"
        _offer_undo(states, to_column)
        st.session_state[NOTICE] = words if done == len(ids) else \
            f"{words} {len(ids) - done} were no longer waiting (changed in another tab?)."
    except (TrackliError, ValueError) as exc:
        st.session_state.pop(UNDO, None)
        st.session_state[NOTICE] = f"That was not saved: {exc}"


def undo(pc: PageContext, token: str) -> None:
    offer = st.session_state.pop(UNDO, None)
    if not offer or offer["token"] != token:
        st.session_state[NOTICE] = "Nothing to undo any more."
        return
    try:
        if offer.get("kind") == "move":
            status, below = offer["place"]
            try:
                pc.run(board.move_card, offer["card"], status, before=below)
            except TrackliError:  # the card it sat above moved meanwhile: back to its column's end
                pc.run(board.move_card, offer["card"], status)
            st.session_state[NOTICE] = f"Undone: the card is back in {STATUS_LABELS.get(status, status)}."
            return
        if offer.get("kind") == "archive":
            pc.run(board.unarchive_to, offer["card"], offer["place"])
            st.session_state[NOTICE] = "Undone: the card is back on the board."
            return
        if offer.get("kind") == "delete":
            pc.run(board.undelete_card, offer["kept"])
            st.session_state[NOTICE] = "Undone: the card is back."
            return
        if offer.get("kind") == "send_back":
            pc.run(queue.undo_send_back, offer["sent"])
            st.session_state[NOTICE] = "Undone: the card is back on the board, its task approved again."
            return
        done = pc.run(queue.put_back, offer["states"], offer["column"])
    except TrackliError as exc:
        st.session_state[NOTICE] = f"Undo failed: {exc}"
        return
    st.session_state[NOTICE] = f"Undone: {done.describe()}."


@st.dialog("Edit task", width="medium", on_dismiss=lambda: st.session_state.pop("edit_task", None))
def edit_dialog(pc: PageContext, task_id: int) -> None:
    """Title, due date and project of a waiting task (saved as the person's edits: a sync never overwrites them)."""
    with pc.ctx.session() as session:
        found = queue.pending_view(session, pc.user_id, task_id)
        mine = projects.list_projects(session, pc.user_id)
    if found is None or found.state != "pending":
        st.info("This task is no longer waiting (approved, dismissed or snoozed in another tab?).")
        return
    names = [p.name for p in mine]
    with st.form(f"edit_task_{task_id}"):
        title = st.text_input("Title", found.title, max_chars=MAX_TITLE)
        c1, c2 = st.columns(2)
        due = c1.date_input("Due", found.due_date, format="YYYY-MM-DD")
        options = ["(none)", *names]
        project = c2.selectbox("Project", options, index=options.index(found.project) if found.project in names else 0)
        if found.url and found.url.startswith(("https://", "http://")):
            st.link_button("Open in Confluence", found.url, icon=":material/open_in_new:")
        if st.form_submit_button("Save", type="primary", icon=":material/save:"):
            ok, _ = widgets.act(lambda: pc.run(queue.edit_pending, task_id, title=title, due_date=due,
                                               project=None if project == "(none)" else project))
            if ok:
                st.session_state.pop("edit_task", None)
                st.session_state[NOTICE] = "Task saved."
                st.rerun()


PHONE_CSS = """<style>
@media (min-width: 641px) { .st-key-pending_cards { display: none !important; } }
@media (max-width: 640px) { .st-key-pending_grid { display: none !important; } }
</style>"""


def phone_cards(pc: PageContext) -> None:
    """Pending at phone width (≤ 640 px): the waiting tasks as triage cards instead of the wide grid
    (CSS shows one or the other by the screen's width; no horizontal scrolling is needed to triage)."""
    from trackli.ui.kanban import kanban

    st.html(PHONE_CSS)
    today = widgets.today()
    listing = st.session_state.get("pending_view") == "List"  # the wide keyboard list says the notice then
    with st.container(key="pending_cards"):
        data: dict[str, Any] = {"mode": "cards", "columns": [], "inbox": inbox_data(pc, today, force_open=True),
                "notice": st.session_state.get(NOTICE) if listing else st.session_state.pop(NOTICE, None),
                "undo": undo_offer(), "approve_to": "todo"}
        kanban(data, key="pending_kanban", on_inbox=lambda event: handle(pc, event), on_undo=lambda token: undo(pc, token))
    if st.session_state.get("edit_task") is not None and not listing:
        edit_dialog(pc, st.session_state["edit_task"])


def keyboard_list(pc: PageContext, rows: list[PendingView], stamp: Any) -> None:
    """Pending's List view: the waiting tasks shown (filtered, a page at a time) as cards worked from the
    keyboard — j/k move, x ticks, a approves, d dismisses, s snoozes, e edits, ? lists the keys — each
    action with Undo, as on the board."""
    from trackli.ui.kanban import kanban

    def done(action: Callable[[], None]) -> None:
        action()
        widgets.remember_stamp("pending_stamp", stamp())  # this tab already shows its own change
        st.session_state["_list_acted"] = True

    if st.session_state.pop("_list_acted", False):
        st.rerun(scope="app")  # the list is in the queue's fragment: the header's counts change too
    today = widgets.today()
    show_site = len({r.site for r in rows if r.site}) > 1
    data: dict[str, Any] = {"mode": "cards", "keys": True, "columns": [], "approve_to": "todo",
                            "inbox": {"open": True, "count": len(rows), "presets": list(SNOOZE_PRESETS),
                                      "tasks": [task_data(r, today, show_site) for r in rows]},
                            "notice": st.session_state.pop(NOTICE, None), "undo": undo_offer()}
    kanban(data, key="pending_list", on_inbox=lambda event: done(lambda: handle(pc, event)),
           on_undo=lambda token: done(lambda: undo(pc, token)))
    if st.session_state.get("edit_task") is not None:
        edit_dialog(pc, st.session_state["edit_task"])
