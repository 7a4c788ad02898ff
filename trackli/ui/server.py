"""What the dashboard's web server adds around Streamlit's own: security headers on every response."""

from __future__ import annotations

from typing import Any

from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import Response

from trackli import feed

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",  # no other site may frame the dashboard (clickjacking)
    "Content-Security-Policy": "frame-ancestors 'none'",
    "Referrer-Policy": "same-origin",  # page addresses never travel to Atlassian or anyone else
}


class SecurityHeaders(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response


MIDDLEWARE = [Middleware(SecurityHeaders)]


def _context() -> Any:
    from trackli.config import load_settings
    from trackli.ui.setup import context_for

    return context_for(load_settings())


# Served beside the pages by the dashboard's own server: the calendar feed (trackli.feed).
ROUTES = [feed.route(_context)]


def start_scheduler() -> None:
    """At server start: open the database and start the dashboard's own scheduler (trackli.embedded), so
    connections stay current before anyone opens a page. A broken setting is left for the pages to say."""
    try:
        _context()
    except Exception as exc:  # the first page shows why Trackli cannot start, in words
        import logging

        logging.getLogger("trackli.ui").warning("the scheduler did not start with the server: %s", exc)


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def guard_settings() -> None:
    """Safe server settings whatever folder the server was started from: Streamlit reads the
    .streamlit/config.toml beside app.py, and this holds if that file is missing or was overridden
    by accident. No traceback is ever shown (client.showErrorDetails); listening beyond loopback needs
    an explicit `server.address` (a flag, an environment variable or a config file) — Streamlit's
    default (every interface) stops the server."""
    import logging
    import os

    import streamlit as st
    from streamlit import config
    from streamlit.config_option import ConfigOption

    st.set_option("client.showErrorDetails", "none")
    where = config.get_where_defined("server.address")
    address = config.get_option("server.address") or ""
    if where == ConfigOption.DEFAULT_DEFINITION and address not in LOOPBACK:
        logging.getLogger("trackli.ui").error(
            "refusing to serve on every interface: .streamlit/config.toml beside app.py is missing; start with "
            "--server.address 127.0.0.1 (or an explicit address for a team behind a proxy)")
        os._exit(2)
