"""`ConfluenceClient`: the Confluence Cloud REST API v2 subset Trackli uses, over one `httpx.Client`.

One method per endpoint; cursor paging in one small iterator (`Paged`); retries and error
mapping in one place (`_send`). Credentials are injected: a Bearer token under the API gateway
(OAuth 3LO) or Basic email:token against the site (API token).
"""

from __future__ import annotations

import datetime as dt
import posixpath
import queue
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Literal, Protocol, TypeVar
from urllib.parse import unquote, urlsplit

import httpx

from trackli.atlassian import scopes
from trackli.atlassian.body import CONTROL, title_from_body, tidy
from trackli.atlassian.errors import (
    AtlassianError,
    MissingScope,
    NotFoundOrNoPermission,
    ReconnectRequired,
    RemoteError,
)
from trackli.atlassian.transport import Method, RetryPolicy, Transport, TransportStats, json_of

__all__ = ["API", "MAX_BATCH", "ConfluenceClient", "ConfluenceTask", "Credentials", "Enrichment", "ProbeResult",
           "RetryPolicy", "StaticCredentials", "chunks", "gateway_root"]

API = "/wiki/api/v2"
MAX_BATCH = 250
MAX_PAGES = 2000  # 500,000 results at 250 a page: far past anyone's tasks, short of forever
MAX_FIELD = 4000  # longest upstream text kept from one field before Trackli cuts it to its column
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
    """An id from upstream: a string or a whole number, without control characters; anything else is no id."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    text = CONTROL.sub("", str(value)).strip()[:MAX_FIELD]
    return text or None


def clean(value: Any) -> str:
    """Upstream text as Trackli keeps it: a string, no control characters, bounded in length."""
    return tidy(value[:MAX_FIELD]) if isinstance(value, str) else ""


def site_path(value: Any) -> str | None:
    """A site-relative path from upstream (`_links.webui`), or None if it could lead anywhere else."""
    if not isinstance(value, str) or not value.startswith("/") or value.startswith("//") or len(value) > MAX_FIELD:
        return None
    if CONTROL.search(value) or any(c in value for c in "\\\t\n\r") or ".." in unquote(value).split("?")[0]:
        return None
    return value


def _port(parts: Any) -> int | None:
    try:
        return parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:  # a port that is not a number
        return -1


def inside_root(root: str, link: str) -> str | None:
    """`link` (site-relative, or absolute) as an absolute URL under `root` (same scheme, host, port and
    path prefix), or None when it would leave the connection's site."""
    root = root.rstrip("/")
    if not isinstance(link, str) or len(link) > MAX_FIELD or CONTROL.search(link) or any(c in link for c in "\\\t\n\r"):
        return None
    url = root + link if link.startswith("/") and not link.startswith("//") else link
    base, target = urlsplit(root), urlsplit(url)
    if (target.scheme, (target.hostname or "").lower(), _port(target)) != (base.scheme, (base.hostname or "").lower(), _port(base)):
        return None
    if target.username or target.password or "%2e" in target.path.lower():
        return None
    path, prefix = posixpath.normpath(unquote(target.path) or "/"), base.path.rstrip("/")
    if prefix and path != prefix and not path.startswith(prefix + "/"):
        return None
    return url


def _status(value: Any) -> RemoteStatus | None:
    if value == "complete":
        return "complete"
    if value == "incomplete":
        return "incomplete"
    return None


@dataclass(frozen=True)
class ConfluenceTask:
    id: str
    local_id: str | None
    space_id: str | None
    page_id: str | None
    blogpost_id: str | None
    status: RemoteStatus | None
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
            id=_id(data.get("id")) or "",
            local_id=_id(data.get("localId")),
            space_id=_id(data.get("spaceId")),
            page_id=_id(data.get("pageId")),
            blogpost_id=_id(data.get("blogPostId")),
            status=_status(data.get("status")),
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


def _text(value: Any) -> str | None:
    return clean(value) or None


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

    def __init__(self, client: ConfluenceClient, operation: str, url: str, params: dict[str, Any],
                 max_pages: int = MAX_PAGES):
        self.client, self.operation, self.url, self.params = client, operation, url, params
        self.max_pages = max_pages

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
        """Each page's results. A page that is not a JSON object with a list of results, a malformed
        or foreign next link, a repeated cursor or more than `max_pages` pages fail the listing."""
        url: str | None = self.url
        params: dict[str, Any] | None = self.params
        seen: set[str] = set()
        while url:
            if len(seen) >= self.max_pages:
                raise RemoteError(f"Atlassian kept sending next pages past {self.max_pages}; the listing was stopped")
            seen.add(url)
            response = self.client.send(self.operation, "GET", url, params=params)
            data = json_of(response, self.client.transport.redact)
            results = data.get("results") if isinstance(data, dict) else None
            if not isinstance(results, list):
                raise RemoteError("Atlassian sent a page that is not a list of results", response.status_code)
            self.client.stats.add(points=len(results))  # a read costs a point per object it returns
            yield [r for r in results if isinstance(r, dict)]
            nxt = _next_link(response, data)
            url = self.client.follow(nxt) if nxt else None
            params = None  # the next link carries every parameter
            if url in seen:  # a server bug must not spin forever
                raise RemoteError("Atlassian returned the same next page twice")

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for page in self.pages():
            yield from page


def _next_link(response: httpx.Response, data: dict[str, Any]) -> str | None:
    """The next page's link, from the `Link` header or `_links.next`; a malformed one is an error."""
    try:
        header = response.links.get("next", {}).get("url")
    except Exception:  # an unparsable Link header
        header = None
    if header:
        return str(header)
    links = data.get("_links")
    if links is None:
        return None
    if not isinstance(links, dict):
        raise RemoteError("Atlassian sent a page whose _links is not an object")
    nxt = links.get("next")
    if nxt is None or nxt == "":
        return None
    if not isinstance(nxt, str):
        raise RemoteError("Atlassian sent a page whose next link is not text")
    return nxt
