"""`ConfluenceClient`: the Confluence Cloud REST API v2 subset Trackli uses, over one `httpx.Client`.

One method per endpoint; cursor paging in one small iterator (`Paged`); retries and error
mapping in one place (`_send`). Credentials are injected: a Bearer token under the API gateway
(OAuth 3LO) or Basic email:token against the site (API token).
"""

from __future__ import annotations

import time
from typing import Any, Iterable, Iterator

import httpx

from trackli.atlassian import scopes
from trackli.atlassian.credentials import Credentials, StaticCredentials, gateway_root
from trackli.atlassian.errors import (
    AtlassianError,
    MissingScope,
    NotFoundOrNoPermission,
    ReconnectRequired,
    RemoteError,
)
from trackli.atlassian.lookups import Lookups
from trackli.atlassian.models import (
    Account,
    ConfluenceTask,
    ContentInfo,
    Enrichment,
    ProbeResult,
    RemoteStatus,
    SpaceInfo,
    _id,
    _text,
    clean,
)
from trackli.atlassian.paging import Paged
from trackli.atlassian.transport import Method, RetryPolicy, Transport, TransportStats, json_of
from trackli.atlassian.urls import inside_root, site_path
from trackli.batches import MAX_BATCH, chunks
from trackli.text import CONTROL

# The client's own names, and the names other rooms have always imported from here (their homes are now
# credentials, models, paging, lookups and urls beside this file).
__all__ = ["API", "MAX_BATCH", "Account", "ConfluenceClient", "ConfluenceTask", "ContentInfo", "Credentials",
           "Enrichment", "Lookups", "Paged", "ProbeResult", "RetryPolicy", "SpaceInfo", "StaticCredentials", "chunks",
           "gateway_root"]

API = "/wiki/api/v2"


# ---- the client ---------------------------------------------------------------------------------

