"""Board: your cards by status, dragged between columns. Moving a Confluence card to Done completes the
task in Confluence; clicking a card opens its details."""

import pandas as pd
import streamlit as st

from trackli import background, board, board_view, changes, projects, snooze
from trackli.errors import TrackliError
from trackli.models import CARD_STATUSES
from trackli.text import MAX_TITLE
from trackli.ui import card_details, inbox, setup, triage, widgets
from trackli.ui.kanban import board_data, kanban
from trackli.ui.widgets import STATUS_LABELS

PAGE = 200  # cards drawn per column; "Show more" adds another page
HINT = ("Drag cards between columns — and waiting tasks from the Inbox onto a column to approve them — or focus one "
        "and press Shift+arrows; ⋯ (or M) opens its menu, a click (or Enter) its details.")
pc = setup.page("Board", ":material/view_kanban:")
ctx, uid = pc.ctx, pc.user_id

board_stamp = widgets.watch("board_stamp", ctx, uid, changes.versions)  # cards, and the inbox's queue
widgets.flash()


def send_completions(after_s: float = 0.0) -> None:
    """Completion sync starts off the page's thread (after the Undo window, for a move into Done): the
    move never waits for Confluence, and an undone drop never reaches it."""
    background.sends.send_soon(ctx, uid, after_s)


def on_move(event: dict) -> None:
    """A drop, a key or the card menu: apply it; if refused, the redraw puts the card back and says why."""
    try:
        card_id, to = widgets.form_id(event.get("card")), str(event["to"])
        before = None if event.get("before") is None else widgets.form_id(event["before"])
    except (KeyError, TypeError, ValueError):
        st.session_state["board_notice"] = "That move was not saved: card not found on your board"
        return
    try:
        was = pc.run(board.place_of, card_id)
        wait = inbox.UNDO_FOR_S if to == "done" else 0.0  # Confluence is told only after the Undo window
        card = pc.run(board.move_card, card_id, to, before=before, send_after_s=wait)
    except TrackliError as exc:
        st.session_state["board_notice"] = f"That move was not saved: {exc}"
        return
    widgets.remember_stamp("board_stamp", board_stamp())  # this tab already shows its own move
    inbox.offer_move_undo(card_id, was, card.status, sending=card.sync_state == "waiting" and card.status == "done")
    if card.sync_state == "waiting":
        send_completions(wait)


def on_open(card_id: int) -> None:
    try:
        st.session_state["open_card"] = widgets.form_id(card_id)
    except ValueError:
        st.session_state["board_notice"] = "That card was not found on your board"


def on_inbox(event: dict) -> None:
    inbox.handle(pc, event)
    widgets.remember_stamp("board_stamp", board_stamp())  # this tab already shows its own action
    if event.get("action") == "approve" and event.get("to") == "done":
        send_completions()


def on_undo(token: str) -> None:
    inbox.undo(pc, token)
    widgets.remember_stamp("board_stamp", board_stamp())


def on_add(event: dict) -> None:
    """A title typed at a column's foot (Enter): a card of the person's own there. If it is refused, the
    form opens again with the title in it and the notice says why — nothing typed is lost."""
    title = str(event.get("title") or "")[:MAX_TITLE * 2]
    status = str(event.get("status") or "")
    try:
        project_id = None if event.get("project") is None else widgets.form_id(event.get("project"))
        pc.run(board.create_card, title, status=status, due_date=event.get("due") or None, project_id=project_id)
    except (TrackliError, ValueError) as exc:
        st.session_state["board_notice"] = f"That card was not added: {exc}"
        st.session_state["board_add_draft"] = {"status": status, "title": title}
        return
    widgets.remember_stamp("board_stamp", board_stamp())  # this tab already shows its own card


def on_more(status: str) -> None:
    shown = st.session_state.setdefault("board_shown", {})
    shown[status] = shown.get(status, PAGE) + PAGE


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
            action = {"name": projects.rename_project, "colour": projects.recolour_project,
                      "archived": projects.archive_project}[field]
            widgets.act(lambda: pc.run(action, project_id, value), where=f"Project {value!r}")


save_projects()
with ctx.session() as session:
    every_project = projects.list_projects(session, uid, include_archived=True)
active_projects = [p for p in every_project if not p.archived]
by_name = {p.name: p.id for p in active_projects}

# One compact toolbar row (the search and filters follow, in the board's fragment): the cards start high.
toolbar = st.container(horizontal=True, gap="small", vertical_alignment="center")
with toolbar:
    triage.sync_button(pc)
projects_box = toolbar.popover("Projects", icon=":material/folder:", help="Rename, recolour, archive or create projects")
with toolbar:
    triage.sync_progress()  # one short line beside the buttons while a sync runs
