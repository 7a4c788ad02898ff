"""Triage's moving parts: Sync now in the background (on Home, Pending and the Board), the queue's bulk
actions with a confirmation and Undo, and the grid's state (edits saved once, input kept while it shows
the truth, ticks kept by id).
"""

from __future__ import annotations

import time
from typing import Any, Callable

import pandas as pd
import streamlit as st

import datetime as dt

from trackli import background, queue, snooze, sync
from trackli.ui import widgets
from trackli.ui.setup import PageContext

CONFIRM_OVER = 25  # a bulk action on more rows than this asks first
UNDO_FOR_S = 120
EDITABLE = {"title": "title", "due": "due_date", "project": "project"}  # grid column -> edit_pending field


# ---- Sync now -------------------------------------------------------------------------------------

def sync_now(pc: PageContext) -> None:
    """The Sync now button: the sync runs off the page's thread; this tab shows its progress, then its result."""
    sync_button(pc)
    sync_progress()


def sync_button(pc: PageContext) -> None:
    """Just the button (a toolbar places it; `sync_progress` shows what it started, below)."""
    if st.button("Sync now", type="primary", icon=":material/sync:",
                 help="Fetch from Confluence now (Trackli also keeps itself current on its own)"):
        ok, started = widgets.act(lambda: background.syncs.start(pc.ctx, pc.user_id), later=True, failure="warning")
        if ok:
            st.session_state["sync_job"] = started  # this tab reports the sync it started
        st.rerun()


def sync_progress() -> None:
    _sync_progress()


@st.fragment(run_every="1s")
def _sync_progress() -> None:
    job = st.session_state.get("sync_job")
    if job is None:
        return
    if not job.done.is_set():  # one short line beside the button: nothing below it moves
        st.caption(f":material/sync: Syncing… {job.pages} page(s), {job.tasks} task(s) so far")
        return
    del st.session_state["sync_job"]
    if job.error:
        widgets.flash(widgets.literal(job.error), "warning")
    else:
        failed = any(r.outcome == "failed" for r in job.results or [])
        widgets.flash("\n\n".join(widgets.literal(sync.summary(r)) for r in job.results or []),
                      "error" if failed else "success")
    st.rerun(scope="app")  # the header's pending count and the queue show the new state


# ---- bulk actions ---------------------------------------------------------------------------------

def _approve(pc: PageContext, ids: list[int]) -> str:
    project = st.session_state.get("default_project") or None
    cards = pc.run(queue.approve_ids, ids, project=project)
    st.session_state["_project_spent"] = True  # the picker starts empty again on the next run
    return f"{len(cards)} card(s) added to the board" + (f", project {project}." if project else ".")


def forget_spent_project() -> None:
    """After a bulk approval, the project picker is cleared before it is drawn: a filter changed next and
    'Approve shown' must not silently give those cards the last approval's project."""
    if st.session_state.pop("_project_spent", False):
        st.session_state.pop("default_project", None)


def _dismiss(pc: PageContext, ids: list[int]) -> str:
    return f"{pc.run(queue.dismiss, ids)} task(s) dismissed."


def _restore(pc: PageContext, ids: list[int]) -> str:
    return f"{pc.run(queue.restore, ids)} task(s) back in the queue."


def _snooze(pc: PageContext, ids: list[int]) -> str:
    until = st.session_state.get("queue_snooze_until")
    return f"{pc.run(snooze.snooze_pending, ids, until)} task(s) snoozed until {until}."


def _unsnooze(pc: PageContext, ids: list[int]) -> str:
    return f"{pc.run(snooze.unsnooze_pending, ids)} task(s) back in the queue."


ACTIONS: dict[str, Callable[[PageContext, list[int]], str]] = {"approve": _approve, "dismiss": _dismiss,
                                                                "restore": _restore, "snooze": _snooze,
                                                                "unsnooze": _unsnooze}


PRESETS = ("Tomorrow", "In 3 days", "Next Monday", "In 2 weeks", "Pick a day")


def until_picker(key: str) -> dt.date | None:
    """Until when to snooze: a preset or a day picked, in the person's own time zone."""
    today = widgets.today()
    choice = st.selectbox("Back on", PRESETS, key=f"{key}_preset")
    if choice == "Pick a day":
        return st.date_input("Day", value=None, min_value=today + dt.timedelta(days=1), key=f"{key}_day")
    return snooze.parse_until(choice, today)


def bulk(pc: PageContext, kind: str, ids: list[int]) -> None:
    """Run a bulk action now, or ask first when it touches many rows; keep what Undo needs."""
    if len(ids) > CONFIRM_OVER and st.session_state.get("confirm") != (kind, tuple(ids)):
        st.session_state["confirm"] = (kind, tuple(ids))
        st.rerun()
    st.session_state.pop("confirm", None)
    before = pc.run(queue.snapshot, ids)
    ok, message = widgets.act(lambda: ACTIONS[kind](pc, ids), later=True)
    if ok:
        st.session_state["undo"] = (message, before, time.monotonic())
        st.session_state["undo_column"] = "todo"
        st.session_state.pop("undo_rule", None)  # Pending's Undo, not a rule's
    st.rerun()


