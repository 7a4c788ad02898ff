"""What every surface of the simulated Atlassian shares: the scopes each operation needs, error bodies
shaped as Atlassian's, query and cursor helpers, and a response that drops the connection."""

from __future__ import annotations

import base64
import binascii

from starlette.requests import Request
from starlette.responses import JSONResponse, Response


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
    ("POST", "users-bulk"): "read:user:confluence",
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
