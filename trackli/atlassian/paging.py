"""Cursor paging of v2 list endpoints in one small iterator: `Link: rel="next"` or `_links.next`, each
next link kept inside the connection's site, bounded in pages, the next request in flight while the
caller works on this one."""

from __future__ import annotations

import queue
import threading
from typing import TYPE_CHECKING, Any, Iterator

import httpx

from trackli.atlassian.errors import RemoteError
from trackli.atlassian.transport import json_of

if TYPE_CHECKING:
    from trackli.atlassian.client import ConfluenceClient

MAX_PAGES = 2000  # 500,000 results at 250 a page: far past anyone's tasks, short of forever


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
