"""Board: your cards by status. Moving a Confluence card to Done completes the task in Confluence."""

import datetime as dt
from urllib.parse import quote

import pandas as pd
import streamlit as st

from trackli import board, completion
from trackli.models import CARD_STATUSES
from trackli.ui import setup, triage, widgets
from trackli.ui.widgets import STATUS_LABELS

CARD_LIMIT = 40  # per column; a longer column is shown as a table
pc = setup.page("Board", ":material/view_kanban:")
ctx, uid = pc.ctx, pc.user_id

widgets.watch("board_stamp", ctx, uid, board.change_stamp)
widgets.flash()
triage.sync_now(pc)


def send_completions() -> None:
    """Completion sync starts right away, off the page's thread: the move never waits for Confluence."""
    completion.background.send_soon(ctx, uid)


def move(card_id: int, status: str) -> None:
    ok, card = widgets.act(lambda: pc.run(board.move_card, card_id, status), later=True)
    if ok and card.sync_state == "waiting":
        send_completions()


def on_move(card_id: int) -> None:
    target = st.session_state.get(f"move_{card_id}")
    if target:
        move(card_id, target)


def retry(card_id: int) -> None:
    if widgets.act(lambda: pc.run(completion.retry_card, card_id), later=True)[0]:
        send_completions()


def settle(card_id: int, keep: str) -> None:
    if widgets.act(lambda: pc.run(completion.resolve_conflict, card_id, keep), later=True)[0]:
        send_completions()


def save_projects() -> None:
    """Renames, colours and archiving typed into the Projects table since the last run, each once, in
    words if refused (saved at the start of a run, as the queue's grid edits are)."""
    ids = st.session_state.get("project_ids") or []
    applied = st.session_state.setdefault("projects_applied", {})
    for position, change in (st.session_state.get("projects_editor") or {}).get("edited_rows", {}).items():
        if int(position) >= len(ids):
            continue
        project_id = ids[int(position)]
        for field, value in change.items():
            if applied.get((project_id, field), ...) == value:
                continue
            applied[(project_id, field)] = value
            action = {"name": board.rename_project, "colour": board.recolour_project,
                      "archived": board.archive_project}[field]
            widgets.act(lambda: pc.run(action, project_id, value), where=f"Project {value!r}")


save_projects()
with ctx.session() as session:
    every_project = board.list_projects(session, uid, include_archived=True)
projects = [p for p in every_project if not p.archived]
by_name = {p.name: p.id for p in projects}

top_left, top_middle, top_right = st.columns([1, 1, 1])
project_filter = top_left.selectbox("Project", ["All projects"] + list(by_name), key="board_project")
with top_middle.expander("Projects", icon=":material/folder:"):
    if not every_project:
        st.caption("No projects yet. A project groups cards: create one here, or type a name in the queue's "
                   "Project column.")
    else:
        st.session_state["project_ids"] = [p.id for p in every_project]
        st.data_editor(
            pd.DataFrame({"name": [p.name for p in every_project], "colour": [p.colour for p in every_project],
                          "archived": [p.archived for p in every_project]}),
            key="projects_editor", hide_index=True,
            column_config={"name": st.column_config.TextColumn("Name", required=True, max_chars=100),
                           "colour": st.column_config.TextColumn("Colour", help="#RRGGBB", validate=r"^#[0-9a-fA-F]{6}$"),
                           "archived": st.column_config.CheckboxColumn("Archived", help="Hidden from pickers and filters")})
    with st.form("new_project", clear_on_submit=True):
        name = st.text_input("New project", placeholder="Name")
        colour = st.color_picker("Colour", "#4C6EF5")
        if st.form_submit_button("Create project", icon=":material/create_new_folder:"):
            if widgets.act(lambda: pc.run(board.create_project, name, colour.upper()))[0]:
                widgets.flash(f"Project {name.strip()!r} created")
                st.rerun()
