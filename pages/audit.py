"""Audit log: every integration event, newest first."""

import datetime as dt
import json

import pandas as pd
import streamlit as st

from trackli import audit
from trackli.ui import setup, widgets

pc = setup.page("Audit log", ":material/history:")
ctx, uid = pc.ctx, pc.user_id

with ctx.session() as session:
    known_events = audit.event_types(session, uid)

f1, f2, f3 = st.columns([2, 1, 2])
events = f1.multiselect("Events", known_events, key="audit_events", placeholder="All events",
                        format_func=widgets.event_label)
outcome = f2.radio("Outcome", ["All", "Succeeded", "Failed"], horizontal=True, key="audit_outcome")
today = widgets.today()
span = f3.date_input("Dates", value=(today - dt.timedelta(days=30), today), key="audit_dates")
since = until = None
if isinstance(span, (tuple, list)) and len(span) == 2:
    since = dt.datetime.combine(span[0], dt.time(), dt.timezone.utc)
    until = dt.datetime.combine(span[1] + dt.timedelta(days=1), dt.time(), dt.timezone.utc)

with ctx.session() as session:
    entries = audit.query(session, uid, event_types=events, success={"All": None, "Succeeded": True, "Failed": False}[outcome],
                          since=since, until=until, limit=5000)

zone = widgets.zone()  # times in the person's own time zone

if not entries:
    st.info("No audit entries match. Connecting, syncing, approving and completing tasks all leave entries here.")
else:
    with ctx.session() as session:
        about = audit.subjects(session, uid, entries)
    frame = pd.DataFrame({
        "time (UTC)": [e.created_at.replace(tzinfo=None) for e in entries],
        "event": [e.event_type for e in entries],
        "outcome": ["ok" if e.success else "failed" for e in entries],
        "error": [e.error_message or "" for e in entries],
        "details": [json.dumps(e.details, ensure_ascii=False, sort_keys=True) for e in entries],
    })
    shown = pd.DataFrame({
        "When": [e.created_at.astimezone(zone).replace(tzinfo=None) for e in entries],
        "What": [widgets.event_label(e.event_type) for e in entries],
        "About": [about.get(e.id, "") for e in entries],
        "Outcome": frame["outcome"],
        "Error": frame["error"],
    })
    syncs = frame[frame["event"].isin(["confluence.tasks_fetched", "confluence.fetch_failed"])]
    if not syncs.empty:
        st.subheader("Sync outcomes")
        chart = (syncs.assign(day=syncs["time (UTC)"].dt.floor("h"))
                 .pivot_table(index="day", columns="outcome", values="event", aggfunc="count", fill_value=0))
        colours = {"failed": "#C9372C", "ok": "#22A06B"}
        st.bar_chart(chart, height=220, color=[colours[c] for c in chart.columns], x_label="hour (UTC)", y_label="syncs")
    st.download_button("Download CSV", frame.to_csv(index=False).encode(), "trackli-audit.csv", "text/csv",
                       icon=":material/download:")
    st.dataframe(shown, hide_index=True, width="stretch", column_config={
        "When": st.column_config.DatetimeColumn(
            f"When ({zone.key})", format="YYYY-MM-DD HH:mm:ss",
            help=f"In your time zone, {zone.key}; the CSV has every time in UTC, with event names and ids")})
    st.subheader("Details")
    for entry in entries[:50]:
        label = (f"{entry.created_at.astimezone(zone):%Y-%m-%d %H:%M:%S} · {widgets.event_label(entry.event_type)}"
                 + (f" · {about[entry.id]}" if entry.id in about else "") + ("" if entry.success else " · failed"))
        with st.expander(label):
            if entry.error_message:
                st.text(entry.error_message)
            st.json(entry.details, expanded=True)
    if len(entries) > 50:
        st.caption(f"Details of the newest 50 of {len(entries)} entries; the CSV has them all.")
