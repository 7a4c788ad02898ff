"""Faults the simulated Atlassian injects when told to (latency, 429/503 with Retry-After, 5xx, timeouts,
dropped connections) and the 2026 points pool: its headers, and a 429 once it is spent."""

from __future__ import annotations

import asyncio
import datetime as dt
import random

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from trackli.simulator.state import SimState
from trackli.simulator.common import DroppedResponse


class Faults:
    def __init__(self, state: SimState, rng: random.Random) -> None:
        self.state, self.rng = state, rng

    def operation_of(self, method: str, rest: str) -> str:
        parts = [p for p in rest.split("/") if p]
        if not parts:
            return "unknown"
        kind = parts[0]
        if len(parts) == 2:
            kind = {"tasks": "task", "pages": "page", "blogposts": "blogpost", "spaces": "space"}.get(kind, kind)
        return f"{method} {kind}"

    async def fault(self, request: Request, operation: str) -> Response | None:
        knobs = self.state.knobs
        if knobs.latency_ms:
            await asyncio.sleep(knobs.latency_ms / 1000.0)
        if knobs.fault_rate and self.rng.random() < knobs.fault_rate:
            kind = self.rng.choice(knobs.fault_kinds)
            self.state.counters[f"fault_{kind}"] += 1
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

    def quota_headers(self, remaining: int) -> dict[str, str]:
        knobs = self.state.knobs
        pool = knobs.points_per_hour
        reset = dt.datetime.fromtimestamp(self.state.points_window(), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        headers = {"X-RateLimit-Limit": str(pool), "X-RateLimit-Remaining": str(max(0, remaining)),
                   "X-RateLimit-Reset": reset}
        if remaining < pool * knobs.near_limit_share:
            headers |= {"X-RateLimit-NearLimit": "true", "X-Beta-RateLimit-NearLimit": "true",
                        "X-Beta-RateLimit-Reason": "confluence-quota-global-based", "X-Beta-RateLimit-Reset": reset,
                        "Beta-RateLimit-Policy": f'"global-app-quota";q={pool};w=3600'}
        return headers

    def pool_spent(self) -> Response | None:
        """The points pool is spent: 429 with Retry-After until the window ends."""
        pool = self.state.knobs.points_per_hour
        if not pool:
            return None
        with self.state.lock:
            ends = self.state.points_window()
            if self.state.points_used < pool:
                return None
            self.state.counters["points_429"] += 1
        return JSONResponse({"message": "Rate limit exceeded"}, 429, headers=self.quota_headers(0) | {
            "Retry-After": str(max(1, int(ends - self.state.now()))), "RateLimit-Reason": "confluence-quota-global-based"})
