"""Names for tasks: their pages, blog posts and spaces, looked up 250 ids a request, overlapping the paging."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Callable, Iterable

from trackli.atlassian.models import ConfluenceTask, Enrichment
from trackli.batches import MAX_BATCH

if TYPE_CHECKING:
    from trackli.atlassian.client import ConfluenceClient


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
