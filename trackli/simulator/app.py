"""The simulated Atlassian over HTTP: one port serves the auth server, the API gateway and a site.

- auth server:  /authorize, /oauth/token
- API gateway:  /oauth/token/accessible-resources, /me, /ex/confluence/{cloudId}/wiki/api/v2/... (Bearer)
- site:         /wiki/api/v2/..., /wiki/rest/api/user/current (Basic email:api_token)
- admin:        /_admin/... (knobs, upstream changes, request log)
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import datetime as dt
import html
import json
import random
import time
from typing import Any
from urllib.parse import urlencode

from email.utils import formatdate

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from trackli.simulator.state import SimState, iso

SCOPE_OF = {
    ("GET", "tasks"): "read:task:confluence",
    ("GET", "task"): "read:task:confluence",
    ("PUT", "task"): "write:task:confluence",
    ("GET", "pages"): "read:page:confluence",
    ("GET", "page"): "read:page:confluence",
    ("GET", "blogposts"): "read:page:confluence",
    ("GET", "blogpost"): "read:page:confluence",
    ("GET", "spaces"): "read:space:confluence",
    ("GET", "space"): "read:space:confluence",
}
ARRAY_PARAMS = {"task-id", "space-id", "page-id", "blogpost-id", "created-by", "assigned-to", "completed-by", "id", "ids", "status"}


class DroppedResponse(Response):
    """Starts a response, then breaks the connection: the client sees a protocol error."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1000")]})
        await send({"type": "http.response.body", "body": b'{"results": [', "more_body": True})
        raise ConnectionAbortedError("simulated dropped connection")


def _error(status: int, title: str, detail: str | None = None) -> JSONResponse:
    code = {400: "INVALID_REQUEST_PARAMETER", 404: "NOT_FOUND", 403: "PERMISSION_DENIED"}.get(status, "ERROR")
    return JSONResponse({"errors": [{"status": status, "code": code, "title": title, "detail": detail}]}, status)


def _gateway_401(scope_failure: bool) -> JSONResponse:
    if scope_failure:
        return JSONResponse({"code": 401, "message": "Unauthorized; scope does not match"}, 401,
                            headers={"X-Failure-Category": "FAILURE_CLIENT_SCOPE_CHECK"})
    return JSONResponse({"code": 401, "message": "Unauthorized"}, 401)


def _values(request: Request, name: str) -> list[str]:
    out: list[str] = []
    for raw in request.query_params.getlist(name):
        out.extend(v for v in raw.split(",") if v != "")
    return out


def _epoch_ms(request: Request, name: str) -> float | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    return int(raw) / 1000.0


def _cursor(start: int) -> str:
    return base64.urlsafe_b64encode(f"o:{start}".encode()).decode().rstrip("=")


def _uncursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        return max(0, int(raw.split(":", 1)[1]))
    except (ValueError, IndexError, binascii.Error, UnicodeDecodeError):
        raise ValueError("bad cursor") from None


