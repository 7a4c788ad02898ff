"""The Confluence v2 subset, as the API gateway (Bearer, under /ex/confluence/{cloudId}) and the site
(Basic email:api_token) serve it: tasks (filters, cursor paging, PUT status), pages, blog posts, spaces,
the current user and the tenant's cloud id."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import html
import json
import time
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from trackli.simulator.state import SimState, iso
from trackli.simulator.faults import Faults
from trackli.simulator.common import (
    SCOPE_OF,
    DroppedResponse,
    _cursor,
    _epoch_ms,
    _error,
    _gateway_401,
    _uncursor,
    _values,
)


class Confluence:
    def __init__(self, state: SimState, faults: Faults) -> None:
        self.state, self.faults = state, faults

    def paged(self, request: Request, items: list[Any], render, path: str) -> Response:
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
        body: dict[str, Any] = {"results": [render(i) for i in page], "_links": {"base": f"{self.state.base_url}/wiki"}}
        headers = {}
        if start + limit < len(items):
            params = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
            params.append(("cursor", _cursor(start + limit)))
            nxt = f"/wiki/api/v2/{path}?{urlencode(params)}"
            body["_links"]["next"] = nxt
            headers["Link"] = f'<{nxt}>; rel="next"'
        return JSONResponse(body, headers=headers)

    def v2(self, request: Request, rest: str, principal: str) -> Response:
        parts = [p for p in rest.split("/") if p]
        method = request.method
        if not parts:
            return _error(404, "Not Found")
        kind = parts[0]
        with self.state.lock:
            if kind == "tasks" and len(parts) == 1 and method == "GET":
                return self.list_tasks(request)
            if kind == "tasks" and len(parts) == 2:
                task = self.state.tasks.get(parts[1])
                if task is None or not parts[1].isdigit():
                    return _error(404, "Not Found")
                if method == "GET":
                    return JSONResponse(task.to_json(request.query_params.get("body-format")))
                if method == "PUT":
                    return self.put_task(request, task, principal)
            if kind in ("pages", "blogposts") and len(parts) == 1 and method == "GET":
                return self.list_content(request, "page" if kind == "pages" else "blogpost", kind)
            if kind in ("pages", "blogposts") and len(parts) == 2 and method == "GET":
                item = self.state.content.get(parts[1])
                want = "page" if kind == "pages" else "blogpost"
                if item is None or item.kind != want or item.status == "trashed":
                    return _error(404, "Not Found")
                return JSONResponse(self.content_json(item))
            if kind == "users-bulk" and len(parts) == 1 and method == "POST":
                return self.users_bulk(request)
            if kind == "spaces" and len(parts) == 1 and method == "GET":
                ids = set(_values(request, "ids"))
                keys = set(_values(request, "keys"))
                spaces = [s for s in sorted(self.state.spaces.values(), key=lambda s: int(s.id))
                          if (not ids or s.id in ids) and (not keys or s.key in keys)]
                return self.paged(request, spaces, self.space_json, "spaces")
            if kind == "spaces" and len(parts) == 2 and method == "GET":
                space = self.state.spaces.get(parts[1])
                return JSONResponse(self.space_json(space)) if space else _error(404, "Not Found")
        return _error(404, "Not Found")

    def list_tasks(self, request: Request) -> Response:
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
               tuple(sorted(ranges.items())), len(self.state.tasks))  # the size too: a test may clear the store
        with self.state.lock:
            items = self.state.listings.get(key)
            if items is None:
                if filters["task-id"]:
                    candidates = [self.state.tasks[i] for i in filters["task-id"] if i in self.state.tasks]
                elif filters["assigned-to"]:
                    candidates = [t for a in filters["assigned-to"] for t in self.state.by_assignee.get(a, {}).values()
                                  if self.state.tasks.get(t.id) is t]
                else:
                    candidates = list(self.state.tasks.values())
                items = sorted((t for t in candidates if keep(t)), key=lambda t: int(t.id))
                if len(self.state.listings) > 64:
                    self.state.listings.clear()
                self.state.listings[key] = items
        return self.paged(request, items, lambda t: t.to_json(body_format), "tasks")

    def put_task(self, request: Request, task, principal: str) -> Response:
        try:
            body = json.loads(request.state.body or b"{}")
        except json.JSONDecodeError:
            return _error(400, "Invalid JSON")
        if not isinstance(body, dict) or body.get("status") not in ("complete", "incomplete"):
            return _error(400, "status must be complete or incomplete")
        if task.editable_by is not None and principal not in task.editable_by:
            return _error(404, "Not Found")  # no permission looks exactly like not found
        self.state.update_task(task.id, status=body["status"], by=principal)
        return JSONResponse(task.to_json(None))

    def list_content(self, request: Request, kind: str, path: str) -> Response:
        ids = set(_values(request, "id"))
        if len(ids) > 250:
            return _error(400, "id takes at most 250 values")
        space_ids = set(_values(request, "space-id"))
        statuses = set(_values(request, "status")) or ({"current", "archived"} if kind == "page" else {"current"})
        items = [c for c in sorted(self.state.content.values(), key=lambda c: int(c.id))
                 if c.kind == kind and c.status in statuses and (not ids or c.id in ids)
                 and (not space_ids or c.space_id in space_ids)]
        return self.paged(request, items, self.content_json, path)

    def users_bulk(self, request: Request) -> Response:
        """POST /users-bulk {"accountIds": [...]}: the known accounts among them (unknown ids are left out)."""
        try:
            body = json.loads(request.state.body or b"{}")
        except ValueError:
            return _error(400, "the body is not JSON")
        ids = body.get("accountIds") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not ids or len(ids) > 250 or not all(isinstance(i, str) for i in ids):
            return _error(400, "accountIds takes 1 to 250 account ids")
        found = [self.state.accounts[i] for i in dict.fromkeys(ids) if i in self.state.accounts]
        request.state.objects = len(found)
        return JSONResponse({"results": [{"type": "known", "accountId": a.account_id, "accountType": "atlassian",
                                          "publicName": a.name, "displayName": a.name, "email": a.email}
                                         for a in found], "_links": {}})

    def content_json(self, item) -> dict[str, Any]:
        return {"id": item.id, "status": item.status, "title": item.title, "spaceId": item.space_id,
                "authorId": "sim-author", "createdAt": iso(self.state.now_dt()),
                "_links": {"webui": self.state.webui(item), "editui": f"/pages/resumedraft.action?draftId={item.id}",
                           "tinyui": f"/x/{item.id}"}}

    def space_json(self, space) -> dict[str, Any]:
        return {"id": space.id, "key": space.key, "name": space.name, "type": "global", "status": "current",
                "_links": {"webui": f"/spaces/{space.key}"}}

    def bearer_principal(self, request: Request, scope: str | None) -> tuple[str | None, Response | None]:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return None, _gateway_401(False)
        found = self.state.bearer(header[7:])
        if found is None:
            return None, _gateway_401(False)
        account_id, scopes = found
        if scope and scope not in scopes:
            return None, _gateway_401(True)
        return account_id, None

    def basic_principal(self, request: Request) -> tuple[str | None, Response | None]:
        header = request.headers.get("authorization", "")
        if header.startswith("Basic "):
            try:
                email, _, token = base64.b64decode(header[6:]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                email = token = ""
            account = self.state.basic(email, token)
            if account is not None:
                return account.account_id, None
        return None, PlainTextResponse("Basic authentication with passwords is deprecated or credentials are invalid.",
                                       401, headers={"WWW-Authenticate": 'Basic realm="Protected"'})

    async def api(self, request: Request, rest: str, principal_fn, oauth: bool = False) -> Response:
        operation = self.faults.operation_of(request.method, rest)
        request.state.body = await request.body()
        entry = {"method": request.method, "path": request.url.path, "query": dict(request.query_params.multi_items()),
                 "query_names": sorted(set(request.query_params.keys())), "operation": operation,
                 "started": time.monotonic()}
        if request.method == "POST":  # what a look-up asked for, for tests and the admin log
            try:
                entry["body"] = json.loads(request.state.body or b"null")
            except ValueError:
                entry["body"] = None
        self.state.log(entry)
        injected = await self.faults.fault(request, operation)
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
        spent = self.faults.pool_spent() if oauth else None
        if spent is not None:
            entry["status"] = 429
            entry["finished"] = time.monotonic()
            return spent
        response = self.v2(request, rest, principal)
        entry["status"] = response.status_code
        entry["finished"] = time.monotonic()
        if oauth and self.state.knobs.points_per_hour:  # 1 a call, plus 1 per object a read returns
            objects = getattr(request.state, "objects", 1) if (method == "GET" or name == "users-bulk") and response.status_code == 200 else 0
            self.state.charge_points(1 + objects)
            response.headers.update(self.faults.quota_headers(self.state.knobs.points_per_hour - self.state.points_used))
        return response

    async def gateway_v2(self, request: Request) -> Response:
        if request.path_params["cloud_id"] not in {s["id"] for s in self.state.sites()}:
            return JSONResponse({"code": 404, "message": "Site not found"}, 404)
        rest = request.path_params["rest"]
        if rest.endswith("/") and rest.strip("/"):
            return _gateway_401(True)  # the gateway answers a malformed path like a scope failure
        return await self.api(request, rest, self.bearer_principal, oauth=True)

    async def site_v2(self, request: Request) -> Response:
        return await self.api(request, request.path_params["rest"], lambda r, scope: self.basic_principal(r))

    async def user_current(self, request: Request) -> Response:
        principal, denied = self.basic_principal(request)
        self.state.log({"method": "GET", "path": request.url.path, "operation": "GET user_current", "query_names": []})
        if denied or principal is None:
            return denied or _error(401, "Unauthorized")
        account = self.state.accounts[principal]
        return JSONResponse({"type": "known", "accountId": account.account_id, "accountType": "atlassian",
                             "email": account.email, "publicName": account.name, "displayName": account.name})

    async def tenant_info(self, request: Request) -> Response:
        """The site's identity, public as on a real site."""
        return JSONResponse({"cloudId": self.state.cloud_id})

    async def wiki_page(self, request: Request) -> Response:
        return HTMLResponse(f"<h1>Simulated Confluence</h1><p>{html.escape(request.url.path)}</p>")

    def routes(self) -> list[Route]:
        return [
            Route("/ex/confluence/{cloud_id}/wiki/api/v2/{rest:path}", self.gateway_v2, methods=["GET", "PUT", "POST"]),
            Route("/wiki/api/v2/{rest:path}", self.site_v2, methods=["GET", "PUT", "POST"]),
            Route("/wiki/rest/api/user/current", self.user_current),
            Route("/_edge/tenant_info", self.tenant_info),
            Route("/wiki/spaces/{rest:path}", self.wiki_page),
        ]
