"""`ConfluenceClient`: the Confluence Cloud REST API v2 subset Trackli uses, over one `httpx.Client`.

One method per endpoint; cursor paging in one small iterator (`Paged`); retries and error
mapping in one place (`_send`). Credentials are injected: a Bearer token under the API gateway
(OAuth 3LO) or Basic email:token against the site (API token).
"""

from __future__ import annotations

import datetime as dt
import queue
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Literal, Protocol, TypeVar

import httpx

from trackli.atlassian import scopes
from trackli.atlassian.body import title_from_body, tidy
from trackli.atlassian.errors import (
    AtlassianError,
    MissingScope,
    NotFoundOrNoPermission,
    ReconnectRequired,
    RemoteError,
)
from trackli.atlassian.transport import Method, RetryPolicy, Transport, TransportStats, excerpt, json_of

__all__ = ["API", "MAX_BATCH", "ConfluenceClient", "ConfluenceTask", "Credentials", "Enrichment", "ProbeResult",
           "RetryPolicy", "StaticCredentials", "chunks", "gateway_root"]

API = "/wiki/api/v2"
MAX_BATCH = 250
RemoteStatus = Literal["complete", "incomplete"]


class Credentials(Protocol):
    """What the client needs to authenticate; stored connections implement it in trackli.connections."""

    kind: str  # "oauth" | "api_token"
    root: str  # where /wiki/... paths hang: the gateway prefix or the site URL
    granted_scopes: str | None

    def authorization(self) -> str: ...

    def refresh_after_401(self, rejected: str) -> bool:
        """A 401 that is not a scope failure: get a fresh credential. False if impossible."""
        ...


@dataclass
class StaticCredentials:
    """Bearer or Basic credentials that never refresh (tests, the API-token connection check)."""

    kind: str
    root: str
    header: str = field(repr=False)
    granted_scopes: str | None = None

    @classmethod
    def basic(cls, site_url: str, email: str, token: str) -> "StaticCredentials":
        import base64

        raw = base64.b64encode(f"{email}:{token}".encode()).decode()
        return cls("api_token", site_url.rstrip("/"), f"Basic {raw}")

    @classmethod
    def bearer(cls, api_url: str, cloud_id: str, token: str, granted_scopes: str | None = None) -> "StaticCredentials":
        return cls("oauth", gateway_root(api_url, cloud_id), f"Bearer {token}", granted_scopes)

    def authorization(self) -> str:
        return self.header

    def refresh_after_401(self, rejected: str) -> bool:
        return False


def gateway_root(api_url: str, cloud_id: str) -> str:
    return f"{api_url.rstrip('/')}/ex/confluence/{cloud_id}"


# ---- records ------------------------------------------------------------------------------------