with projects_box:
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
        colour = st.color_picker("Colour", widgets.per_version("next_colour", len(every_project),
                                                            lambda: pc.run(projects.next_colour)))
        if st.form_submit_button("Create project", icon=":material/create_new_folder:"):
            if widgets.act(lambda: pc.run(projects.create_project, name, colour.upper()))[0]:
                widgets.flash(f"Project {name.strip()!r} created")
                st.rerun()


@st.fragment
def draw_board() -> None:
    """Filters, the board and the open card: a move or a filter reruns only this, not the whole page."""
    f1, f2 = st.columns([4, 1], vertical_alignment="bottom")
    text_filter = f1.text_input("Search", key="board_text", placeholder="Search words in the title, page or note",
                                help=HINT,
                                label_visibility="collapsed")
    narrowed = sum(st.session_state.get(k) not in (None, v) for k, v in
                   (("board_project", "All projects"), ("board_due", "any"), ("board_sync", "any")))
    with f2.popover(f"Filters · {narrowed}" if narrowed else "Filters", icon=":material/filter_list:", width="stretch"):
        project_filter = st.selectbox("Project", ["All projects"] + list(by_name), key="board_project")
        due_filter = st.selectbox("Due", board_view.DUE_FILTERS, key="board_due",
                                  format_func={"any": "Any due date", "overdue": "Overdue", "week": "Due this week",
                                               "none": "No due date"}.get)
        sync_filter = st.selectbox("Sync", board_view.SYNC_FILTERS, key="board_sync",
                                   format_func={"any": "Any sync state", "waiting": "Waiting to sync",
                                                "failed": "Sync failed", "conflict": "Conflict",
                                                "gone": "Gone from Confluence", "local": "Local cards"}.get)
        density = st.segmented_control("Density", ["Comfortable", "Compact"], default="Comfortable",
                                       key="board_density") or "Comfortable"
    where = board_view.CardFilter(project_id=by_name.get(project_filter), due=due_filter, sync=sync_filter, text=text_filter)
    shown = st.session_state.get("board_shown", {})
    today = widgets.today()
    with ctx.session() as session:
        page = board_view.board_page(session, uid, where=where, limit=max([PAGE, *shown.values()]), today=today)
    for status in CARD_STATUSES:  # each column shows its own number of pages
        page.columns[status] = page.columns[status][: shown.get(status, PAGE)]

    filtered = where != board_view.CardFilter()
    waiting = inbox.inbox_data(pc, today)
    if not any(page.counts.values()) and not filtered and not waiting["count"]:
        st.info("No cards yet. New Confluence tasks that mention you arrive in the **Inbox** here (and on "
                "**Pending**); or add a card of your own with **+ Add a card** at the foot of a column.", icon=":material/view_kanban:")
    if filtered and not any(page.counts.values()):
        st.caption("No card matches these filters.")
    kanban(board_data(page, today=today, density=density.lower(), notice=st.session_state.pop("board_notice", None),
                      version=st.session_state.get("board_stamp"), inbox=waiting, undo=inbox.undo_offer(),
                      projects=[(p.id, p.name) for p in active_projects],
                      draft=st.session_state.pop("board_add_draft", None)),
           key="kanban", on_move=on_move, on_open=on_open, on_more=on_more, on_inbox=on_inbox, on_undo=on_undo,
           on_add=on_add)

    if st.session_state.get("open_card") is not None:
        card_details.dialog(pc, st.session_state["open_card"], active_projects, send_completions)
    elif st.session_state.get("edit_task") is not None:
        inbox.edit_dialog(pc, st.session_state["edit_task"])


draw_board()

with ctx.session() as session:
    sleeping = [s for s in snooze.snoozed(session, uid) if s.kind == "card"]
if sleeping:
    with st.expander(f"Snoozed ({len(sleeping)})", icon=":material/snooze:"):
        for item in sleeping:
            r1, r2 = st.columns([5, 1], vertical_alignment="center")
            r1.markdown(f"{widgets.literal(item.title)} · back on {item.until:%a %d %b %Y} · "
                        f"{STATUS_LABELS.get(item.column or '', '')}")
            if r2.button("Back now", key=f"wake_{item.id}", icon=":material/alarm_on:"):
                if widgets.act(lambda: pc.run(snooze.unsnooze_card, item.id))[0]:
                    widgets.flash("Back on the board, on top")
                    st.rerun()

with ctx.session() as session:
    archived = board_view.list_cards(session, uid, where=board_view.CardFilter(archived=True), limit=201)
if archived:
    with st.expander(f"Archived ({len(archived) if len(archived) <= 200 else '200+'})", icon=":material/archive:"):
        for card in archived[:200]:
            r1, r2 = st.columns([5, 1], vertical_alignment="center")
            r1.markdown(f"{widgets.literal(card.title)} · {STATUS_LABELS[card.status]}")
            if r2.button("Restore", key=f"restore_{card.id}", icon=":material/unarchive:"):
                if widgets.act(lambda: pc.run(board.archive_card, card.id, False))[0]:
                    widgets.flash("Card restored")
                    st.rerun()
