"""Pending: Confluence tasks assigned to you, waiting to be approved onto the board or dismissed."""

import time

import pandas as pd
import streamlit as st

from trackli import board, queue, sync
from trackli.ui import setup, widgets

pc = setup.page("Pending", ":material/inbox:")
ctx, uid = pc.ctx, pc.user_id

# A change made elsewhere never reruns this page on its own: someone may be typing in the grid.
stamp = widgets.watch("pending_stamp", ctx, uid, queue.queue_stamp, waiting=queue.changes_since)
widgets.flash()

# -- Sync now: runs in the background; this page stays usable and shows its progress ---------------
if st.button("Sync now", type="primary", icon=":material/sync:"):
    ok, started = widgets.act(lambda: sync.background.start(ctx, uid), later=True, failure="warning")
    if ok:
        st.session_state["sync_job"] = started  # this tab reports the sync it started
    st.rerun()


@st.fragment(run_every="1s")
def sync_progress() -> None:
    job = st.session_state.get("sync_job")
    if job is None:
        return
    if not job.done.is_set():
        st.info(f"Syncing with Confluence… fetched {job.pages} page(s) of tasks, {job.tasks} task(s) so far",
                icon=":material/sync:")
        return
    del st.session_state["sync_job"]
    if job.error:
        widgets.flash(widgets.literal(job.error), "warning")
    else:
        failed = any(r.outcome == "failed" for r in job.results or [])
        widgets.flash("\n\n".join(widgets.literal(sync.summary(r)) for r in job.results or []),
                      "error" if failed else "success")
    st.rerun(scope="app")  # the header's pending count and the queue show the new state


sync_progress()

CONFIRM_OVER = 25  # a bulk action on more rows than this asks first
UNDO_FOR_S = 120


def bulk(kind: str, ids: list[int], run) -> None:
    """Run a bulk action now, or ask first when it touches many rows; keep what Undo needs."""
    if len(ids) > CONFIRM_OVER and st.session_state.get("confirm") != (kind, tuple(ids)):
        st.session_state["confirm"] = (kind, tuple(ids))
        st.rerun()
    st.session_state.pop("confirm", None)
    before = pc.run(queue.snapshot, ids)
    ok, message = widgets.act(lambda: run(ids), later=True)
    if ok:
        st.session_state["undo"] = (message, before, time.monotonic())
    st.rerun()


def approve(ids: list[int]) -> str:
    cards = pc.run(queue.approve, ids, project=st.session_state.get("default_project") or None)
    return f"{len(cards)} card(s) added to the board."


def dismiss(ids: list[int]) -> str:
    return f"{pc.run(queue.dismiss, ids)} task(s) dismissed."


def restore(ids: list[int]) -> str:
    return f"{pc.run(queue.restore, ids)} task(s) back in the queue."


ACTIONS = {"approve": approve, "dismiss": dismiss, "restore": restore}


def confirm_banner() -> None:
    """A bulk action on many rows waits here for a yes."""
    if not st.session_state.get("confirm"):
        return
    kind, waiting_ids = st.session_state["confirm"]
    st.warning(f"{kind.capitalize()} {len(waiting_ids)} tasks at once?", icon=":material/help:")
    yes, no, _ = st.columns([1, 1, 3])
    if yes.button(f"Yes, {kind} {len(waiting_ids)}", type="primary", key="confirm_yes"):
        bulk(kind, list(waiting_ids), ACTIONS[kind])
    if no.button("Cancel", key="confirm_no"):
        st.session_state.pop("confirm", None)
        st.rerun()


def undo_banner() -> None:
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
        widgets.act(lambda: pc.run(queue.put_back, before), done=lambda undone: undone.describe().capitalize() + ".",
                    later=True)
        st.rerun()


confirm_banner()
undo_banner()
queue_tab, dismissed_tab, gone_tab = st.tabs(["Waiting", "Dismissed", "Gone from Confluence"], key="pending_tab",
                                             on_change="rerun")



# -- the queue -------------------------------------------------------------------------------------
EDITABLE = {"title": "title", "due": "due_date", "project": "project"}


def save_edits() -> None:
    """Persist what the person typed in the grid since the last run (each edit once)."""
    ids = st.session_state.get("queue_ids") or []
    applied = st.session_state.setdefault("queue_applied", {})
    for position, change in ((st.session_state.get("queue") or {}).get("edited_rows") or {}).items():
        if int(position) >= len(ids):
            continue
        pending_id = ids[int(position)]
        fresh = {col: value for col, value in change.items()
                 if col in EDITABLE and applied.get(f"{pending_id}:{col}", ...) != value}
        if not fresh:
            continue
        widgets.act(lambda: pc.run(queue.edit_pending, pending_id, **{EDITABLE[col]: value for col, value in fresh.items()}),
                    where=f"Row {int(position) + 1}")
        applied.update({f"{pending_id}:{col}": value for col, value in fresh.items()})
        widgets.remember_stamp("pending_stamp", stamp())  # our own change: no refresh needed for it


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


def _text(value) -> str:
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)[:10] if hasattr(value, "isoformat") else str(value)


def _shows(frame: pd.DataFrame, fresh: pd.DataFrame) -> bool:
    """Does the editor (its input plus its edits) show what the database holds now?"""
    edits = (st.session_state.get("queue") or {}).get("edited_rows") or {}
    for position, (_, row) in enumerate(fresh.iterrows()):
        change = edits.get(position, edits.get(str(position), {}))
        for col in EDITABLE:
            shown = change[col] if col in change else frame.iloc[position][col]
            if _text(shown).strip() != _text(row[col]).strip():
                return False
    return True


