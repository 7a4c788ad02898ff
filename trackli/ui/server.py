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
