"""Calendar: your due dates in your own calendar app, through a private feed, and what is snoozed."""

import streamlit as st

from trackli import feed, snooze
from trackli.ui import setup, widgets

pc = setup.page("Calendar", ":material/calendar_month:")
ctx, uid = pc.ctx, pc.user_id
widgets.flash()

st.subheader("Calendar feed")
with ctx.session() as session:
    url = feed.current_url(ctx, session, uid)
    include_pending = feed.includes_pending(session, uid)
if url:
    st.write("Subscribe to this address in Google Calendar (Other calendars → From URL), Outlook (Add calendar → "
             "Subscribe from web) or Apple Calendar (File → New Calendar Subscription). It lists your open cards "
             "with a due date as all-day events; anyone with the address can read it, so keep it to yourself.")
    st.code(url, language=None)
    pending = st.toggle("Also list pending tasks with a due date", value=include_pending, key="feed_pending")
    if pending != include_pending:
        widgets.act(lambda: pc.run(lambda s, u: feed.turn_on(ctx, s, u, include_pending=pending)), later=True)
        st.rerun()
    r1, r2 = st.columns(2)
    if r1.button("New address", icon=":material/autorenew:", help="The old address stops working at once"):
        widgets.act(lambda: pc.run(lambda s, u: feed.rotate(ctx, s, u)), done="A new address: subscribe to it again",
                    later=True)
        st.rerun()
    if r2.button("Turn the feed off", icon=":material/link_off:"):
        widgets.act(lambda: pc.run(feed.turn_off), done="The feed is off: its address answers nothing", later=True)
        st.rerun()
else:
    st.write("Your cards' due dates can appear in your own calendar app through a private address that only "
             "you know (you can change it or turn it off at any time).")
    if st.button("Turn the calendar feed on", type="primary", icon=":material/calendar_add_on:"):
        widgets.act(lambda: pc.run(lambda s, u: feed.turn_on(ctx, s, u)), done="The feed is on", later=True)
        st.rerun()

st.subheader("Snoozed")
with ctx.session() as session:
    sleeping = snooze.snoozed(session, uid)
if not sleeping:
    st.caption("Nothing is snoozed. Snooze a pending task on Pending, or a card from its details on the Board.")
for item in sleeping:
    left, right = st.columns([5, 1], vertical_alignment="center")
    kind = "Pending task" if item.kind == "pending" else "Card"
    left.markdown(f"{widgets.literal(item.title)} · {kind} · back on {item.until:%a %d %b %Y}")
    if right.button("Back now", key=f"wake_{item.kind}_{item.id}", icon=":material/alarm_on:"):
        action = (lambda s, u: snooze.unsnooze_pending(s, u, [item.id])) if item.kind == "pending" else \
            (lambda s, u: snooze.unsnooze_card(s, u, item.id))
        widgets.act(lambda: pc.run(action), done="Back now", later=True)
        st.rerun()
