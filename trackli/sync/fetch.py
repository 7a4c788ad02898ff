"""Fetching from Confluence for a sync: a full sweep (every incomplete task, names looked up while paging)
or an incremental poll (tasks created or completed since the watermark, names only for new ids)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from trackli import names
from trackli.atlassian.client import ConfluenceClient
from trackli.atlassian.models import Enrichment
from trackli.context import Context
from trackli.models import AtlassianConnection, Card
from trackli.plan import FetchedTask
from trackli.sync.runs import Progress, SyncResult

def fetch_all(client: ConfluenceClient, conn: AtlassianConnection, result: SyncResult,
           progress: Progress | None) -> tuple[dict[str, FetchedTask], Enrichment]:
    """Every page of the account's incomplete tasks, with page, blog-post and space look-ups overlapping
    the paging. Each task is kept as a compact tuple: memory grows by a few hundred bytes a task."""
    fetched: dict[str, FetchedTask] = {}  # an upstream edit while paging: the last seen wins
    shared: dict = {}
    lookups = client.lookups()
    try:
        for page in client.iter_task_pages(assigned_to=conn.account_id or ""):
            fetched.update((t.id, FetchedTask.of(t, shared)) for t in page if t.id)
            lookups.add(page)
            result.pages_fetched += 1
            if progress:
                progress(result.pages_fetched, len(fetched))
        return fetched, lookups.result()
    finally:
        lookups.close()


def fetch_changes(ctx: Context, client: ConfluenceClient, conn: AtlassianConnection, result: SyncResult
                   ) -> tuple[dict[str, FetchedTask], set[str], Enrichment, Enrichment]:
    """An incremental poll: the account's incomplete tasks created since the watermark, the ids of its
    tasks completed since then, and names for them (cached ones from the database, only the others
    looked up). Returns (fetched, completed ids, every name needed, the names looked up now)."""
    since, account = conn.watermark_ms, conn.account_id or ""

    def created() -> dict[str, FetchedTask]:
        found: dict[str, FetchedTask] = {}
        shared: dict = {}
        for page in client.iter_task_pages(assigned_to=account, created_from_ms=since):
            found.update((t.id, FetchedTask.of(t, shared)) for t in page if t.id)
            result.pages_fetched += 1
        return found

    def completions() -> set[str]:
        done: set[str] = set()
        for page in client.iter_task_pages(assigned_to=account, status="complete", body_format=None,
                                           completed_from_ms=since):
            done.update(t.id for t in page if t.id and t.status == "complete")
            result.pages_fetched += 1
        return done

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="poll") as pool:  # the two questions overlap
        asked = pool.submit(completions)
        fetched = created()
        completed = asked.result()
    wanted = {"pages": {t.page_id for t in fetched.values() if t.page_id},
              "blogposts": {t.blogpost_id for t in fetched.values() if t.blogpost_id},
              "spaces": {t.space_id for t in fetched.values() if t.space_id}}
    with ctx.session() as session:
        cached = names.known(session, conn.id, wanted)
    ask = {"pages": client.get_pages, "blogposts": client.get_blogposts, "spaces": client.get_spaces}
    looked_up, everything = Enrichment(), Enrichment()
    for kind, fetch in ask.items():
        known, missing = getattr(cached, kind), wanted[kind] - set(getattr(cached, kind))
        setattr(looked_up, kind, fetch(missing) if missing else {})
        setattr(everything, kind, known | getattr(looked_up, kind))
    return fetched, completed, everything, looked_up


def cards_to_ask_about(ctx: Context, connection_id: int, incomplete_ids: set[str]) -> list[str]:
    """The cards' tasks missing from the incomplete list and not known complete: were they completed?

    Asked before the reconcile transaction opens, so no transaction waits on HTTP.
    """
    with ctx.session() as session:
        linked = set(session.scalars(select(Card.confluence_task_id).where(
            Card.connection_id == connection_id, Card.confluence_task_id.isnot(None),
            func.coalesce(Card.confluence_remote_status, "") != "complete")))
    return sorted(t for t in linked - incomplete_ids if t)