with queue_tab:
    save_edits()  # first: a project typed in the grid exists from here on
    with ctx.session() as session:
        project_names = [p.name for p in board.list_projects(session, uid)]
    with ctx.session() as session:
        everything = queue.list_pending(session, uid, "pending", stable_order=True)
    rows = everything
    if everything:
        f1, f2, f3 = st.columns(3)
        spaces = sorted({r.space_key for r in everything if r.space_key})
        space = f1.selectbox("Space", ["All spaces"] + spaces, key="filter_space")
        due_before = f2.date_input("Due on or before", value=None, key="filter_due")
        text = f3.text_input("Search titles", key="filter_text", placeholder="Filter by words in the title")
        if space != "All spaces" or due_before or text:
            with ctx.session() as session:
                rows = queue.list_pending(session, uid, "pending", space_key=None if space == "All spaces" else space,
                                         text=text or None, due_before=due_before, stable_order=True)

    if not everything:
        st.info("Nothing waiting. Tasks land here when someone assigns you a Confluence task "
                "(an @mention inside a task) — press **Sync now**, or let the scheduled worker fetch them.",
                icon=":material/inbox:")
    elif not rows:
        st.info("No pending task matches these filters.")
    else:
        ids = [r.id for r in rows]
        select_all = st.checkbox(f"Select all {len(rows)} shown", key="select_all")
        fresh = pd.DataFrame(
            {
                "select": [select_all] * len(rows),
                "title": [r.title for r in rows],
                "due": [r.due_date for r in rows],
                "project": [r.project or "" for r in rows],
                "page": [r.page_title or "" for r in rows],
                "space": [r.space_name or r.space_key or "" for r in rows],
                "site": [r.site or "" for r in rows],
                "link": [r.url for r in rows],
            },
            index=pd.Index(ids, name="id"),
        )
        if len({r.site for r in everything}) < 2:  # one site: the column would say the same thing on every row
            fresh = fresh.drop(columns=["site"])
        # The editor forgets its edits (and row selection) whenever its input changes, so keep the
        # input it was given while the database says what the editor already shows (our own saved
        # edits); take a fresh one when the rows or their values changed elsewhere, keeping the
        # ticked rows ticked by task id.
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

        edited = st.data_editor(
            frame,
            key="queue",
            hide_index=True,
            disabled=[c for c in ("page", "space", "site", "link") if c in frame.columns],
            column_config={
                "select": st.column_config.CheckboxColumn("", width=40),
                "title": st.column_config.TextColumn("Title", max_chars=500, required=True, width="medium"),
                "due": st.column_config.DateColumn("Due", format="YYYY-MM-DD", width="small"),
                "project": st.column_config.TextColumn(
                    "Project", width="medium", max_chars=100,
                    help="Type a project's name: one of yours (in any case), or a new one, which is created"),
                "page": st.column_config.TextColumn("Page", width="medium"),
                "space": st.column_config.TextColumn("Space", width="small"),
                "site": st.column_config.TextColumn("Site", width="small", help="The Atlassian site the task is on"),
                "link": st.column_config.LinkColumn("Confluence", display_text="Open", width="small"),
            },
        )
        selected = [ids[i] for i, chosen in enumerate(edited["select"].tolist()) if chosen]

        a, b, c, d = st.columns([2, 1, 1, 1], vertical_alignment="bottom")
        a.selectbox("Project for cards without one", project_names, index=None, key="default_project",
                    placeholder="(none) — or type a new project's name", accept_new_options=True)

        if b.button(f"Approve selected ({len(selected)})", disabled=not selected, icon=":material/check:"):
            bulk("approve", selected, approve)
        if c.button(f"Approve {len(ids)} shown", icon=":material/done_all:"):
            bulk("approve", ids, approve)
        if d.button(f"Dismiss selected ({len(selected)})", disabled=not selected, icon=":material/close:"):
            bulk("dismiss", selected, dismiss)
        st.caption("Edits to title, due date and project are saved as you make them; "
                   "a task you edited keeps your values when Confluence changes.")

# -- dismissed and gone ----------------------------------------------------------------------------
with dismissed_tab:
    with ctx.session() as session:
        dismissed = queue.list_pending(session, uid, "dismissed")
    if not dismissed:
        st.info("No dismissed tasks. Dismissed tasks stay out of the queue until you restore them.")
    else:
        labels = {r.id: r.title for r in dismissed}
        chosen = st.multiselect("Tasks to restore", list(labels), format_func=lambda i: labels[i], key="restore_pick")
        if st.button("Restore", disabled=not chosen, icon=":material/undo:"):
            bulk("restore", chosen, restore)
        st.dataframe(pd.DataFrame({"title": [r.title for r in dismissed], "page": [r.page_title for r in dismissed],
                                   "due": [r.due_date for r in dismissed]}), hide_index=True)

with gone_tab:
    with ctx.session() as session:
        gone = queue.list_pending(session, uid, "gone")
    if not gone:
        st.info("Tasks that were completed, reassigned or deleted in Confluence before you approved them show up here.")
    else:
        st.dataframe(pd.DataFrame({"title": [r.title for r in gone], "reason": [r.gone_reason for r in gone],
                                   "page": [r.page_title for r in gone]}), hide_index=True)
