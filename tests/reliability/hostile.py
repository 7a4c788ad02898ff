"""A hostile "Atlassian" on 127.0.0.1: a stdlib HTTP server whose answers a test scripts, plus a
bystander service that records whoever calls it (a server-side request forgery would land there)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import urlsplit

ACCOUNT = "hostile-account"
EMAIL = "victim@example.com"
TOKEN = "hostile-test-api-token-0123456789"

Answer = Callable[["Handler"], None]


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Server:
    routes: dict[str, Answer] = field(default_factory=dict)  # path (no query) -> answer
    seen: list[Seen] = field(default_factory=list)
    httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.httpd is not None
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> "Server":
        server = self

        class Bound(Handler):
            owner = server

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Bound)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()


class Handler(BaseHTTPRequestHandler):
    owner: Server
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else each answer waits 40 ms for a delayed ACK

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _any(self) -> None:
        path = urlsplit(self.path).path
        self.owner.seen.append(Seen(self.command, self.path, dict(self.headers.items())))
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        answer = self.owner.routes.get(path) or self.owner.routes.get("*")
        if answer is None:
            self.json(404, {"errors": [{"status": 404, "code": "NOT_FOUND", "title": "Not Found"}]})
        else:
            answer(self)

    do_GET = do_PUT = do_POST = _any

    def json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.raw(status, json.dumps(body).encode(), {"Content-Type": "application/json", **(headers or {})})

    def raw(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def chunked(self, chunks: Any, delay: float = 0.0) -> None:
        """A chunked body from an iterator of bytes (endless, if the iterator is)."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for chunk in chunks:
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.flush()
                if delay:
                    time.sleep(delay)
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass


def site(tasks: Answer) -> dict[str, Answer]:
    """What a site needs to be connected to with an API token, with `tasks` answering the task listing."""
    return {
        "/wiki/rest/api/user/current": lambda h: h.json(200, {"accountId": ACCOUNT, "email": EMAIL, "displayName": "V"}),
        "/_edge/tenant_info": lambda h: h.json(200, {"cloudId": "hostile-cloud"}),
        "/wiki/api/v2/tasks": tasks,
        "/wiki/api/v2/pages": lambda h: h.json(200, {"results": []}),
        "/wiki/api/v2/blogposts": lambda h: h.json(200, {"results": []}),
        "/wiki/api/v2/spaces": lambda h: h.json(200, {"results": []}),
    }


def task(i: int, **extra: Any) -> dict[str, Any]:
    adf = json.dumps({"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [
        {"type": "text", "text": f"Hostile task {i}"}]}]})
    data = {"id": str(i), "status": "incomplete", "spaceId": "9", "pageId": "77", "assignedTo": ACCOUNT,
            "body": {"atlas_doc_format": {"value": adf, "representation": "atlas_doc_format"}}}
    return data | extra


def page(results: list[Any], **links: Any) -> Answer:
    return lambda h: h.json(200, {"results": results, "_links": links})
