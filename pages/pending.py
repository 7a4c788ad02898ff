"""Pending: Confluence tasks assigned to you, waiting to be approved onto the board or dismissed."""

import pandas as pd
import streamlit as st

from trackli import changes, connections, projects, queue
from trackli.text import MAX_TITLE
from trackli.ui import inbox, setup, triage, widgets

PAGE = 200  # rows in the grid at a time: a click costs what is shown, not the whole queue
pc = setup.page("Pending", ":material/inbox:")
ctx, uid = pc.ctx, pc.user_id

# A change made elsewhere never reruns this page on its own: someone may be typing in the grid.
stamp = widgets.watch("pending_stamp", ctx, uid, changes.queue_version, waiting=queue.changes_since)
widgets.flash()

queue_tab, snoozed_tab, dismissed_tab, gone_tab = st.tabs(
    ["Waiting", "Snoozed", "Dismissed", "Gone from Confluence"], key="pending_tab", on_change="rerun")

# -- the queue -------------------------------------------------------------------------------------
@st.fragment
def queue_grid() -> None:
    """Filters, the grid and its buttons: a tick, an edit or a filter reruns only this (a page of rows),
    not the whole page; an approval or dismissal reruns the page (the header counts change)."""
    triage.save_edits(pc, stamp)  # first: a project typed in the grid exists from here on
    with ctx.session() as session:
        project_names = [p.name for p in projects.list_projects(session, uid)]
    with ctx.session() as session:  # counts and lists of the whole queue: once per change, not per click
        version = changes.queue_version(session, uid)
        waiting_count = widgets.per_version("waiting", version, lambda: queue.count_pending(session, uid))
        space_names = widgets.per_version("spaces", version,
                                          lambda: queue.space_names(session, uid)) if waiting_count else {}
        space_keys = sorted(space_names, key=lambda k: (space_names[k].casefold(), k))
        several_sites = len(connections.list_connections(session, uid)) > 1
    rows, matching, view = [], 0, "Grid"
    # One toolbar row (filters, Select all, Sync now): the grid starts high, and nothing above it ever
    # grows after an action (what an action did is said by a toast; its Undo sits by the buttons below).
    toolbar = st.container(horizontal=True, gap="small", vertical_alignment="center", key="pending_toolbar")
    if waiting_count:
        by_label = {f"{space_names[k]} ({k})": k for k in space_keys}  # names, as the grid shows them; keys small
        text = toolbar.text_input("Search titles", key="filter_text", placeholder="Search words in the titles",
                                  label_visibility="collapsed")
        narrowed = sum(st.session_state.get(k) not in (None, v) for k, v in
                       (("filter_space", "All spaces"), ("filter_due", None)))
        with toolbar.popover(f"Filters · {narrowed}" if narrowed else "Filters", icon=":material/filter_list:"):
            space = by_label.get(st.selectbox("Space", ["All spaces", *by_label], key="filter_space"), "All spaces")
            due_before = st.date_input("Due on or before", value=None, key="filter_due")
        view = toolbar.segmented_control(
            "View", ["Grid", "List"], default="Grid", key="pending_view", label_visibility="collapsed",
            help="Grid: edit in cells, act in bulk. List: triage by keyboard — j/k move, x tick, a approve, "
                 "d dismiss, s snooze, e edit, ? all keys") or "Grid"
        narrow = dict(space_key=None if space == "All spaces" else space, text=text or None, due_before=due_before)
        with ctx.session() as session:  # what is shown is read, a page at a time; the rest is counted
            matching = widgets.per_version(f"matching {narrow}", version,
                                           lambda: queue.count_pending(session, uid, **narrow))
            with toolbar:
                page = triage.page_picker(matching, PAGE)
            rows = queue.list_pending(session, uid, "pending", stable_order=True, limit=PAGE,
                                      offset=(page - 1) * PAGE, **narrow)

    listing = waiting_count and view == "List"
    select_all = toolbar.checkbox(f"Select all {len(rows)} shown", key="select_all") if rows and not listing else False
    with toolbar:
        triage.sync_button(pc)  # runs in the background; its progress shows beside it
        triage.sync_progress()
    if not waiting_count:
        st.info("Nothing waiting. Tasks land here when someone assigns you a Confluence task "
                "(an @mention inside a task) — press **Sync now**, or let the scheduled worker fetch them.",
                icon=":material/inbox:")
    elif not rows:
        st.info("No pending task matches these filters.")
    elif listing:
        if matching > len(rows):
            st.caption(f"{matching} tasks match: {len(rows)} are shown on this page.")
        inbox.keyboard_list(pc, rows, stamp)
    else:
        ids = [r.id for r in rows]
        if matching > len(rows):
            st.caption(f"{matching} tasks match: {len(rows)} are shown on this page; the buttons act on the rows shown.")
        fresh = pd.DataFrame(
            {
                "select": [select_all] * len(rows),
                "title": [r.title for r in rows],
                "due": [r.due_date for r in rows],
                "project": [r.project or "" for r in rows],
                "page": [r.page_title or "" for r in rows],
                "space": [r.space_name or r.space_key or "" for r in rows],
                "site": [r.site or "" for r in rows],
                "routed": ["Back from snooze" if r.returned_from_snooze else (f"Rule: {r.rule}" if r.rule else "")
                           for r in rows],
                "link": [r.url for r in rows],
            },
            index=pd.Index(ids, name="id"),
        )
        if not several_sites:  # one site: the column would say the same thing on every row
            fresh = fresh.drop(columns=["site"])
        if not fresh["routed"].any():  # no rule routed any of these, none is back from a snooze
            fresh = fresh.drop(columns=["routed"])
        frame = triage.grid_input(fresh, select_all)

        edited = st.data_editor(
            frame,
            key="queue",
            hide_index=True,
            placeholder="",  # an empty due date is empty, not a grey "None"
            disabled=[c for c in ("page", "space", "site", "routed", "link") if c in frame.columns],
            column_config={
                "select": st.column_config.CheckboxColumn("", width=40),
                "title": st.column_config.TextColumn("Title", max_chars=MAX_TITLE, required=True, width="medium"),
                "due": st.column_config.DateColumn("Due", format="YYYY-MM-DD", width="small"),
                "project": st.column_config.TextColumn(
                    "Project", width="medium", max_chars=100,
                    help="Type a project's name: one of yours (in any case), or a new one, which is created"),
                "page": st.column_config.TextColumn("Page", width="medium"),
                "space": st.column_config.TextColumn("Space", width="small"),
                "site": st.column_config.TextColumn("Site", width="small", help="The Atlassian site the task is on"),
                "routed": st.column_config.TextColumn("Note", width="small",
                                                      help="The rule that routed the task, or back from a snooze"),
                "link": st.column_config.LinkColumn("Confluence", display_text="Open", width="small"),
            },
        )
        selected = [ids[i] for i, chosen in enumerate(edited["select"].tolist()) if chosen]

        triage.forget_spent_project()  # one bulk approval's project never carries over to the next
        target = st.selectbox("Project for cards without one", project_names, index=None, key="default_project",
                              placeholder="(none) — or type a new project's name", accept_new_options=True,
                              width=420)
        into = f" → {target}" if target else ""  # the buttons say where the cards go
        # One row that wraps, each button as wide as its words: the counts are always readable.
        with st.container(horizontal=True, gap="small"):
            if st.button(f"Approve selected ({len(selected)}){into}", disabled=not selected, icon=":material/check:"):
                triage.bulk(pc, "approve", selected)
            if st.button(f"Approve {len(ids)} shown{into}", icon=":material/done_all:"):
                triage.bulk(pc, "approve", ids)
            if st.button(f"Dismiss selected ({len(selected)})", disabled=not selected, icon=":material/close:"):
                triage.bulk(pc, "dismiss", selected)
            with st.popover(f"Snooze selected ({len(selected)})", icon=":material/snooze:", disabled=not selected):
                until = triage.until_picker("queue_snooze")
                if st.button("Snooze", key="queue_snooze_go", type="primary", disabled=until is None):
                    st.session_state["queue_snooze_until"] = until
                    triage.bulk(pc, "snooze", selected)
        st.caption("Edits to title, due date and project are saved as you make them; "
                   "a task you edited keeps your values when Confluence changes.")
    triage.confirm_banner(pc)  # a bulk action on many rows asks here, by its buttons: the grid never moves
    triage.undo_banner(pc)


with queue_tab:
    inbox.phone_cards(pc)  # at phone width: the waiting tasks as cards with Approve / Dismiss / Snooze
    with st.container(key="pending_grid"):  # wider: the grid, for filtering and bulk work
        queue_grid()

# -- snoozed, dismissed and gone -------------------------------------------------------------------
with snoozed_tab:
    with ctx.session() as session:
        sleeping = queue.list_pending(session, uid, "snoozed")
    if not sleeping:
        st.info("Nothing snoozed. A snoozed task leaves the queue and comes back on its day, at the top.")
    else:
        labels = {r.id: f"{r.title} (back on {r.snoozed_until:%a %d %b})" for r in sleeping}
        chosen = st.multiselect("Bring back now", list(labels), format_func=lambda i: labels[i], key="wake_pick")
        if st.button("Back to the queue", disabled=not chosen, icon=":material/alarm_on:"):
            triage.bulk(pc, "unsnooze", chosen)
        st.dataframe(pd.DataFrame({"title": [r.title for r in sleeping], "back on": [r.snoozed_until for r in sleeping],
                                   "page": [r.page_title for r in sleeping], "rule": [r.rule or "" for r in sleeping]}),
                     hide_index=True)

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
            triage.bulk(pc, "restore", chosen)
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
