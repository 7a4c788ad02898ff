"""Diagnostics: exactly why a connection works or fails."""

import pandas as pd
import streamlit as st

from trackli import connections, diagnostics
from trackli.ui import setup, widgets

pc = setup.page("Diagnostics", ":material/troubleshoot:")
ctx, uid = pc.ctx, pc.user_id

with ctx.session() as session:
    conns = [connections.describe(c) for c in connections.list_connections(session, uid)]

if not conns:
    st.info("No Atlassian connection to diagnose yet: make one on the Connect page.")
    st.page_link("pages/connect.py", label="Connect Atlassian", icon=":material/link:")
    st.stop()

for conn in conns:
    st.header(f"{widgets.literal(conn['site_name'] or conn['site_url'])} · {'OAuth 2.0' if conn['kind'] == 'oauth' else 'API token'}")
    live = st.button("Run live probe", key=f"probe_{conn['id']}", icon=":material/network_check:",
                     help="Calls each Confluence API Trackli uses; the write check re-sends a task's own status, "
                          "so nothing changes in Confluence.")
    ok, d = widgets.act(lambda: diagnostics.diagnose(ctx, uid, conn["id"], live=live))
    if not ok or d is None:
        continue
    (st.success if d.ok else st.error)(widgets.literal(d.headline), icon=":material/check_circle:" if d.ok else ":material/error:")
    st.dataframe(pd.DataFrame([{"Check": f.check, "OK": f.ok, "What Trackli found": f.detail, "How to fix it": f.fix or ""}
                               for f in d.findings]), hide_index=True, width="stretch")
    if d.scope_table:
        st.subheader("Scopes: required against granted")
        st.dataframe(pd.DataFrame([{"Trackli needs to": r["operation"], "Scopes it takes": r["required"],
                                    "Missing": r["missing"], "Granted": r["ok"]} for r in d.scope_table]),
                     hide_index=True, width="stretch")
        st.caption("Granted: " + (" ".join(conn["scopes"]) or "(none)"))
    if d.probes:
        st.subheader("Live probe")
        st.dataframe(pd.DataFrame([{"API": p.api, "Method": p.method, "Answered": p.ok, "HTTP status": p.status,
                                    "Time (ms)": round(p.latency_ms, 1) if p.latency_ms is not None else None,
                                    "Detail": p.detail} for p in d.probes]), hide_index=True, width="stretch")
    st.subheader("Last sync runs")
    if d.runs:
        st.dataframe(pd.DataFrame([{"Started (UTC)": r["started_at"], "Trigger": r["trigger"], "Outcome": r["outcome"],
                                    "Kind": r["kind"], "New": r["new"], "Gone": r["gone"], "Requests": r["requests"],
                                    "Points": r["points"],
                                    "Seconds": r["duration_s"], "Error": r["error"] or ""} for r in d.runs]),
                     hide_index=True, width="stretch")
    else:
        st.caption("No sync has run yet.")
    st.subheader("Atlassian points, last hour")
    spent = d.points
    st.write(f"This connection: {spent['connection']:,} · the whole deployment: {spent['deployment']:,} "
             f"of a pool of {spent['pool']:,} an hour")
    st.caption(f"What limits this connection: {spent['applies']}. A point is one API call, plus one per object a "
               "read returns (TRACKLI_QUOTA_POINTS_PER_HOUR sets the pool).")
    st.subheader("Schedule")
    if spent["stretch"] > 1:
        st.warning(f"Scheduled syncs run {spent['stretch']:g}× less often than every {spent['every_s']:g} s since "
                   f"{spent['stretched_since']:%Y-%m-%d %H:%M} UTC: {spent['stretched_because']}.")
    next_at, swept = spent["next_sync_at"], spent["last_full_sync_at"]
    cadence = {"live": f"every {pc.ctx.settings.live_sync_every_s:g} s while you have Trackli open",
               "today": f"every {pc.ctx.settings.sync_every_s:g} s (you were here today)",
               "idle": f"every {pc.ctx.settings.idle_sync_every_s:g} s (you have not been here for a day)"}[spent["presence"]]
    st.write(f"Synced on schedule by **{spent['synced_by']}** · {cadence}"
             + ("" if spent["embedded"] != "off" else " · this dashboard's own scheduler is off "
                "(TRACKLI_EMBEDDED_WORKER=off): a `trackli worker` must run"))
    st.write(f"Next scheduled sync: {f'{next_at:%Y-%m-%d %H:%M:%S} UTC' if next_at else 'as soon as a scheduler runs'} · "
             f"last full sweep: {f'{swept:%Y-%m-%d %H:%M} UTC' if swept else 'none yet'}"
             + (f" · {spent['failures_in_a_row']} scheduled syncs failed in a row (retried later and later, at most hourly)"
                if spent["failures_in_a_row"] else ""))
    st.caption("Scheduled syncs ask only for tasks created or completed since the last poll; a full sweep (the "
               "only kind that notices edits, reassignments and deletions) runs at least hourly and on Sync now.")
    st.subheader("Completion outbox")
    st.write(f"{d.outbox['waiting']} waiting · {d.outbox['failed']} failed")
    if d.outbox["failures"]:
        st.dataframe(pd.DataFrame([{"Card": f["card_id"], "Wanted in Confluence": f["status"], "Why it failed": f["error"]}
                                    for f in d.outbox["failures"]]), hide_index=True, width="stretch")
    st.subheader("Rate-limit headers last seen")
    if d.rate_limit:
        st.json(d.rate_limit)
    else:
        st.caption("None seen: Atlassian has not signalled any rate limiting.")