with top_right.expander("Add a card", icon=":material/add:"):
    with st.form("add_card", clear_on_submit=True):
        title = st.text_input("Title", max_chars=500)
        c1, c2, c3 = st.columns(3)
        project = c1.selectbox("Project", ["(none)"] + list(by_name))
        due = c2.date_input("Due", value=None)
        status = c3.selectbox("Column", CARD_STATUSES, index=1, format_func=STATUS_LABELS.get)
        new_project = st.text_input("…or a new project", placeholder="New project name")
        if st.form_submit_button("Add card", icon=":material/add:"):
            def add_card(session, user_id):
                project_id = by_name.get(project)
                if new_project.strip():
                    project_id = board.create_project(session, user_id, new_project).id
                return board.create_card(session, user_id, title, project_id=project_id, status=status, due_date=due)

            if widgets.act(lambda: pc.run(add_card))[0]:
                widgets.flash("Card added")
                st.rerun()

with ctx.session() as session:
    columns = board.board(session, uid, project_id=by_name.get(project_filter))
all_cards = [c for status in CARD_STATUSES for c in columns[status]]
several_sites = len({c.site for c in all_cards if c.site}) > 1

if not all_cards:
    st.info("No cards yet. Approve tasks on the **Pending** page, or add a card of your own.", icon=":material/view_kanban:")
else:
    with st.expander("Move a card", icon=":material/swap_horiz:"):
        labels = {c.id: f"{c.title} — {STATUS_LABELS[c.status]}" for c in all_cards}
        m1, m2, m3 = st.columns([3, 1, 1], vertical_alignment="bottom")
        chosen = m1.selectbox("Card", list(labels), format_func=lambda i: labels[i], key="move_pick")
        target = m2.selectbox("To", CARD_STATUSES, format_func=STATUS_LABELS.get, key="move_target")
        if m3.button("Move", icon=":material/arrow_forward:"):
            move(chosen, target)
            st.rerun()

today = dt.date.today()
for status, column in zip(CARD_STATUSES, st.columns(len(CARD_STATUSES)), strict=True):
    cards = columns[status]
    column.subheader(f"{STATUS_LABELS[status]} · {len(cards)}")
    if len(cards) > CARD_LIMIT:
        column.dataframe(
            pd.DataFrame({
                "title": [c.title for c in cards], "project": [c.project for c in cards],
                "due": [c.due_date for c in cards],
                "sync": [widgets.SYNC_LABELS[c.sync_state] for c in cards],
                "link": [c.confluence_url for c in cards],
            }),
            hide_index=True, height=600,
            column_config={"link": st.column_config.LinkColumn("Confluence", display_text="Open")},
        )
        continue
    for card in cards:
        box = column.container(border=True)
        box.markdown(f"**{widgets.literal(card.title)}**")
        facts = []
        if card.project:
            facts.append(widgets.literal(card.project))
        if card.due_date:
            facts.append(f":red[overdue {card.due_date:%Y-%m-%d}]" if card.overdue(today) else f"due {card.due_date:%Y-%m-%d}")
        if card.source == "confluence":
            facts.append(widgets.sync_badge(card.sync_state))
            if several_sites and card.site:
                facts.append(widgets.literal(card.site))
        if card.confluence_url:
            facts.append(f"[Confluence page]({quote(card.confluence_url, safe=':/?&=#%')})")
        if facts:
            box.markdown(" · ".join(facts))
        if card.sync_error and card.sync_state in ("failed", "conflict", "waiting"):
            box.caption(widgets.literal(card.sync_error))
        if card.sync_state == "failed":
            box.button("Retry sync", key=f"retry_{card.id}", on_click=retry, args=(card.id,), icon=":material/refresh:")
        if card.sync_state == "conflict":
            k1, k2 = box.columns(2)
            k1.button("Keep done", key=f"keep_{card.id}", on_click=settle, args=(card.id, "here"))
            k2.button("Reopen here", key=f"reopen_{card.id}", on_click=settle, args=(card.id, "confluence"))
        box.selectbox("Move to", [s for s in CARD_STATUSES if s != status], index=None, key=f"move_{card.id}",
                      format_func=STATUS_LABELS.get, placeholder="Move to…", label_visibility="collapsed",
                      on_change=on_move, args=(card.id,))