def confirm_banner(pc: PageContext) -> None:
    """A bulk action on many rows waits here for a yes."""
    if not st.session_state.get("confirm"):
        return
    kind, waiting = st.session_state["confirm"]
    st.warning(f"{kind.capitalize()} {len(waiting)} tasks at once?", icon=":material/help:")
    yes, no, _ = st.columns([1, 1, 3])
    if yes.button(f"Yes, {kind} {len(waiting)}", type="primary", key="confirm_yes"):
        bulk(pc, kind, list(waiting))
    if no.button("Cancel", key="confirm_no"):
        st.session_state.pop("confirm", None)
        st.rerun()


def undo_banner(pc: PageContext) -> None:
    """What the last bulk action did, with Undo for a while afterwards."""
    done = st.session_state.get("undo")
    if not done or time.monotonic() - done[2] > UNDO_FOR_S:
        st.session_state.pop("undo", None)
        return
    message, before, _ = done
    left, right = st.columns([5, 1], vertical_alignment="center")
    left.success(message, icon=":material/check_circle:")
    if right.button("Undo", key="undo_button", icon=":material/undo:"):
        st.session_state.pop("undo", None)
        column = st.session_state.get("undo_column", "todo")  # where the undone action put its cards
        widgets.act(lambda: pc.run(queue.put_back, before, column), done=lambda undone: undone.describe().capitalize() + ".",
                    later=True)
        st.rerun()


# ---- the grid's state -----------------------------------------------------------------------------

def page_picker(total: int, size: int) -> int:
    """Which page of `total` rows to show, `size` at a time (1 when they fit on one)."""
    if total <= size:
        return 1
    pages = list(range(1, -(-total // size) + 1))
    return st.selectbox("Rows", pages, key="queue_page", label_visibility="collapsed",
                        format_func=lambda p: f"Rows {(p - 1) * size + 1}–{min(p * size, total)} of {total}") or 1


def save_edits(pc: PageContext, stamp: Callable[[], Any]) -> None:
    """Persist what the person typed in the grid since the last run (each edit once). The grid is a
    fragment: if other changes were waiting when an edit is saved, the whole page catches up with them
    (the header's counts included), as it would have on a full rerun."""
    ids = st.session_state.get("queue_ids") or []
    applied = st.session_state.setdefault("queue_applied", {})
    behind: bool | None = None
    for position, change in ((st.session_state.get("queue") or {}).get("edited_rows") or {}).items():
        if int(position) >= len(ids):
            continue
        pending_id = ids[int(position)]
        fresh = {col: value for col, value in change.items()
                 if col in EDITABLE and applied.get(f"{pending_id}:{col}", ...) != value}
        if not fresh:
            continue
        if behind is None:
            behind = stamp() != st.session_state.get("pending_stamp")
        widgets.act(lambda: pc.run(queue.edit_pending, pending_id, **{EDITABLE[c]: v for c, v in fresh.items()}),
                    where=f"Row {int(position) + 1}", later=behind)  # said after the rerun, if there is one
        applied.update({f"{pending_id}:{col}": value for col, value in fresh.items()})
        widgets.remember_stamp("pending_stamp", stamp())  # our own change: no refresh needed for it
    if behind:
        st.rerun(scope="app")


def grid_input(fresh: pd.DataFrame, select_all: bool) -> pd.DataFrame:
    """The frame to give the editor. The editor forgets its edits (and row selection) whenever its
    input changes, so keep the input it was given while the database says what the editor already
    shows (our own saved edits); take the fresh one when the rows or their values changed elsewhere,
    keeping the ticked rows ticked by task id."""
    ids = list(fresh.index)
    frame = st.session_state.get("queue_frame")
    if frame is None or list(frame.index) != ids or not _shows(frame, fresh) or \
            st.session_state.get("queue_select_all") != select_all:
        ticked = set() if select_all != st.session_state.get("queue_select_all") else _ticked()
        fresh["select"] = [select_all or i in ticked for i in ids]
        frame = fresh
        st.session_state.pop("queue", None)
        st.session_state["queue_applied"] = {}
    st.session_state["queue_frame"] = frame
    st.session_state["queue_ids"] = ids
    st.session_state["queue_select_all"] = select_all
    return frame


def _ticked() -> set[int]:
    """Ids of the rows ticked in the editor, by task id (they stay ticked when the rows change)."""
    ids = st.session_state.get("queue_ids") or []
    edits = (st.session_state.get("queue") or {}).get("edited_rows") or {}
    frame = st.session_state.get("queue_frame")
    ticked = {i for i, on in zip(ids, frame["select"].tolist()) if on} if frame is not None else set()
    for position, change in edits.items():
        if "select" in change and int(position) < len(ids):
            (ticked.add if change["select"] else ticked.discard)(ids[int(position)])
    return ticked


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return str(value)[:10] if hasattr(value, "isoformat") else str(value)


def _shows(frame: pd.DataFrame, fresh: pd.DataFrame) -> bool:
    """Does the editor (its input plus its edits) show what the database holds now? Compared by
    task id, column by column, in one step (the edits are the few cells typed since)."""
    edits = (st.session_state.get("queue") or {}).get("edited_rows") or {}
    columns = list(EDITABLE)
    shown = frame[columns].copy()
    for position, change in edits.items():
        for col, value in change.items():
            if col in EDITABLE and int(position) < len(shown):
                shown.iat[int(position), columns.index(col)] = value
    return bool((_normal(shown) == _normal(fresh[columns])).all(axis=None))


def _normal(frame: pd.DataFrame) -> pd.DataFrame:
    """Every cell as the text it shows: empty for None/NaN, YYYY-MM-DD for dates, no surrounding space."""
    return frame.map(_text).apply(lambda col: col.str.strip())
