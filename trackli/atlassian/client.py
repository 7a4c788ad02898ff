"""`ConfluenceClient`: the Confluence Cloud REST API v2 subset Trackli uses, over one `httpx.Client`.

One method per endpoint; cursor paging in one small iterator (`Paged`); retries and error
mapping in one place (`_send`). Credentials are injected: a Bearer token under the API gateway
(OAuth 3LO) or Basic email:token against the site (API token).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Protocol

import httpx

from trackli.atlassian import scopes
from trackli.atlassian.body import title_from_body, tidy
from trackli.atlassian.errors import (
    MissingScope,
    NotFoundOrNoPermission,
    RateLimited,
    ReconnectRequired,
    RemoteError,
)

API = "/wiki/api/v2"
MAX_BATCH = 250
RATE_LIMIT_HEADERS = (
    "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-NearLimit",
    "RateLimit-Reason", "Retry-After",
)
TAGS = re.compile(r"<[^>]+>")
SECRETISH = re.compile(r"(Bearer|Basic)\s+\S+|\b[A-Za-z0-9_\-]{40,}\b")


class Credentials(Protocol):
    """What the client needs to authenticate; implementations live in trackli.atlassian.connections."""

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


@dataclass
class RetryPolicy:
    tries: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] = field(default=lambda: random.uniform(0.7, 1.3))

    def backoff(self, attempt: int) -> float:
        return min(self.max_delay, self.base_delay * 2 ** (attempt - 1)) * self.jitter()


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    waited_s: float = 0.0
    task_pages: int = 0
    rate_limit: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **amounts: float) -> None:
        with self.lock:
            for name, amount in amounts.items():
                setattr(self, name, getattr(self, name) + amount)


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
    unresolved_pages: set[str] = field(default_factory=set)
    unresolved_blogposts: set[str] = field(default_factory=set)
    unresolved_spaces: set[str] = field(default_factory=set)


def chunks(ids: Iterable[str], size: int = MAX_BATCH) -> Iterator[list[str]]:
    batch: list[str] = []
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
    ):
        self.credentials = credentials
        self.http = http or httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)))
        self.owns_http = http is None
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.lookup_workers = lookup_workers
        self.stats = ClientStats()

    def close(self) -> None:
        if self.owns_http:
            self.http.close()

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

    def _send(
        self, operation: str, method: str, url: str, *, params: dict[str, Any] | None = None,
        json_body: Any = None, what: str = "the resource",
    ) -> httpx.Response:
        policy = self.retry
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            auth = self.credentials.authorization()
            headers = {"Authorization": auth, "Accept": "application/json"}
            try:
                response = self.http.request(method, url, params=params, json=json_body, headers=headers, timeout=self.timeout)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                self.stats.add(requests=1)
                if attempt < policy.tries:
                    self._wait(policy.backoff(attempt))
                    continue
                raise RemoteError(f"could not reach Atlassian ({exc.__class__.__name__})", transient=True) from None
            self.stats.add(requests=1)
            self._note_rate_limit(response)
            status = response.status_code
            if status < 400:
                return response
            if status == 401:
                if self._is_scope_failure(response):
                    op = scopes.OPERATIONS.get(operation)
                    raise MissingScope(
                        operation, scopes.missing_for(operation, self.credentials.granted_scopes) if op else [],
                        op.label if op else None,
                    )
                if not refreshed and self.credentials.refresh_after_401(auth):
                    refreshed = True
                    continue
                if self.credentials.kind == "api_token":
                    raise ReconnectRequired("Atlassian refused the email and API token (401)")
                raise ReconnectRequired("Atlassian refused the access token even after a refresh (401)")
            if status == 404:
                raise NotFoundOrNoPermission(what)
            if status in (429, 503):
                retry_after = _retry_after(response)
                if attempt < policy.tries:
                    wait = policy.backoff(attempt) if retry_after is None else min(retry_after, policy.max_retry_after)
                    self._wait(wait)
                    continue
                if status == 429:
                    raise RateLimited(retry_after)
                raise RemoteError("Atlassian is unavailable", status, excerpt(response), transient=True)
            if status in (500, 502, 504):
                if attempt < policy.tries:
                    self._wait(policy.backoff(attempt))
                    continue
                raise RemoteError("Atlassian kept failing", status, excerpt(response), transient=True)
            raise RemoteError("Atlassian refused the request", status, excerpt(response))

    def _wait(self, seconds: float) -> None:
        self.stats.add(retries=1, waited_s=seconds)
        self.retry.sleep(seconds)

    @staticmethod
    def _is_scope_failure(response: httpx.Response) -> bool:
        if response.headers.get("X-Failure-Category", "").upper() == "FAILURE_CLIENT_SCOPE_CHECK":
            return True
        return "scope does not match" in response.text[:500].lower()

    def _note_rate_limit(self, response: httpx.Response) -> None:
        seen = {h: response.headers[h] for h in RATE_LIMIT_HEADERS if h in response.headers}
        if seen:
            with self.stats.lock:
                self.stats.rate_limit = seen

    def _json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
            raise RemoteError("Atlassian sent a response that is not JSON", response.status_code, excerpt(response)) from None

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
            yield [ConfluenceTask.from_json(item) for item in results if isinstance(item, dict) and item.get("id")]

    def iter_tasks(self, **kwargs: Any) -> Iterator[ConfluenceTask]:
        for page in self.iter_task_pages(**kwargs):
            yield from page

    def set_task_status(self, task_id: str, status: str) -> ConfluenceTask:
        """PUT the task's status. Idempotent, so it is retried like a read."""
        if status not in ("complete", "incomplete"):
            raise ValueError(f"status must be complete or incomplete, not {status!r}")
        response = self._send(
            "update_task", "PUT", self.url(f"{API}/tasks/{int(task_id)}"),
            json_body={"status": status}, what=f"Confluence task {task_id}",
        )
        return ConfluenceTask.from_json(self._json(response))

    def _content(self, operation: str, path: str, ids: Iterable[str]) -> tuple[dict[str, ContentInfo], set[str]]:
        wanted = sorted({str(i) for i in ids if i})
        found: dict[str, ContentInfo] = {}
        for batch in chunks(wanted):
            for item in self.paged(operation, path, {"id": ",".join(batch), "limit": MAX_BATCH}):
                info = ContentInfo(
                    id=str(item.get("id")),
                    title=tidy(str(item.get("title") or "")),
                    space_id=_id(item.get("spaceId")),
                    status=item.get("status"),
                    webui=(item.get("_links") or {}).get("webui"),
                )
                found[info.id] = info
        return found, set(wanted) - set(found)

    def get_pages(self, ids: Iterable[str]) -> tuple[dict[str, ContentInfo], set[str]]:
        """Pages by id, 250 per request (current and archived; trashed ones come back unresolved)."""
        return self._content("list_pages", "/pages", ids)

    def get_blogposts(self, ids: Iterable[str]) -> tuple[dict[str, ContentInfo], set[str]]:
        return self._content("list_blogposts", "/blogposts", ids)

    def get_spaces(self, ids: Iterable[str]) -> tuple[dict[str, SpaceInfo], set[str]]:
        wanted = sorted({str(i) for i in ids if i})
        found: dict[str, SpaceInfo] = {}
        for batch in chunks(wanted):
            for item in self.paged("list_spaces", "/spaces", {"ids": ",".join(batch), "limit": MAX_BATCH}):
                info = SpaceInfo(id=str(item.get("id")), key=str(item.get("key") or ""), name=tidy(str(item.get("name") or "")))
                found[info.id] = info
        return found, set(wanted) - set(found)

    def lookups(self) -> "Lookups":
        """An incremental look-up of pages, blog posts and spaces: feed it tasks as they arrive."""
        return Lookups(self)

    def enrich(self, tasks: Iterable[ConfluenceTask]) -> Enrichment:
        """Pages, blog posts and spaces of `tasks`, looked up in one concurrent round of batches."""
        batch = self.lookups()
        batch.add(tasks)
        return batch.result()

    def whoami(self, api_url: str | None = None) -> Account:
        """The connected account: `/me` on the gateway (OAuth) or `/wiki/rest/api/user/current` (token)."""
        if self.credentials.kind == "oauth":
            if not api_url:
                raise ValueError("api_url is needed to ask /me for an OAuth connection")
            data = self._json(self._send("me", "GET", f"{api_url.rstrip('/')}/me", what="your Atlassian account"))
            return Account(str(data.get("account_id") or ""), data.get("email"), data.get("name"))
        data = self._json(self._send("me", "GET", self.url("/wiki/rest/api/user/current"), what="your Atlassian account"))
        if not isinstance(data, dict) or not data.get("accountId"):
            raise RemoteError("the site did not say who this account is; is the site URL a Confluence site?")
        return Account(str(data["accountId"]), data.get("email"), data.get("displayName") or data.get("publicName"))


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
        self.futures: list[tuple[str, Any]] = []
        self.fetch = {"pages": client.get_pages, "blogposts": client.get_blogposts, "spaces": client.get_spaces}

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
                found, missing = future.result()
                getattr(out, kind).update(found)
                getattr(out, f"unresolved_{kind}").update(missing)
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
        import queue

        out: queue.Queue = queue.Queue(maxsize=depth)
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
            response = self.client._send(self.operation, "GET", url, params=params)
            data = self.client._json(response)
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


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            from email.utils import parsedate_to_datetime

            when = parsedate_to_datetime(value)
            return max(0.0, (when - dt.datetime.now(dt.timezone.utc)).total_seconds())
        except (TypeError, ValueError):
            return None


def excerpt(response: httpx.Response, limit: int = 200) -> str:
    """A short, safe description of an error body (JSON errors, or text with tags stripped)."""
    try:
        data = response.json()
    except Exception:
        data = None
    text = ""
    if isinstance(data, dict):
        errors = data.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            text = " ".join(str(first.get(k)) for k in ("code", "title", "detail") if first.get(k))
        text = text or str(data.get("message") or data.get("error_description") or data.get("error") or "")
    if not text:
        text = tidy(TAGS.sub(" ", response.text or ""))
    text = SECRETISH.sub("[redacted]", text)
    return text[:limit]