class ConfluenceClient:
    def __init__(
        self,
        credentials: Credentials,
        http: httpx.Client | None = None,
        *,
        retry: RetryPolicy | None = None,
        timeout: float = 20.0,
        lookup_workers: int = 8,
        transport: Transport | None = None,
    ):
        self.credentials = credentials
        self.transport = transport or Transport(http, retry=retry, timeout=timeout)
        self.lookup_workers = lookup_workers

    @property
    def stats(self) -> TransportStats:
        return self.transport.stats

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> "ConfluenceClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- transport --

    def url(self, path: str) -> str:
        """A path of ours (`/wiki/...`) as an absolute URL under the connection's root."""
        return self.credentials.root.rstrip("/") + (path if path.startswith("/") else "/" + path)

    def follow(self, link: str) -> str:
        """A link from upstream (a next page) as a URL to request: only inside the connection's own site."""
        url = inside_root(self.credentials.root, link)
        if url is None:
            shown = link[:80] if isinstance(link, str) else type(link).__name__
            raise RemoteError(f"Atlassian sent a link outside this connection's site ({CONTROL.sub('', shown)!r}); "
                              "it was not followed and nothing was sent to it")
        return url

    def send(
        self, operation: str, method: Method, url: str, *, params: dict[str, Any] | None = None,
        json_body: Any = None, what: str = "the resource",
    ) -> httpx.Response:
        """One authenticated call: transient failures retried by the transport, a 401 refreshed once."""
        refreshed = False
        while True:
            sent: list[str] = []

            def auth() -> dict[str, str]:
                sent.append(self.credentials.authorization())
                return {"Authorization": sent[-1]}

            response = self.transport.send(method, url, params=params, json_body=json_body, header_source=auth)
            self.stats.add(points=1)  # the call's base point (reads add one per object: see get_json, Paged)
            status = response.status_code
            if status < 300:
                return response
            if status < 400:
                raise RemoteError("Atlassian answered with a redirect, which Trackli does not follow", status)
            if status == 401:
                if _is_scope_failure(response):
                    op = scopes.OPERATIONS.get(operation)
                    raise MissingScope(
                        operation, scopes.missing_for(operation, self.credentials.granted_scopes) if op else [],
                        op.label if op else None,
                    )
                if not refreshed and self.credentials.refresh_after_401(sent[-1]):
                    refreshed = True
                    continue
                if self.credentials.kind == "api_token":
                    raise ReconnectRequired("Atlassian refused the email and API token (401)")
                raise ReconnectRequired("Atlassian refused the access token even after a refresh (401)")
            if status == 404:
                raise NotFoundOrNoPermission(what)
            raise RemoteError("Atlassian refused the request", status, self.transport.excerpt(response))

    def get_json(self, operation: str, url: str, *, params: dict[str, Any] | None = None, what: str = "the resource") -> Any:
        data = json_of(self.send(operation, "GET", url, params=params, what=what), self.transport.redact)
        if isinstance(data, dict):
            self.stats.add(points=len(data["results"]) if isinstance(data.get("results"), list) else 1)
        return data

    def paged(self, operation: str, path: str, params: dict[str, Any]) -> "Paged":
        return Paged(self, operation, self.url(API + path), params)

    # -- endpoints --

    def iter_task_pages(
        self, *, assigned_to: str, status: str | None = "incomplete", limit: int = 250,
        body_format: str | None = "atlas_doc_format", created_from_ms: int | None = None,
        completed_from_ms: int | None = None,
    ) -> Iterator[list[ConfluenceTask]]:
        """Every task assigned to `assigned_to`, one list per page of results, to the last cursor.

        `created_from_ms` / `completed_from_ms` (epoch milliseconds, inclusive) ask only for tasks
        created or completed since then: an incremental poll costs a point a call plus one per task
        returned, not one per open task.
        """
        params: dict[str, Any] = {"assigned-to": assigned_to, "include-blank-tasks": "false"}
        if body_format:
            params["body-format"] = body_format
        params["limit"] = limit
        if status:
            params["status"] = status
        if created_from_ms is not None:
            params["created-at-from"] = int(created_from_ms)
        if completed_from_ms is not None:
            params["completed-at-from"] = int(completed_from_ms)
        for results in self.paged("list_tasks", "/tasks", params).prefetched():
            self.stats.add(task_pages=1)
            yield [ConfluenceTask.from_json(item) for item in results if item.get("id")]

    def completed_among(self, task_ids: Iterable[str]) -> set[str]:
        """Which of `task_ids` Confluence says are complete (250 ids a request)."""
        completed: set[str] = set()
        for batch in chunks(sorted(set(task_ids))):
            for item in self.paged("list_tasks", "/tasks", {"task-id": ",".join(batch), "status": "complete", "limit": MAX_BATCH}):
                if item.get("status") == "complete" and _id(item.get("id")) in batch:
                    completed.add(str(item["id"]))
        return completed

    def set_task_status(self, task_id: str, status: RemoteStatus) -> ConfluenceTask:
        """PUT the task's status. Idempotent, so it is retried like a read."""
        if status not in ("complete", "incomplete"):
            raise ValueError(f"status must be complete or incomplete, not {status!r}")
        response = self.send(
            "update_task", "PUT", self.url(f"{API}/tasks/{int(task_id)}"),
            json_body={"status": status}, what=f"Confluence task {task_id}",
        )
        data = json_of(response, self.transport.redact)
        if not isinstance(data, dict):
            raise RemoteError("Atlassian answered a task update with something that is not a task",
                              response.status_code, transient=True)
        return ConfluenceTask.from_json(data)

    def _content(self, operation: str, path: str, ids: Iterable[str]) -> dict[str, ContentInfo]:
        found: dict[str, ContentInfo] = {}
        for batch in chunks(sorted({str(i) for i in ids if i})):
            for item in self.paged(operation, path, {"id": ",".join(batch), "limit": MAX_BATCH}):
                links = item.get("_links")
                content_id = _id(item.get("id"))
                if content_id is None:
                    continue
                found[content_id] = ContentInfo(
                    id=content_id,
                    title=clean(item.get("title")),
                    space_id=_id(item.get("spaceId")),
                    status=_id(item.get("status")),
                    webui=site_path(links.get("webui")) if isinstance(links, dict) else None,
                )
        return found

    def get_pages(self, ids: Iterable[str]) -> dict[str, ContentInfo]:
        """Pages by id, 250 per request (current and archived; trashed ones are not returned)."""
        return self._content("list_pages", "/pages", ids)

    def get_blogposts(self, ids: Iterable[str]) -> dict[str, ContentInfo]:
        return self._content("list_blogposts", "/blogposts", ids)

    def get_spaces(self, ids: Iterable[str]) -> dict[str, SpaceInfo]:
        found: dict[str, SpaceInfo] = {}
        for batch in chunks(sorted({str(i) for i in ids if i})):
            for item in self.paged("list_spaces", "/spaces", {"ids": ",".join(batch), "limit": MAX_BATCH}):
                space_id = _id(item.get("id"))
                if space_id is not None:
                    found[space_id] = SpaceInfo(id=space_id, key=clean(item.get("key")), name=clean(item.get("name")))
        return found

    def get_users(self, account_ids: Iterable[str]) -> dict[str, str]:
        """Display names of accounts (POST /users-bulk, 250 ids a request): account id -> name. Accounts
        Atlassian does not return (deleted, hidden) are simply absent."""
        names: dict[str, str] = {}
        for batch in chunks(sorted({str(i) for i in account_ids if i})):
            response = self.send("get_users", "POST", self.url(f"{API}/users-bulk"), json_body={"accountIds": batch},
                                 what="the people's names")
            data = json_of(response, self.transport.redact)
            results = data.get("results") if isinstance(data, dict) else None
            self.stats.add(points=len(results) if isinstance(results, list) else 1)
            for item in results if isinstance(results, list) else []:
                if not isinstance(item, dict):
                    continue
                account_id = _id(item.get("accountId"))
                name = clean(item.get("displayName")) or clean(item.get("publicName"))
                if account_id is not None and account_id in batch and name:
                    names[account_id] = name
        return names

    def lookups(self) -> "Lookups":
        """An incremental look-up of pages, blog posts and spaces: feed it tasks as they arrive."""
        return Lookups(self)

    def whoami(self, api_url: str | None = None) -> Account:
        """The connected account: `/me` on the gateway (OAuth) or `/wiki/rest/api/user/current` (token)."""
        if self.credentials.kind == "oauth":
            if not api_url:
                raise ValueError("api_url is needed to ask /me for an OAuth connection")
            data = self.get_json("me", f"{api_url.rstrip('/')}/me", what="your Atlassian account")
            if not isinstance(data, dict):
                raise RemoteError("Atlassian did not say who this account is")
            return Account(_id(data.get("account_id")) or "", _text(data.get("email")), _text(data.get("name")))
        data = self.get_json("me", self.url("/wiki/rest/api/user/current"), what="your Atlassian account")
        account_id = _id(data.get("accountId")) if isinstance(data, dict) else None
        if not isinstance(data, dict) or not account_id:
            raise RemoteError("the site did not say who this account is; is the site URL a Confluence site?")
        return Account(account_id, _text(data.get("email")), _text(data.get("displayName") or data.get("publicName")))

    def cloud_id(self) -> str | None:
        """The site's cloud id (its identity, however its URL is written) from `/_edge/tenant_info`, if it says."""
        try:
            data = json_of(self.transport.send("GET", self.url("/_edge/tenant_info")), self.transport.redact)
        except AtlassianError:
            return None
        return _id(data.get("cloudId")) if isinstance(data, dict) else None

    def probe(self, account_id: str) -> list[ProbeResult]:
        """Try each API Trackli uses once: list tasks, pages and spaces; then re-send one task's own
        status (which changes nothing). The write is not tried (`ok` None) when no task is visible."""
        results: list[ProbeResult] = []
        sample: tuple[str, RemoteStatus] | None = None
        for name, operation, path, params in (
            ("tasks", "list_tasks", "/tasks", {"assigned-to": account_id, "limit": 1}),
            ("pages", "list_pages", "/pages", {"limit": 1}),
            ("spaces", "list_spaces", "/spaces", {"limit": 1}),
        ):
            started = time.perf_counter()
            try:
                response = self.send(operation, "GET", self.url(API + path), params=params)
                data = json_of(response, self.transport.redact)
            except AtlassianError as exc:
                results.append(_failed_probe(name, "GET", started, exc))
                continue
            results.append(ProbeResult(name, "GET", True, response.status_code, _ms(started), "readable"))
            found = data.get("results") if isinstance(data, dict) else None
            if name == "tasks" and isinstance(found, list) and found and isinstance(found[0], dict):
                status = found[0].get("status")
                sample = (str(found[0].get("id")), "complete" if status == "complete" else "incomplete")
        started = time.perf_counter()
        if sample is None:
            results.append(ProbeResult("write tasks", "PUT", None, None, None, "no task to try a write on"))
            return results
        try:
            self.set_task_status(*sample)
        except AtlassianError as exc:
            results.append(_failed_probe("write tasks", "PUT", started, exc))
        else:
            results.append(ProbeResult("write tasks", "PUT", True, 200, _ms(started),
                                       f"task {sample[0]} accepted its own status ({sample[1]}): nothing changed"))
        return results


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _failed_probe(name: str, method: str, started: float, exc: AtlassianError) -> ProbeResult:
    status = getattr(exc, "status", None)
    if isinstance(exc, (MissingScope, ReconnectRequired)):
        status = 401
    elif isinstance(exc, NotFoundOrNoPermission):
        status = 404
    return ProbeResult(name, method, False, status, _ms(started), str(exc))


def _is_scope_failure(response: httpx.Response) -> bool:
    if response.headers.get("X-Failure-Category", "").upper() == "FAILURE_CLIENT_SCOPE_CHECK":
        return True
    return "scope does not match" in response.text[:500].lower()


