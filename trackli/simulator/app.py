"""The simulated Atlassian over HTTP: one port serves the auth server, the API gateway and a site,
each surface in a module of its own.

- auth server:  /authorize, /oauth/token (oauth_server.py)
- API gateway:  /oauth/token/accessible-resources, /me (oauth_server.py), /ex/confluence/{cloudId}/wiki/api/v2/...
                (Bearer; confluence.py)
- site:         /wiki/api/v2/..., /wiki/rest/api/user/current (Basic email:api_token; confluence.py)
- faults:       latency, 429/5xx, timeouts, dropped connections, the points pool (faults.py)
- admin:        /_admin/... (knobs, upstream changes, request log; admin.py)
"""

from __future__ import annotations

import random
from email.utils import formatdate
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from trackli.simulator.admin import Admin
from trackli.simulator.confluence import Confluence
from trackli.simulator.faults import Faults
from trackli.simulator.oauth_server import OAuthServer
from trackli.simulator.oidc import OidcProvider
from trackli.simulator.state import SimState


def build_app(state: SimState) -> Starlette:
    gate = Confluence(state, Faults(state, random.Random(state.knobs.seed)))

    async def index(request: Request) -> Response:
        return HTMLResponse("<h1>Simulated Atlassian</h1><p>A local stand-in for Atlassian, used by Trackli's demo and tests.</p>")

    routes = [Route("/", index), *OAuthServer(state, gate).routes(), *gate.routes(), *Admin(state).routes(),
              *OidcProvider(state).routes()]
    return Starlette(routes=routes, middleware=[Middleware(SimulatedDate, state=state)])


class SimulatedDate:
    """Every response's `Date` is the simulator's clock (which a test can move), as Atlassian's is its own:
    an incremental poll's watermark comes from it, never from the client's clock."""

    def __init__(self, app: Any, state: SimState) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def dated(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"date"]
                headers.append((b"date", formatdate(self.state.now(), usegmt=True).encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, dated)
