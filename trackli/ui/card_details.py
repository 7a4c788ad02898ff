"""A card's details dialog (the board opens it on a click or Enter): its fields, note and Confluence
state, and every command a card has, each through `widgets.act` so a refusal is shown in words."""

from __future__ import annotations

from typing import Callable

import streamlit as st

from trackli import board, board_view, completion, queue, snooze
from trackli.errors import TrackliError
from trackli.models import Project
from trackli.text import MAX_TITLE
from trackli.ui import inbox, triage, widgets
from trackli.ui.setup import PageContext
from trackli.ui.widgets import STATUS_LABELS


def closed() -> None:
    st.session_state.pop("open_card", None)


def done_with_card(message: str) -> None:
    """An action in the details dialog succeeded: close the dialog and redraw the board."""
    closed()
    widgets.flash(message)
    st.rerun()


def undoable(kind: str, notice: str, command: Callable[[], object], *, result_as: str | None = None,
             **what: object) -> None:
    """Archive, delete, send back: done at once and said on the board with Undo (no "are you sure?");
    what Undo needs is `what`, plus the command's result as `result_as`."""
    ok, result = widgets.act(command)
    if ok:
        closed()
        inbox.offer_card_undo(kind, notice, **what, **({result_as: result} if result_as else {}))
        st.rerun()


@st.dialog("Card", width="large", on_dismiss=closed)
def dialog(pc: PageContext, card_id: int, projects: list[Project], send_completions: Callable[[], None]) -> None:
    """A card's details: edit its fields and note; open it in Confluence; retry, settle a conflict,
    archive, unlink, send back, snooze or delete it."""
    try:
        card = pc.run(board_view.card_view, card_id)
    except TrackliError:
        st.info("This card no longer exists (deleted in another tab?).")
        return
    st.markdown(f"### {widgets.literal(card.title)}")
    if card.gone_reason:
        st.warning(f"This task is gone from Confluence: {widgets.literal(card.gone_reason)}. Keep it as a local "
                   "card (nothing more is sent to Confluence), or delete it.", icon=":material/link_off:")
        g1, g2, _ = st.columns([1, 1, 2])
        if g1.button("Keep as a local card", key="gone_keep", icon=":material/bookmark:"):
            if widgets.act(lambda: pc.run(board.unlink_card, card_id))[0]:
                done_with_card("Kept as a local card")
        if g2.button("Delete card", key="gone_delete", icon=":material/delete:"):
            undoable("delete", "Card deleted.", lambda: pc.run(board.delete_card, card_id), result_as="kept")
    elif card.sync_state == "conflict":
        st.warning("Here this card is **done**; in Confluence the task is **open**. Choose which is right.",
                   icon=":material/sync_problem:")
        k1, k2, _ = st.columns([1, 1, 2])
        for column, keep, label in ((k1, "here", "Keep it done (complete it in Confluence)"),
                                    (k2, "confluence", "Reopen it here")):
            if column.button(label, key=f"keep_{keep}"):
                if widgets.act(lambda: pc.run(completion.resolve_conflict, card_id, keep))[0]:
                    send_completions()
                    done_with_card("Conflict settled")
    elif card.sync_state == "failed":
        st.error(f"Confluence was not updated: {widgets.literal(card.sync_error)}", icon=":material/error:")
        if st.button("Retry", key="retry", icon=":material/refresh:"):
            if widgets.act(lambda: pc.run(completion.retry_card, card_id))[0]:
                send_completions()
                done_with_card("Sent to Confluence again")

    projects_by_id = {p.id: p.name for p in projects}
    if card.project_id is not None and card.project_id not in projects_by_id:
        projects_by_id[card.project_id] = card.project or "(archived project)"
    with st.form("card_details"):
        title = st.text_input("Title", card.title, max_chars=MAX_TITLE, key=f"detail_title_{card_id}")
        d1, d2 = st.columns(2)
        due = d1.date_input("Due", card.due_date, format="YYYY-MM-DD", key=f"detail_due_{card_id}")
        options: list = [None, *projects_by_id]
        project_id = d2.selectbox("Project", options, index=options.index(card.project_id),
                                  format_func=lambda i: "(none)" if i is None else projects_by_id[i],
                                  key=f"detail_project_{card_id}")
        note = st.text_area("Note", card.note, placeholder="Anything you want to remember about this card",
                            max_chars=20000, key=f"detail_note_{card_id}")
        if st.form_submit_button("Save", type="primary", icon=":material/save:"):
            if widgets.act(lambda: pc.run(board.edit_card, card_id, title=title, due_date=due, project_id=project_id,
                                          description=note))[0]:
                done_with_card("Card saved")

    facts = [f"**{STATUS_LABELS[card.status]}**"]
    if card.source == "confluence":
        facts.append(widgets.sync_badge(card.sync_state))
    if card.confluence_page_title:
        space = card.confluence_space_name or card.confluence_space_key
        facts.append(f"Page: {widgets.literal(card.confluence_page_title)}"
                     + (f" · Space: {widgets.literal(space)}" if space else "")
                     + (f" · {widgets.literal(card.site)}" if card.site else ""))
    st.markdown(" · ".join(facts))
    if card.confluence_url and card.confluence_url.startswith(("https://", "http://")):
        st.link_button("Open in Confluence", card.confluence_url, icon=":material/open_in_new:")

    a1, a2, a3, a4 = st.columns(4)
    if a1.button("Archive", key="archive", icon=":material/archive:", help="Off the board, kept; restore it from Archived"):
        place = pc.run(board.place_of, card_id)
        undoable("archive", "Card archived.", lambda: pc.run(board.archive_card, card_id), card=card_id, place=place)
    if card.source == "confluence" and not card.gone_reason:
        if a2.button("Unlink from Confluence", key="unlink", icon=":material/link_off:",
                     help="Keep a local card; nothing more is sent to Confluence"):
            if widgets.act(lambda: pc.run(board.unlink_card, card_id))[0]:
                done_with_card("Unlinked: a local card now")
        if a3.button("Send back to the queue", key="send_back", icon=":material/undo:",
                     help="A mistaken approval: the task waits on Pending again"):
            undoable("send_back", "Sent back to the queue.", lambda: pc.run(queue.send_back_undoable, card_id),
                     result_as="sent")
    if card.status != "done":
        with st.popover("Snooze", icon=":material/snooze:", help="Off the board until a day; back on top then"):
            until = triage.until_picker("card_snooze")
            if st.button("Snooze", key="card_snooze_go", type="primary", disabled=until is None):
                if widgets.act(lambda: pc.run(snooze.snooze_card, card_id, until))[0]:
                    done_with_card(f"Snoozed until {until}")
    if a4.button("Delete", key="delete", icon=":material/delete:", help="Gone from the board; Undo brings it back"):
        undoable("delete", "Card deleted.", lambda: pc.run(board.delete_card, card_id), result_as="kept")
