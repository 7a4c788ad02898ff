"""Trackli's dashboard: `streamlit run app.py` serves the home page (home.py) and pages/, behind
Trackli's own response headers, with the calendar feed's route (`/feeds/<token>.ics`) beside them, and
starts the dashboard's own scheduler. The pages are in those files; this one only assembles the server."""

import streamlit as st

from trackli.ui import server

server.guard_settings()  # loopback only and no tracebacks, whatever folder the server was started from
app = st.App("home.py", middleware=server.MIDDLEWARE, routes=server.ROUTES)
server.start_scheduler()  # connections stay current from the start, whether or not a page is open
