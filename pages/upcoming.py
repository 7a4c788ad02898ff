"""Upcoming: what is due, by day — open cards and tasks still waiting for approval, this week and next.
The calendar inside the app (the Calendar page's feed puts the same dates in your own calendar)."""

import streamlit as st

from trackli import board_view, changes
from trackli.clock import due_words
from trackli.ui import setup, widgets
from trackli.ui.widgets import STATUS_LABELS

pc = setup.page("Upcoming", ":material/event_upcoming:")
widgets.watch("upcoming_stamp", pc.ctx, pc.user_id, changes.versions)
today = widgets.today()
weeks = st.segmented_control("Show", ["This week and next", "Four weeks"], default="This week and next",
                             key="upcoming_span") or "This week and next"
with pc.ctx.session() as session:
    items = board_view.upcoming(session, pc.user_id, today, days=14 if weeks == "This week and next" else 28)

if not items:
    st.info("Nothing due in this span. Cards and waiting tasks with a due date show up here by day.",
            icon=":material/event_available:")
shown: str | None = None
for item in items:
    if item.due_date < today:
        heading = "Overdue"  # one heading for everything overdue
    else:
        heading = f"{due_words(item.due_date, today)[0].removeprefix('due ').capitalize()} · {item.due_date:%a %-d %b}"
    if heading != shown:
        st.subheader(heading, divider="gray")
        shown = heading
    where = STATUS_LABELS.get(item.column or "", "") if item.kind == "card" else "waiting for approval"
    facts = " · ".join(x for x in (where, item.project or "", f"{item.due_date:%-d %b}" if item.due_date < today else "") if x)
    left, right = st.columns([6, 1], vertical_alignment="center")
    left.markdown(f"{'**' if item.kind == 'card' else ''}{widgets.literal(item.title)}{'**' if item.kind == 'card' else ''}"
                  f"  \n:gray[{widgets.literal(facts)}]")
    if item.url and item.url.startswith(("https://", "http://")):
        right.link_button("Open", item.url, icon=":material/open_in_new:")