def build_app(state: SimState) -> Starlette:
    rng = random.Random(state.knobs.seed)

    def paged(request: Request, items: list[Any], render, path: str) -> Response:
        try:
            limit = int(request.query_params.get("limit", "25"))
        except ValueError:
            return _error(400, "Invalid limit")
        if not 1 <= limit <= 250:
            return _error(400, "limit must be between 1 and 250")
        try:
            start = _uncursor(request.query_params.get("cursor"))
        except ValueError:
            return _error(400, "Invalid cursor")
        page = items[start:start + limit]
        request.state.objects = len(page)
        body: dict[str, Any] = {"results": [render(i) for i in page], "_links": {"base": f"{state.base_url}/wiki"}}
        headers = {}
        if start + limit < len(items):
            params = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
            params.append(("cursor", _cursor(start + limit)))
            nxt = f"/wiki/api/v2/{path}?{urlencode(params)}"
            body["_links"]["next"] = nxt
            headers["Link"] = f'<{nxt}>; rel="next"'
        return JSONResponse(body, headers=headers)

    # -- Confluence v2 (shared by gateway and site) --

    def v2(request: Request, rest: str, principal: str) -> Response:
        parts = [p for p in rest.split("/") if p]
        method = request.method
        if not parts:
            return _error(404, "Not Found")
        kind = parts[0]
        with state.lock:
            if kind == "tasks" and len(parts) == 1 and method == "GET":
                return list_tasks(request)
            if kind == "tasks" and len(parts) == 2:
                task = state.tasks.get(parts[1])
                if task is None or not parts[1].isdigit():
                    return _error(404, "Not Found")
                if method == "GET":
                    return JSONResponse(task.to_json(request.query_params.get("body-format")))
                if method == "PUT":
                    return put_task(request, task, principal)
            if kind in ("pages", "blogposts") and len(parts) == 1 and method == "GET":
                return list_content(request, "page" if kind == "pages" else "blogpost", kind)
            if kind in ("pages", "blogposts") and len(parts) == 2 and method == "GET":
                item = state.content.get(parts[1])
                want = "page" if kind == "pages" else "blogpost"
                if item is None or item.kind != want or item.status == "trashed":
                    return _error(404, "Not Found")
                return JSONResponse(content_json(item))
            if kind == "spaces" and len(parts) == 1 and method == "GET":
                ids = set(_values(request, "ids"))
                keys = set(_values(request, "keys"))
                spaces = [s for s in sorted(state.spaces.values(), key=lambda s: int(s.id))
                          if (not ids or s.id in ids) and (not keys or s.key in keys)]
                return paged(request, spaces, space_json, "spaces")
            if kind == "spaces" and len(parts) == 2 and method == "GET":
                space = state.spaces.get(parts[1])
                return JSONResponse(space_json(space)) if space else _error(404, "Not Found")
        return _error(404, "Not Found")

    def list_tasks(request: Request) -> Response:
        q = request.query_params
        status = q.get("status")
        if status not in (None, "complete", "incomplete"):
            return _error(400, "Invalid status")
        body_format = q.get("body-format")
        if body_format not in (None, "storage", "atlas_doc_format"):
            return _error(400, "Invalid body-format")
        filters = {name: set(_values(request, name)) for name in
                   ("task-id", "space-id", "page-id", "blogpost-id", "created-by", "assigned-to", "completed-by")}
        for name, values in filters.items():
            if len(values) > 250:
                return _error(400, f"{name} takes at most 250 values")
        include_blank = q.get("include-blank-tasks", "true").lower() != "false"
        ranges = {name: _epoch_ms(request, name) for name in
                  ("created-at-from", "created-at-to", "due-at-from", "due-at-to", "completed-at-from", "completed-at-to")}
        fields = {"task-id": "id", "space-id": "space_id", "page-id": "page_id", "blogpost-id": "blogpost_id",
                  "created-by": "created_by", "assigned-to": "assigned_to", "completed-by": "completed_by"}

        active = [(fields[name], values) for name, values in filters.items() if values]
        ranged = any(v is not None for v in ranges.values())

        def keep(t) -> bool:
            if status and t.status != status:
                return False
            if not include_blank and t.blank:
                return False
            for attribute, values in active:
                if getattr(t, attribute) not in values:
                    return False
            if not ranged:
                return True
            for prefix, moment in (("created-at", t.created_at), ("completed-at", t.completed_at),
                                   ("due-at", dt.datetime.combine(t.due, dt.time(), dt.timezone.utc) if t.due else None)):
                lo, hi = ranges[f"{prefix}-from"], ranges[f"{prefix}-to"]
                if (lo is not None or hi is not None) and moment is None:
                    return False
                if moment is None:
                    continue
                if lo is not None and moment.timestamp() < lo:
                    return False
                if hi is not None and moment.timestamp() > hi:
                    return False
            return True

        key = (status, include_blank, tuple(sorted((n, tuple(sorted(v))) for n, v in filters.items() if v)),
               tuple(sorted(ranges.items())), len(state.tasks))  # the size too: a test may clear the store
        with state.lock:
            items = state.listings.get(key)
            if items is None:
                if filters["task-id"]:
                    candidates = [state.tasks[i] for i in filters["task-id"] if i in state.tasks]
                elif filters["assigned-to"]:
                    candidates = [t for a in filters["assigned-to"] for t in state.by_assignee.get(a, {}).values()
                                  if state.tasks.get(t.id) is t]
                else:
                    candidates = list(state.tasks.values())
                items = sorted((t for t in candidates if keep(t)), key=lambda t: int(t.id))
                if len(state.listings) > 64:
                    state.listings.clear()
                state.listings[key] = items
        return paged(request, items, lambda t: t.to_json(body_format), "tasks")

    def put_task(request: Request, task, principal: str) -> Response:
        try:
            body = json.loads(request.state.body or b"{}")
        except json.JSONDecodeError:
            return _error(400, "Invalid JSON")
        if not isinstance(body, dict) or body.get("status") not in ("complete", "incomplete"):
            return _error(400, "status must be complete or incomplete")
        if task.editable_by is not None and principal not in task.editable_by:
            return _error(404, "Not Found")  # no permission looks exactly like not found
        state.update_task(task.id, status=body["status"], by=principal)
        return JSONResponse(task.to_json(None))

    def list_content(request: Request, kind: str, path: str) -> Response:
        ids = set(_values(request, "id"))
        if len(ids) > 250:
            return _error(400, "id takes at most 250 values")
        space_ids = set(_values(request, "space-id"))
        statuses = set(_values(request, "status")) or ({"current", "archived"} if kind == "page" else {"current"})
        items = [c for c in sorted(state.content.values(), key=lambda c: int(c.id))
                 if c.kind == kind and c.status in statuses and (not ids or c.id in ids)
                 and (not space_ids or c.space_id in space_ids)]
        return paged(request, items, content_json, path)

    def content_json(item) -> dict[str, Any]:
        return {"id": item.id, "status": item.status, "title": item.title, "spaceId": item.space_id,
                "authorId": "sim-author", "createdAt": iso(state.now_dt()),
                "_links": {"webui": state.webui(item), "editui": f"/pages/resumedraft.action?draftId={item.id}",
                           "tinyui": f"/x/{item.id}"}}

    def space_json(space) -> dict[str, Any]:
        return {"id": space.id, "key": space.key, "name": space.name, "type": "global", "status": "current",
                "_links": {"webui": f"/spaces/{space.key}"}}

    # -- auth --

    def bearer_principal(request: Request, scope: str | None) -> tuple[str | None, Response | None]:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return None, _gateway_401(False)
        found = state.bearer(header[7:])
        if found is None:
            return None, _gateway_401(False)
        account_id, scopes = found
        if scope and scope not in scopes:
            return None, _gateway_401(True)
        return account_id, None

    def basic_principal(request: Request) -> tuple[str | None, Response | None]:
        header = request.headers.get("authorization", "")
        if header.startswith("Basic "):
            try:
                email, _, token = base64.b64decode(header[6:]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                email = token = ""
            account = state.basic(email, token)
            if account is not None:
                return account.account_id, None
        return None, PlainTextResponse("Basic authentication with passwords is deprecated or credentials are invalid.",
                                       401, headers={"WWW-Authenticate": 'Basic realm="Protected"'})

    def operation_of(method: str, rest: str) -> str:
        parts = [p for p in rest.split("/") if p]
        if not parts:
            return "unknown"
        kind = parts[0]
        if len(parts) == 2:
            kind = {"tasks": "task", "pages": "page", "blogposts": "blogpost", "spaces": "space"}.get(kind, kind)
        return f"{method} {kind}"

    async def fault(request: Request, operation: str) -> Response | None:
        knobs = state.knobs
        if knobs.latency_ms:
            await asyncio.sleep(knobs.latency_ms / 1000.0)
        if knobs.fault_rate and rng.random() < knobs.fault_rate:
            kind = rng.choice(knobs.fault_kinds)
            state.counters[f"fault_{kind}"] += 1
            if kind in ("429", "503"):
                return JSONResponse({"message": "Rate limit exceeded"} if kind == "429" else {"message": "unavailable"},
                                    int(kind), headers={"Retry-After": f"{knobs.retry_after_s:g}",
                                                        "X-RateLimit-Remaining": "0", "RateLimit-Reason": "sim"})
            if kind in ("502", "504", "500"):
                return HTMLResponse("<html><body><h1>Bad gateway</h1></body></html>", int(kind))
            if kind == "timeout":
                await asyncio.sleep(knobs.timeout_s)
                return JSONResponse({"message": "late"}, 504)
            if kind == "drop":
                return DroppedResponse()
        return None

    def quota_headers(remaining: int) -> dict[str, str]:
        knobs = state.knobs
        pool = knobs.points_per_hour
        reset = dt.datetime.fromtimestamp(state.points_window(), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        headers = {"X-RateLimit-Limit": str(pool), "X-RateLimit-Remaining": str(max(0, remaining)),
                   "X-RateLimit-Reset": reset}
        if remaining < pool * knobs.near_limit_share:
            headers |= {"X-RateLimit-NearLimit": "true", "X-Beta-RateLimit-NearLimit": "true",
                        "X-Beta-RateLimit-Reason": "confluence-quota-global-based", "X-Beta-RateLimit-Reset": reset,
                        "Beta-RateLimit-Policy": f'"global-app-quota";q={pool};w=3600'}
        return headers

    def pool_spent() -> Response | None:
        """The points pool is spent: 429 with Retry-After until the window ends."""
        pool = state.knobs.points_per_hour
        if not pool:
            return None
        with state.lock:
            ends = state.points_window()
            if state.points_used < pool:
                return None
            state.counters["points_429"] += 1
        return JSONResponse({"message": "Rate limit exceeded"}, 429, headers=quota_headers(0) | {
            "Retry-After": str(max(1, int(ends - state.now()))), "RateLimit-Reason": "confluence-quota-global-based"})

    async def api(request: Request, rest: str, principal_fn, oauth: bool = False) -> Response:
        operation = operation_of(request.method, rest)
        request.state.body = await request.body()
        entry = {"method": request.method, "path": request.url.path, "query": dict(request.query_params.multi_items()),
                 "query_names": sorted(set(request.query_params.keys())), "operation": operation,
                 "started": time.monotonic()}
        state.log(entry)
        injected = await fault(request, operation)
        if injected is not None:
            entry["status"] = "dropped" if isinstance(injected, DroppedResponse) else injected.status_code
            entry["fault"] = True
            entry["finished"] = time.monotonic()
            return injected
        method, _, name = operation.partition(" ")
        principal, denied = principal_fn(request, SCOPE_OF.get((method, name)))
        if denied is not None:
            entry["status"] = denied.status_code
            return denied
        spent = pool_spent() if oauth else None
        if spent is not None:
            entry["status"] = 429
            entry["finished"] = time.monotonic()
            return spent
        response = v2(request, rest, principal)
        entry["status"] = response.status_code
        entry["finished"] = time.monotonic()
        if oauth and state.knobs.points_per_hour:  # 1 a call, plus 1 per object a read returns
            objects = getattr(request.state, "objects", 1) if method == "GET" and response.status_code == 200 else 0
            state.charge_points(1 + objects)
            response.headers.update(quota_headers(state.knobs.points_per_hour - state.points_used))
        return response

    async def gateway_v2(request: Request) -> Response:
        if request.path_params["cloud_id"] not in {s["id"] for s in state.sites()}:
            return JSONResponse({"code": 404, "message": "Site not found"}, 404)
        rest = request.path_params["rest"]
        if rest.endswith("/") and rest.strip("/"):
            return _gateway_401(True)  # the gateway answers a malformed path like a scope failure
        return await api(request, rest, bearer_principal, oauth=True)

    async def site_v2(request: Request) -> Response:
        return await api(request, request.path_params["rest"], lambda r, scope: basic_principal(r))

    async def user_current(request: Request) -> Response:
        principal, denied = basic_principal(request)
        state.log({"method": "GET", "path": request.url.path, "operation": "GET user_current", "query_names": []})
        if denied or principal is None:
            return denied or _error(401, "Unauthorized")
        account = state.accounts[principal]
        return JSONResponse({"type": "known", "accountId": account.account_id, "accountType": "atlassian",
                             "email": account.email, "publicName": account.name, "displayName": account.name})

    async def tenant_info(request: Request) -> Response:
        """The site's identity, public as on a real site."""
        return JSONResponse({"cloudId": state.cloud_id})

    async def me(request: Request) -> Response:
        state.log({"method": "GET", "path": "/me", "operation": "GET me", "query_names": []})
        principal, denied = bearer_principal(request, "read:me")
        if denied or principal is None:
            return denied or _error(401, "Unauthorized")
        account = state.accounts[principal]
        return JSONResponse({"account_id": account.account_id, "email": account.email, "name": account.name,
                             "account_status": "active"})

    async def accessible_resources(request: Request) -> Response:
        principal, denied = bearer_principal(request, None)
        if denied:
            return denied
        return JSONResponse(state.sites())

    # -- OAuth authorization server --

    def granted(requested: str) -> tuple[str, ...]:
        return tuple(s for s in requested.split() if s in state.knobs.enabled_scopes)

    async def authorize(request: Request) -> Response:
        source = request.query_params if request.method == "GET" else await request.form()
        q = {k: v for k, v in source.items() if isinstance(v, str)}
        client_id, redirect_uri, state_param = q.get("client_id"), q.get("redirect_uri", ""), q.get("state", "")
        if client_id != state.client_id:
            return HTMLResponse("<h1>Unknown app</h1><p>client_id is not registered.</p>", 400)
        if state.redirect_uris and redirect_uri not in state.redirect_uris:
            return HTMLResponse("<h1>Redirect URI mismatch</h1>", 400)
        if q.get("audience") != "api.atlassian.com" or q.get("response_type") != "code":
            return HTMLResponse("<h1>Bad request</h1><p>audience and response_type=code are required.</p>", 400)
        scopes = granted(q.get("scope", ""))
        account_id = q.get("account_id") or next(iter(state.accounts), None)
        if account_id is None:
            return HTMLResponse("<h1>No account</h1>", 400)
        if request.method == "POST" or state.knobs.auto_approve:
            if request.method == "POST" and q.get("decision") == "deny":
                return RedirectResponse(f"{redirect_uri}?{urlencode({'error': 'access_denied', 'state': state_param})}", 302)
            challenge = q.get("code_challenge")
            if challenge and q.get("code_challenge_method") != "S256":
                return HTMLResponse("<h1>Bad request</h1><p>code_challenge_method must be S256.</p>", 400)
            code = state.issue_code(account_id, scopes, redirect_uri, challenge or None)
            sep = "&" if "?" in redirect_uri else "?"
            return RedirectResponse(f"{redirect_uri}{sep}{urlencode({'code': code, 'state': state_param})}", 302)
        account = state.accounts[account_id]
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
<p><b>Trackli</b> wants to access <b>{html.escape(state.site_name)}</b> as <b>{html.escape(account.name)}</b>:</p>
<ul>{items}</ul>{not_enabled}
<form method="post" action="/authorize">{hidden}
<button type="submit" name="decision" value="accept" id="approve">Accept</button>
<button type="submit" name="decision" value="deny">Deny</button></form></body></html>"""
        return HTMLResponse(page)

    async def token(request: Request) -> Response:
        try:
            body = await request.json()
        except (json.JSONDecodeError, ValueError):
            form = await request.form()
            body = dict(form)
        state.log({"method": "POST", "path": "/oauth/token", "operation": f"POST token:{body.get('grant_type')}",
                   "query_names": []})
        if body.get("client_id") != state.client_id or body.get("client_secret") != state.client_secret:
            return JSONResponse({"error": "invalid_client", "error_description": "Unknown client."}, 401)
        grant = body.get("grant_type")
        if grant == "authorization_code":
            verifier = body.get("code_verifier")
            issued = state.exchange_code(str(body.get("code", "")), body.get("redirect_uri"),
                                         verifier if isinstance(verifier, str) else None)
            if issued is None:
                return JSONResponse({"error": "invalid_grant", "error_description": "Invalid authorization code"}, 403)
            return JSONResponse(issued)
        if grant == "refresh_token":
            issued = state.refresh(str(body.get("refresh_token", "")))
            if issued is None:
                return JSONResponse({"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."}, 403)
            return JSONResponse(issued)
        return JSONResponse({"error": "unsupported_grant_type"}, 400)

    # -- admin --

    async def admin_state(request: Request) -> Response:
        with state.lock:
            return JSONResponse({
                "cloud_id": state.cloud_id, "base_url": state.base_url, "tasks": len(state.tasks),
                "pages": sum(1 for c in state.content.values() if c.kind == "page"),
                "spaces": len(state.spaces), "counters": dict(state.counters),
                "knobs": {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(state.knobs).items()},
                "client_id": state.client_id,
            })

    async def admin_config(request: Request) -> Response:
        changes = await request.json()
        with state.lock:
            for name, value in changes.items():
                if name == "clock_offset_s":
                    state.clock_offset = float(value)
                elif hasattr(state.knobs, name):
                    setattr(state.knobs, name, tuple(value) if isinstance(value, list) else value)
                else:
                    return JSONResponse({"error": f"unknown knob {name}"}, 400)
        return await admin_state(request)

    async def admin_task(request: Request) -> Response:
        task_id = request.path_params["task_id"]
        if task_id not in state.tasks:
            return JSONResponse({"error": "no such task"}, 404)
        if request.method == "DELETE":
            state.delete_task(task_id)
            return JSONResponse({"deleted": task_id})
        if request.method == "POST":
            change = await request.json()
            kwargs: dict[str, Any] = {}
            if "status" in change:
                kwargs["status"] = change["status"]
            if "assigned_to" in change:
                kwargs["assigned_to"] = change["assigned_to"]
            if "title" in change:
                kwargs["text"] = change["title"]
            if "due" in change:
                kwargs["due"] = dt.date.fromisoformat(change["due"]) if change["due"] else None
            state.update_task(task_id, **kwargs)
        task = state.tasks[task_id]
        return JSONResponse(task.to_json(None) | {"title": task.text})

    async def admin_tasks(request: Request) -> Response:
        if request.method == "POST":  # a task written upstream: on the given page, or beside the assignee's others
            body = await request.json()
            with state.lock:
                container = state.content.get(str(body.get("container_id", "")))
                if container is None:
                    mine = sorted((t for t in state.tasks.values() if t.assigned_to == body.get("assigned_to")
                                   and t.page_id), key=lambda t: int(t.id))
                    container = state.content.get(mine[0].page_id or "") if mine else next(iter(state.content.values()), None)
                if container is None:
                    return JSONResponse({"error": "no page to put a task on"}, 400)
                task = state.add_task(str(body.get("title") or "New task"), assigned_to=body.get("assigned_to"),
                                      container=container)
            return JSONResponse(task.to_json(None) | {"title": task.text})
        with state.lock:
            rows = [t.to_json(None) | {"title": t.text} for t in sorted(state.tasks.values(), key=lambda t: int(t.id))]
        return JSONResponse(rows)

    async def admin_requests(request: Request) -> Response:
        if request.method == "POST":
            state.reset_log()
        return JSONResponse({"counters": dict(state.counters), "requests": state.api_requests()[-500:]})

    async def admin_tokens(request: Request) -> Response:
        action = request.path_params["action"]
        if action == "expire":
            state.expire_access_tokens()
        elif action == "revoke":
            state.revoke_all_refresh_tokens()
        else:
            return JSONResponse({"error": "unknown action"}, 400)
        return JSONResponse({"done": action})

    async def wiki_page(request: Request) -> Response:
        return HTMLResponse(f"<h1>Simulated Confluence</h1><p>{html.escape(request.url.path)}</p>")

    async def index(request: Request) -> Response:
        return HTMLResponse("<h1>Simulated Atlassian</h1><p>A local stand-in for Atlassian, used by Trackli's demo and tests.</p>")

    routes = [
        Route("/", index),
        Route("/authorize", authorize, methods=["GET", "POST"]),
        Route("/oauth/token", token, methods=["POST"]),
        Route("/oauth/token/accessible-resources", accessible_resources),
        Route("/me", me),
        Route("/ex/confluence/{cloud_id}/wiki/api/v2/{rest:path}", gateway_v2, methods=["GET", "PUT"]),
        Route("/wiki/api/v2/{rest:path}", site_v2, methods=["GET", "PUT"]),
        Route("/wiki/rest/api/user/current", user_current),
        Route("/_edge/tenant_info", tenant_info),
        Route("/wiki/spaces/{rest:path}", wiki_page),
        Route("/_admin/state", admin_state),
        Route("/_admin/config", admin_config, methods=["POST"]),
        Route("/_admin/tasks", admin_tasks, methods=["GET", "POST"]),
        Route("/_admin/tasks/{task_id}", admin_task, methods=["GET", "POST", "DELETE"]),
        Route("/_admin/requests", admin_requests, methods=["GET", "POST"]),
        Route("/_admin/tokens/{action}", admin_tokens, methods=["POST"]),
    ]
    from trackli.simulator.oidc import OidcProvider

    return Starlette(routes=routes + OidcProvider(state).routes(), middleware=[Middleware(SimulatedDate, state=state)])


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
