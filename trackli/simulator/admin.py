"""The simulator's own admin surface for tests, the demo and benchmarks: its state, knobs, upstream
changes to tasks, the request log and token revocation."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from trackli.simulator.state import SimState


class Admin:
    def __init__(self, state: SimState) -> None:
        self.state = state

    async def admin_state(self, request: Request) -> Response:
        with self.state.lock:
            return JSONResponse({
                "cloud_id": self.state.cloud_id, "base_url": self.state.base_url, "tasks": len(self.state.tasks),
                "pages": sum(1 for c in self.state.content.values() if c.kind == "page"),
                "spaces": len(self.state.spaces), "counters": dict(self.state.counters),
                "knobs": {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self.state.knobs).items()},
                "client_id": self.state.client_id,
            })

    async def admin_config(self, request: Request) -> Response:
        changes = await request.json()
        with self.state.lock:
            for name, value in changes.items():
                if name == "clock_offset_s":
                    self.state.clock_offset = float(value)
                elif hasattr(self.state.knobs, name):
                    setattr(self.state.knobs, name, tuple(value) if isinstance(value, list) else value)
                else:
                    return JSONResponse({"error": f"unknown knob {name}"}, 400)
        return await self.admin_state(request)

    async def admin_task(self, request: Request) -> Response:
        task_id = request.path_params["task_id"]
        if task_id not in self.state.tasks:
            return JSONResponse({"error": "no such task"}, 404)
        if request.method == "DELETE":
            self.state.delete_task(task_id)
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
            self.state.update_task(task_id, **kwargs)
        task = self.state.tasks[task_id]
        return JSONResponse(task.to_json(None) | {"title": task.text})

    async def admin_tasks(self, request: Request) -> Response:
        if request.method == "POST":  # a task written upstream: on the given page, or beside the assignee's others
            body = await request.json()
            with self.state.lock:
                container = self.state.content.get(str(body.get("container_id", "")))
                if container is None:
                    mine = sorted((t for t in self.state.tasks.values() if t.assigned_to == body.get("assigned_to")
                                   and t.page_id), key=lambda t: int(t.id))
                    container = self.state.content.get(mine[0].page_id or "") if mine else next(iter(self.state.content.values()), None)
                if container is None:
                    return JSONResponse({"error": "no page to put a task on"}, 400)
                task = self.state.add_task(str(body.get("title") or "New task"), assigned_to=body.get("assigned_to"),
                                      container=container)
            return JSONResponse(task.to_json(None) | {"title": task.text})
        with self.state.lock:
            rows = [t.to_json(None) | {"title": t.text} for t in sorted(self.state.tasks.values(), key=lambda t: int(t.id))]
        return JSONResponse(rows)

    async def admin_requests(self, request: Request) -> Response:
        if request.method == "POST":
            self.state.reset_log()
        return JSONResponse({"counters": dict(self.state.counters), "requests": self.state.api_requests()[-500:]})

    async def admin_tokens(self, request: Request) -> Response:
        action = request.path_params["action"]
        if action == "expire":
            self.state.expire_access_tokens()
        elif action == "revoke":
            self.state.revoke_all_refresh_tokens()
        else:
            return JSONResponse({"error": "unknown action"}, 400)
        return JSONResponse({"done": action})

    def routes(self) -> list[Route]:
        return [
            Route("/_admin/state", self.admin_state),
            Route("/_admin/config", self.admin_config, methods=["POST"]),
            Route("/_admin/tasks", self.admin_tasks, methods=["GET", "POST"]),
            Route("/_admin/tasks/{task_id}", self.admin_task, methods=["GET", "POST", "DELETE"]),
            Route("/_admin/requests", self.admin_requests, methods=["GET", "POST"]),
            Route("/_admin/tokens/{action}", self.admin_tokens, methods=["POST"]),
        ]
