"""Trackli home: what needs you now, and where to go."""

import streamlit as st

from trackli import board_view, changes, queue, sync
from trackli.ui import setup, triage, widgets

pc = setup.page("Trackli", ":material/task_alt:")
widgets.watch("home_stamp", pc.ctx, pc.user_id, changes.versions)  # new tasks show up without a click
widgets.flash()
triage.sync_now(pc)

with pc.ctx.session() as session:
    pending = queue.pending_count(session, pc.user_id)
    counts = board_view.column_counts(session, pc.user_id)
    stuck, stuck_count = board_view.needing_attention(session, pc.user_id, limit=20)
    runs = sync.last_runs(session, pc.user_id, limit=1)

st.write("Confluence tasks that mention you, on your own board: triage them in **Pending**, "
         "work them on the **Board**, and completing a card completes the task in Confluence.")
a, b, c, d = st.columns(4)
a.metric("Waiting for approval", pending)
b.metric("To do", counts["todo"] + counts["backlog"])
c.metric("In progress", counts["in_progress"])
d.metric("Done", counts["done"])
if runs:
    run = runs[0]
    st.caption(f"Last sync {widgets.when(run.started_at)}: {run.outcome}"
               + (f" — {run.new_count} new, {run.gone_count} gone" if run.outcome == "ok"
                  else f" — {widgets.literal(run.error or '')}"), help=f"{run.started_at:%Y-%m-%d %H:%M:%S} UTC")
# What needs the person: cards whose completion could not reach Confluence, or that it contradicts.
if stuck:
    st.subheader(f"Needs you · {stuck_count}")
    for card in stuck:
        reason = "Conflict: " if card.sync_state == "conflict" else "Not sent to Confluence: "
        st.markdown(f"**{widgets.literal(card.title)}** · {widgets.sync_badge(card.sync_state)}")
        st.caption(reason + widgets.literal(card.sync_error or ""))
    if stuck_count > len(stuck):
        st.caption(f"…and {stuck_count - len(stuck)} more on the board.")
    st.page_link("pages/board.py", label="Settle them on the board", icon=":material/view_kanban:")
st.page_link("pages/pending.py", label="Review pending tasks", icon=":material/inbox:")
st.page_link("pages/board.py", label="Open the board", icon=":material/view_kanban:")