def parse_datetime(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def due_date_of(value: Any) -> dt.date | None:
    """Confluence due dates are whole days sent as UTC date-times: take the UTC date, never shift it."""
    moment = parse_datetime(value)
    return moment.astimezone(dt.timezone.utc).date() if moment else None


def _id(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


@dataclass(frozen=True)
class ConfluenceTask:
    id: str
    local_id: str | None
    space_id: str | None
    page_id: str | None
    blogpost_id: str | None
    status: str | None
    title: str
    due_date: dt.date | None
    assigned_to: str | None
    created_by: str | None
    completed_by: str | None
    created_at: dt.datetime | None
    updated_at: dt.datetime | None
    completed_at: dt.datetime | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ConfluenceTask":
        return cls(
            id=str(data.get("id", "")),
            local_id=_id(data.get("localId")),
            space_id=_id(data.get("spaceId")),
            page_id=_id(data.get("pageId")),
            blogpost_id=_id(data.get("blogPostId")),
            status=data.get("status") if data.get("status") in ("complete", "incomplete") else None,
            title=title_from_body(data.get("body")),
            due_date=due_date_of(data.get("dueAt")),
            assigned_to=_id(data.get("assignedTo")),
            created_by=_id(data.get("createdBy")),
            completed_by=_id(data.get("completedBy")),
            created_at=parse_datetime(data.get("createdAt")),
            updated_at=parse_datetime(data.get("updatedAt")),
            completed_at=parse_datetime(data.get("completedAt")),
        )


@dataclass(frozen=True)
class ContentInfo:
    """A page or blog post, as much as Trackli needs of it."""

    id: str
    title: str
    space_id: str | None
    status: str | None
    webui: str | None


@dataclass(frozen=True)
class SpaceInfo:
    id: str
    key: str
    name: str


@dataclass(frozen=True)
class Account:
    account_id: str
    email: str | None
    name: str | None


@dataclass
class Enrichment:
    pages: dict[str, ContentInfo] = field(default_factory=dict)
    blogposts: dict[str, ContentInfo] = field(default_factory=dict)
    spaces: dict[str, SpaceInfo] = field(default_factory=dict)


@dataclass(frozen=True)
class ProbeResult:
    """One API tried by `ConfluenceClient.probe()`. `ok` is None where nothing could be tried."""

    api: str
    method: str
    ok: bool | None
    status: int | None
    latency_ms: float | None
    detail: str


T = TypeVar("T")


def chunks(ids: Iterable[T], size: int = MAX_BATCH) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in ids:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


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
        """A site-relative path (`/wiki/...`) or an absolute URL, as an absolute URL under our root."""
        if path.startswith(("http://", "https://")):
            return path
        return self.credentials.root.rstrip("/") + (path if path.startswith("/") else "/" + path)

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
            status = response.status_code
            if status < 400:
                return response
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
            raise RemoteError("Atlassian refused the request", status, excerpt(response))

    def get_json(self, operation: str, url: str, *, params: dict[str, Any] | None = None, what: str = "the resource") -> Any:
        return json_of(self.send(operation, "GET", url, params=params, what=what))

    def paged(self, operation: str, path: str, params: dict[str, Any]) -> "Paged":
        return Paged(self, operation, self.url(API + path), params)

    # -- endpoints --

    def iter_task_pages(
        self, *, assigned_to: str, status: str | None = "incomplete", limit: int = 250,
        body_format: str = "atlas_doc_format",
    ) -> Iterator[list[ConfluenceTask]]:
        """Every task assigned to `assigned_to`, one list per page of results, to the last cursor."""
        params: dict[str, Any] = {
            "assigned-to": assigned_to,
            "include-blank-tasks": "false",
            "body-format": body_format,
            "limit": limit,
        }
        if status:
            params["status"] = status
        for results in self.paged("list_tasks", "/tasks", params).prefetched():
            self.stats.add(task_pages=1)
            yield [ConfluenceTask.from_json(item) for item in results if item.get("id")]

    def completed_among(self, task_ids: Iterable[str]) -> set[str]:
        """Which of `task_ids` Confluence says are complete (250 ids a request)."""
        completed: set[str] = set()
        for batch in chunks(sorted(set(task_ids))):
            for item in self.paged("list_tasks", "/tasks", {"task-id": ",".join(batch), "status": "complete", "limit": MAX_BATCH}):
                completed.add(str(item.get("id")))
        return completed

    def set_task_status(self, task_id: str, status: RemoteStatus) -> ConfluenceTask:
        """PUT the task's status. Idempotent, so it is retried like a read."""
        if status not in ("complete", "incomplete"):
            raise ValueError(f"status must be complete or incomplete, not {status!r}")
        response = self.send(
            "update_task", "PUT", self.url(f"{API}/tasks/{int(task_id)}"),
            json_body={"status": status}, what=f"Confluence task {task_id}",
        )
        return ConfluenceTask.from_json(json_of(response))

    def _content(self, operation: str, path: str, ids: Iterable[str]) -> dict[str, ContentInfo]:
        found: dict[str, ContentInfo] = {}
        for batch in chunks(sorted({str(i) for i in ids if i})):
            for item in self.paged(operation, path, {"id": ",".join(batch), "limit": MAX_BATCH}):
                links = item.get("_links")
                webui = links.get("webui") if isinstance(links, dict) else None
                info = ContentInfo(
                    id=str(item.get("id")),
                    title=tidy(str(item.get("title") or "")),
                    space_id=_id(item.get("spaceId")),
                    status=item.get("status"),
                    webui=webui if isinstance(webui, str) else None,
                )
                found[info.id] = info
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
                info = SpaceInfo(id=str(item.get("id")), key=str(item.get("key") or ""), name=tidy(str(item.get("name") or "")))
                found[info.id] = info
        return found

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
            return Account(str(data.get("account_id") or ""), _text(data.get("email")), _text(data.get("name")))
        data = self.get_json("me", self.url("/wiki/rest/api/user/current"), what="your Atlassian account")
        if not isinstance(data, dict) or not data.get("accountId"):
            raise RemoteError("the site did not say who this account is; is the site URL a Confluence site?")
        return Account(str(data["accountId"]), _text(data.get("email")),
                       _text(data.get("displayName") or data.get("publicName")))

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
                data = json_of(response)
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


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _is_scope_failure(response: httpx.Response) -> bool:
    if response.headers.get("X-Failure-Category", "").upper() == "FAILURE_CLIENT_SCOPE_CHECK":
        return True
    return "scope does not match" in response.text[:500].lower()


class Lookups:
    """Batches of up to 250 ids, sent concurrently as soon as a batch is full, the rest at the end.

    Fed page by page during a fetch, the look-ups overlap the task paging; the number of requests
    stays ceil(P/250) + ceil(B/250) + ceil(S/250), as if every id had been collected first.
    """

    KINDS = ("pages", "blogposts", "spaces")

    def __init__(self, client: "ConfluenceClient"):
        self.client = client
        self.pool = ThreadPoolExecutor(max_workers=client.lookup_workers, thread_name_prefix="lookups")
        self.seen: dict[str, set[str]] = {k: set() for k in self.KINDS}
        self.waiting: dict[str, list[str]] = {k: [] for k in self.KINDS}
        self.futures: list[tuple[str, Future[dict[str, Any]]]] = []
        self.fetch: dict[str, Callable[[Iterable[str]], dict[str, Any]]] = {
            "pages": client.get_pages, "blogposts": client.get_blogposts, "spaces": client.get_spaces}

    def add(self, tasks: Iterable[ConfluenceTask]) -> None:
        for task in tasks:
            for kind, value in (("pages", task.page_id), ("blogposts", task.blogpost_id), ("spaces", task.space_id)):
                if value and value not in self.seen[kind]:
                    self.seen[kind].add(value)
                    self.waiting[kind].append(value)
        for kind in self.KINDS:
            while len(self.waiting[kind]) >= MAX_BATCH:
                self._submit(kind, self.waiting[kind][:MAX_BATCH])
                del self.waiting[kind][:MAX_BATCH]

    def _submit(self, kind: str, ids: list[str]) -> None:
        self.futures.append((kind, self.pool.submit(self.fetch[kind], ids)))

    def result(self) -> Enrichment:
        for kind in self.KINDS:
            if self.waiting[kind]:
                self._submit(kind, self.waiting[kind])
                self.waiting[kind] = []
        out = Enrichment()
        try:
            for kind, future in self.futures:
                getattr(out, kind).update(future.result())
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)
        return out

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class Paged:
    """Iterate the `results` of a v2 list endpoint, following `Link: rel="next"` or `_links.next`."""

    def __init__(self, client: ConfluenceClient, operation: str, url: str, params: dict[str, Any]):
        self.client, self.operation, self.url, self.params = client, operation, url, params

    def prefetched(self, depth: int = 2) -> Iterator[list[dict[str, Any]]]:
        """`pages()` with the next request already in flight while the caller works on this one."""
        out: queue.Queue[Any] = queue.Queue(maxsize=depth)
        stop = threading.Event()
        done = object()

        def fetch() -> None:
            try:
                for page in self.pages():
                    while not stop.is_set():
                        try:
                            out.put(page, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                out.put(done)
            except BaseException as exc:  # handed to the caller
                out.put(exc)

        worker = threading.Thread(target=fetch, name="task-pages", daemon=True)
        worker.start()
        try:
            while True:
                item = out.get()
                if item is done:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            worker.join(timeout=5)

    def pages(self) -> Iterator[list[dict[str, Any]]]:
        url: str | None = self.url
        params: dict[str, Any] | None = self.params
        seen: set[str] = set()
        while url:
            response = self.client.send(self.operation, "GET", url, params=params)
            data = json_of(response)
            if not isinstance(data, dict):
                raise RemoteError("Atlassian sent an unexpected response shape", response.status_code)
            results = data.get("results")
            yield [r for r in results if isinstance(r, dict)] if isinstance(results, list) else []
            nxt = response.links.get("next", {}).get("url") or (data.get("_links") or {}).get("next")
            url = self.client.url(nxt) if nxt else None
            params = None  # the next link carries every parameter
            if url in seen:  # a server bug must not spin forever
                raise RemoteError("Atlassian returned the same next page twice")
            if url:
                seen.add(url)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for page in self.pages():
            yield from page
