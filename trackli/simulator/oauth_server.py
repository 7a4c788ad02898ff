"""The OAuth 2.0 (3LO) authorization server and the gateway's identity endpoints: /authorize (a consent
page, or auto-approve), /oauth/token (code and rotating refresh tokens), accessible-resources, /me."""

from __future__ import annotations

import html
import json
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from trackli.simulator.state import SimState
from trackli.simulator.confluence import Confluence
from trackli.simulator.common import _error


class OAuthServer:
    def __init__(self, state: SimState, gate: Confluence) -> None:
        self.state, self.gate = state, gate

    async def me(self, request: Request) -> Response:
        self.state.log({"method": "GET", "path": "/me", "operation": "GET me", "query_names": []})
        principal, denied = self.gate.bearer_principal(request, "read:me")
        if denied or principal is None:
            return denied or _error(401, "Unauthorized")
        account = self.state.accounts[principal]
        return JSONResponse({"account_id": account.account_id, "email": account.email, "name": account.name,
                             "account_status": "active"})

    async def accessible_resources(self, request: Request) -> Response:
        principal, denied = self.gate.bearer_principal(request, None)
        if denied:
            return denied
        return JSONResponse(self.state.sites())

    def granted(self, requested: str) -> tuple[str, ...]:
        return tuple(s for s in requested.split() if s in self.state.knobs.enabled_scopes)

    async def authorize(self, request: Request) -> Response:
        source = request.query_params if request.method == "GET" else await request.form()
        q = {k: v for k, v in source.items() if isinstance(v, str)}
        client_id, redirect_uri, state_param = q.get("client_id"), q.get("redirect_uri", ""), q.get("state", "")
        if client_id != self.state.client_id:
            return HTMLResponse("<h1>Unknown app</h1><p>client_id is not registered.</p>", 400)
        if self.state.redirect_uris and redirect_uri not in self.state.redirect_uris:
            return HTMLResponse("<h1>Redirect URI mismatch</h1>", 400)
        if q.get("audience") != "api.atlassian.com" or q.get("response_type") != "code":
            return HTMLResponse("<h1>Bad request</h1><p>audience and response_type=code are required.</p>", 400)
        scopes = self.granted(q.get("scope", ""))
        account_id = q.get("account_id") or next(iter(self.state.accounts), None)
        if account_id is None:
            return HTMLResponse("<h1>No account</h1>", 400)
        if request.method == "POST" or self.state.knobs.auto_approve:
            if request.method == "POST" and q.get("decision") == "deny":
                return RedirectResponse(f"{redirect_uri}?{urlencode({'error': 'access_denied', 'state': state_param})}", 302)
            challenge = q.get("code_challenge")
            if challenge and q.get("code_challenge_method") != "S256":
                return HTMLResponse("<h1>Bad request</h1><p>code_challenge_method must be S256.</p>", 400)
            code = self.state.issue_code(account_id, scopes, redirect_uri, challenge or None)
            sep = "&" if "?" in redirect_uri else "?"
            return RedirectResponse(f"{redirect_uri}{sep}{urlencode({'code': code, 'state': state_param})}", 302)
        account = self.state.accounts[account_id]
        hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                         for k, v in q.items())
        items = "".join(f"<li><code>{html.escape(s)}</code></li>" for s in scopes) or "<li>(none)</li>"
        asked = [s for s in q.get("scope", "").split() if s not in scopes]
        not_enabled = (f"<p class=warn>Not enabled for this app, so not granted: {html.escape(' '.join(asked))}</p>"
                       if asked else "")
        page = f"""<!doctype html><html><head><title>Simulated Atlassian — authorize</title>
<style>body{{font-family:sans-serif;max-width:560px;margin:40px auto}}button{{padding:8px 20px;font-size:16px}}
.warn{{color:#a00}}</style></head><body>
<h1>Simulated Atlassian</h1><p>This is a local simulation, not atlassian.com.</p>
<p><b>Trackli</b> wants to access <b>{html.escape(self.state.site_name)}</b> as <b>{html.escape(account.name)}</b>:</p>
<ul>{items}</ul>{not_enabled}
<form method="post" action="/authorize">{hidden}
<button type="submit" name="decision" value="accept" id="approve">Accept</button>
<button type="submit" name="decision" value="deny">Deny</button></form></body></html>"""
        return HTMLResponse(page)

    async def token(self, request: Request) -> Response:
        try:
            body = await request.json()
        except (json.JSONDecodeError, ValueError):
            form = await request.form()
            body = dict(form)
        self.state.log({"method": "POST", "path": "/oauth/token", "operation": f"POST token:{body.get('grant_type')}",
                   "query_names": []})
        if body.get("client_id") != self.state.client_id or body.get("client_secret") != self.state.client_secret:
            return JSONResponse({"error": "invalid_client", "error_description": "Unknown client."}, 401)
        grant = body.get("grant_type")
        if grant == "authorization_code":
            verifier = body.get("code_verifier")
            issued = self.state.exchange_code(str(body.get("code", "")), body.get("redirect_uri"),
                                         verifier if isinstance(verifier, str) else None)
            if issued is None:
                return JSONResponse({"error": "invalid_grant", "error_description": "Invalid authorization code"}, 403)
            return JSONResponse(issued)
        if grant == "refresh_token":
            issued = self.state.refresh(str(body.get("refresh_token", "")))
            if issued is None:
                return JSONResponse({"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."}, 403)
            return JSONResponse(issued)
        return JSONResponse({"error": "unsupported_grant_type"}, 400)

    def routes(self) -> list[Route]:
        return [
            Route("/authorize", self.authorize, methods=["GET", "POST"]),
            Route("/oauth/token", self.token, methods=["POST"]),
            Route("/oauth/token/accessible-resources", self.accessible_resources),
            Route("/me", self.me),
        ]
