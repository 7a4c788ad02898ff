"""The sync engine: the one module the pages, the CLI and the worker call.

fetch -> enrich -> upsert the approval queue -> reconcile; queue operations; the outbox drain.

Rules (also in the README):
- A new task lands as `pending`. A pending task changed upstream gets the new values in the
  fields the person has not edited; what they edited stays theirs. Dismissed stays dismissed.
  Approved is never queued again.
- Only a fetch that completed removes or closes anything: a pending task no longer returned
  becomes `gone` with the reason; an approved card whose task was completed in Confluence moves
  to done without calling Confluence back; a card done here whose task was reopened there is
  flagged `conflict` for the person to settle.
- One running sync per connection (its `sync_runs` row is the lock); a second one answers
  "already running". A re-sync with nothing changed writes only its run record and audit entry.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from trackli import audit, board, outbox
from trackli.atlassian import connections
from trackli.atlassian.client import ConfluenceClient, ConfluenceTask, Enrichment, RetryPolicy, chunks
from trackli.atlassian.errors import AtlassianError, MissingScope, NotFoundOrNoPermission, ReconnectRequired
from trackli.context import Context
from trackli.crypto import SecretKeyError
from trackli.db import bulk_insert
from trackli.errors import NotFound, TrackliError, ValidationError
from trackli.models import (
    AtlassianConnection,
    OutboxEntry,
    PendingTask,
    Project,
    SyncRun,
    Task,
    utcnow,
)

GONE_REASON = "no longer an incomplete task assigned to you in Confluence (completed, reassigned or deleted)"
PAGE_UNAVAILABLE = "page unavailable"
EDITABLE = ("title", "due_date", "project")
MAX_ATTEMPTS = 8


@dataclass
class SyncResult:
    connection_id: int
    outcome: str  # ok | failed | already_running
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    gone: int = 0
    errors: int = 0
    requests: int = 0
    duration_s: float = 0.0
    error: str | None = None
    run_id: int | None = None
    pages_fetched: int = 0
    completed_upstream: int = 0
    conflicts: int = 0
    clipped: int = 0  # upstream values longer than Trackli keeps, cut (and counted in the audit entry)
    retries: int = 0  # requests repeated after a rate limit or a transient failure
    waited_s: float = 0.0  # time spent waiting for Retry-After and backoff

    def as_dict(self) -> dict[str, Any]:
        keys = ("connection_id", "outcome", "new", "updated", "unchanged", "gone", "requests", "duration_s", "error")
        data = asdict(self)
        return {k: data[k] for k in keys} | {"completed_upstream": self.completed_upstream, "conflicts": self.conflicts,
                                             "clipped": self.clipped, "errors": self.errors, "retries": self.retries,
                                             "waited_s": round(self.waited_s, 2)}


Progress = Callable[[int, int], None]  # (task pages fetched, tasks so far)


# ---- fetch and upsert ---------------------------------------------------------------------------

def _start_run(ctx: Context, conn: AtlassianConnection, trigger: str) -> int | None:
    """Insert the running run row; None if another sync of this connection is running."""
    now = utcnow()
    with ctx.session() as session:
        # A holder that died leaves a running row behind; past its heartbeat it no longer counts.
        stale = session.scalar(select(SyncRun.id).where(
            SyncRun.connection_id == conn.id, SyncRun.outcome == "running",
            func.coalesce(SyncRun.heartbeat_at, SyncRun.started_at) < now - dt.timedelta(seconds=ctx.settings.lease_s),
        ))
        if stale is not None:
            session.execute(update(SyncRun).where(SyncRun.id == stale).values(
                outcome="abandoned", finished_at=now, error="the process running this sync stopped"))
    try:
        with ctx.session() as session:
            run = SyncRun(connection_id=conn.id, user_id=conn.user_id, trigger=trigger, started_at=now,
                          heartbeat_at=now, outcome="running")
            session.add(run)
            session.flush()
            return run.id
    except TrackliError:  # the partial unique index: a sync of this connection is running
        return None


def _heartbeat(ctx: Context, run_id: int, pages: int) -> None:
    with ctx.session() as session:
        session.execute(update(SyncRun).where(SyncRun.id == run_id).values(heartbeat_at=utcnow(), pages_fetched=pages))


def _clip(text: str | None, limit: int) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


LIMITS = {"task_title": 500, "confluence_page_title": 500, "confluence_space_key": 255,
          "confluence_space_name": 500, "confluence_url": 2000, "confluence_page_id": 64,
          "confluence_blogpost_id": 64, "confluence_space_id": 64}


def _upstream_fields(task: ConfluenceTask, found: Enrichment, site_url: str) -> dict[str, Any]:
    container = found.pages.get(task.page_id or "") or found.blogposts.get(task.blogpost_id or "")
    space = found.spaces.get(task.space_id or "")
    title = task.title or "(untitled task)"
    return {
        "task_title": title,
        "due_date": task.due_date,
        "confluence_page_id": task.page_id,
        "confluence_blogpost_id": task.blogpost_id,
        "confluence_page_title": container.title if container else PAGE_UNAVAILABLE,
        "confluence_space_id": task.space_id,
        "confluence_space_key": space.key if space else None,
        "confluence_space_name": space.name if space else None,
        "confluence_url": f"{site_url}/wiki{container.webui}" if container and container.webui else None,
        "remote_status": task.status or "incomplete",
        "remote_updated_at": task.updated_at,
    }


UPSTREAM = ("task_title", "due_date", "confluence_page_id", "confluence_blogpost_id", "confluence_page_title",
            "confluence_space_id", "confluence_space_key", "confluence_space_name", "confluence_url", "remote_status",
            "remote_updated_at")
OWNED_BY_EDITS = {"task_title": "title", "due_date": "due_date"}  # upstream field -> the edit that claims it


def _fit(fields: dict[str, Any]) -> int:
    """Cut values longer than their column; return how many were cut."""
    cut = 0
    for name, limit in LIMITS.items():
        value = fields.get(name)
        if isinstance(value, str) and len(value) > limit:
            fields[name] = _clip(value, limit)
            cut += 1
    return cut


def _changes(current: Any, edited: Iterable[str] | None, fields: dict[str, Any]) -> dict[str, Any]:
    """Upstream values that differ from `current`, leaving out the fields the person edited."""
    edited = set(edited or ())
    return {name: value for name, value in fields.items()
            if OWNED_BY_EDITS.get(name) not in edited and getattr(current, name) != value}


def sync_connection(
    ctx: Context, connection_id: int, trigger: str = "manual", *, user_id: int | None = None,
    http: httpx.Client | None = None, retry: RetryPolicy | None = None, progress: Progress | None = None,
) -> SyncResult:
    """Fetch every incomplete task assigned to the connection's account into the approval queue."""
    started = time.monotonic()
    with ctx.session() as session:
        conn = session.get(AtlassianConnection, connection_id)
        if conn is None or (user_id is not None and conn.user_id != user_id):
            raise NotFound(f"connection {connection_id} not found")
    run_id = _start_run(ctx, conn, trigger)
    if run_id is None:
        return SyncResult(connection_id, "already_running", error="a sync of this connection is already running")
    result = SyncResult(connection_id, "ok", run_id=run_id)
    client: ConfluenceClient | None = None
    try:
        client = connections.client_for(ctx, conn, http=http, retry=retry)
        fetched: list[ConfluenceTask] = []
        lookups = client.lookups()  # page, blog-post and space look-ups overlap the task paging
        last_beat = time.monotonic()
        try:
            for page in client.iter_task_pages(assigned_to=conn.account_id or ""):
                fetched.extend(page)
                lookups.add(page)
                result.pages_fetched += 1
                if time.monotonic() - last_beat > ctx.settings.lease_s / 6:
                    _heartbeat(ctx, run_id, result.pages_fetched)
                    last_beat = time.monotonic()
                if progress:
                    progress(result.pages_fetched, len(fetched))
            enrichment = lookups.result()
        finally:
            lookups.close()
        # Duplicates across pages (an upstream edit while paging) collapse to the last seen.
        fetched = list({t.id: t for t in fetched if t.id}.values())
        # The whole fetch succeeded: from here on, missing tasks may be reconciled.
        completed = _completed_upstream(ctx, conn, {t.id for t in fetched}, client)
        _apply(ctx, conn, fetched, enrichment, completed, result)
    except (AtlassianError, SecretKeyError) as exc:
        result.outcome, result.error, result.errors = "failed", str(exc), result.errors + 1
        with ctx.session() as session:
            if isinstance(exc, ReconnectRequired):
                connections.mark(session, conn.id, "needs_reconnect", str(exc))
            elif isinstance(exc, (MissingScope, SecretKeyError)):
                connections.mark(session, conn.id, "error", str(exc))
    except BaseException as exc:  # a bug or the database going away: the run must not be recorded as ok
        result.outcome, result.error, result.errors = "failed", f"internal error: {type(exc).__name__}", result.errors + 1
        raise
    finally:
        if client:
            result.requests, result.retries, result.waited_s = client.stats.requests, client.stats.retries, client.stats.waited_s
        result.duration_s = round(time.monotonic() - started, 3)
        _finish_run(ctx, conn, result, client)
        if client:
            client.close()
    return result


def _completed_upstream(ctx: Context, conn: AtlassianConnection, incomplete_ids: set[str],
                        client: ConfluenceClient) -> set[str]:
    """Of the cards' tasks missing from the incomplete list, those Confluence says are complete.

    Asked before the reconcile transaction opens (250 ids a request), so no transaction waits on HTTP.
    """
    with ctx.session() as session:
        candidates = sorted(set(session.scalars(select(Task.confluence_task_id).where(
            Task.connection_id == conn.id, Task.confluence_task_id.isnot(None),
            func.coalesce(Task.confluence_remote_status, "") != "complete"))) - incomplete_ids)
    completed: set[str] = set()
    for batch in chunks(candidates):
        for item in client.paged("list_tasks", "/tasks", {"task-id": ",".join(batch), "status": "complete", "limit": 250}):
            completed.add(str(item.get("id")))
    return completed


def _apply(ctx: Context, conn: AtlassianConnection, fetched: list[ConfluenceTask], found: Enrichment,
           completed: set[str], result: SyncResult) -> None:
    now = utcnow()
    table = PendingTask.__table__
    with ctx.session() as session:
        # Plain rows, not ORM objects: comparing thousands of unchanged tasks must stay cheap.
        existing = {r.confluence_task_id: r for r in session.execute(
            select(PendingTask.id, PendingTask.confluence_task_id, PendingTask.status, PendingTask.edited_fields,
                   *[getattr(PendingTask, name) for name in UPSTREAM])
            .where(PendingTask.connection_id == conn.id))}
        seen: set[str] = set()
        inserts: list[dict[str, Any]] = []
        updates: dict[int, dict[str, Any]] = {}
        for task in fetched:
            if len(task.id) > 64 or not task.id.isdigit():
                result.errors += 1  # not a Confluence task id: refused, and counted in the run record
                continue
            seen.add(task.id)
            fields = _upstream_fields(task, found, conn.site_url)
            result.clipped += _fit(fields)
            row = existing.get(task.id)
            if row is None:
                inserts.append(fields | {
                    "user_id": conn.user_id, "connection_id": conn.id, "confluence_task_id": task.id,
                    "status": "pending", "edited_fields": [], "task_description": "",
                    "first_seen_at": now, "last_seen_at": now, "created_at": now, "updated_at": now,
                })
                continue
            changes = _changes(row, row.edited_fields, fields)
            if row.status == "gone":  # assigned to you again
                changes |= {"status": "pending", "gone_reason": None}
            if changes:
                updates[row.id] = changes | {"last_seen_at": now, "updated_at": now}
            else:
                result.unchanged += 1
        bulk_insert(session, table, inserts)
        for row_id, changes in updates.items():
            session.execute(update(table).where(table.c.id == row_id).values(**changes))
        result.new, result.updated = len(inserts), len(updates)

        # Reconcile: the fetch was complete, so absence means something.
        gone = [r.id for r in existing.values() if r.confluence_task_id not in seen and r.status == "pending"]
        for batch in chunks(gone, 500):
            session.execute(update(table).where(table.c.id.in_(batch)).values(
                status="gone", gone_reason=GONE_REASON, updated_at=now))
        result.gone = len(gone)
        _reconcile_cards(session, conn, seen, completed, result)
        if result.new or result.updated or result.gone or result.completed_upstream or result.conflicts:
            audit.record(session, conn.user_id, "confluence.queue_updated", {
                "connection_id": conn.id, "new": result.new, "updated": result.updated, "gone": result.gone,
                "completed_upstream": result.completed_upstream, "conflicts": result.conflicts,
                "values_cut_to_fit": result.clipped, "tasks_refused": result.errors,
            })


def _reconcile_cards(session: Session, conn: AtlassianConnection, incomplete_ids: set[str],
                     completed: set[str], result: SyncResult) -> None:
    cards = list(session.scalars(select(Task).where(Task.connection_id == conn.id, Task.confluence_task_id.isnot(None))))
    if not cards:
        return
    unsent = {e.task_id: e.desired_status for e in session.scalars(
        select(OutboxEntry).where(OutboxEntry.connection_id == conn.id, OutboxEntry.state.in_(("pending", "sending"))))}
    # Cards whose task is still incomplete upstream.
    for card in cards:
        if card.confluence_task_id not in incomplete_ids:
            continue
        if card.status == "done" and card.confluence_remote_status == "complete" and card.id not in unsent:
            card.sync_state = "conflict"
            card.sync_error = "Reopened in Confluence after you completed it here: keep it done, or reopen it here"
            card.confluence_remote_status = "incomplete"
            result.conflicts += 1
        elif card.confluence_remote_status != "incomplete" and card.id not in unsent:
            card.confluence_remote_status = "incomplete"
    # Cards whose task vanished from the incomplete list and that Confluence says are complete.
    for card in cards:
        if (card.confluence_task_id in completed and card.confluence_task_id not in incomplete_ids
                and card.confluence_remote_status != "complete" and card.id not in unsent):
            board.mark_remote_completed(session, card)
            result.completed_upstream += 1


def _finish_run(ctx: Context, conn: AtlassianConnection, result: SyncResult, client: ConfluenceClient | None) -> None:
    with ctx.session() as session:
        run = session.get(SyncRun, result.run_id)
        run.finished_at = utcnow()
        run.outcome = result.outcome
        run.new_count, run.updated_count, run.unchanged_count = result.new, result.updated, result.unchanged
        run.gone_count, run.error_count, run.requests = result.gone, result.errors, result.requests
        run.duration_s, run.error, run.pages_fetched = result.duration_s, result.error, result.pages_fetched
        run.rate_limit = dict(client.stats.rate_limit) if client and client.stats.rate_limit else None
        details = result.as_dict() | {"run_id": result.run_id, "trigger": run.trigger}
        if result.outcome == "ok":
            audit.record(session, conn.user_id, "confluence.tasks_fetched", details)
        else:
            audit.record(session, conn.user_id, "confluence.fetch_failed", details, success=False, error=result.error)


def sync_user(ctx: Context, user_id: int, trigger: str = "manual", **kwargs: Any) -> list[SyncResult]:
    """Sync each of the user's usable connections; one failing does not stop the others."""
    with ctx.session() as session:
        ids = [c.id for c in connections.list_connections(session, user_id) if c.access_token_enc]
    return [sync_connection(ctx, cid, trigger, user_id=user_id, **kwargs) for cid in ids]


def last_runs(session: Session, user_id: int, connection_id: int | None = None, limit: int = 10) -> list[SyncRun]:
    stmt = select(SyncRun).where(SyncRun.user_id == user_id)
    if connection_id is not None:
        stmt = stmt.where(SyncRun.connection_id == connection_id)
    return list(session.scalars(stmt.order_by(SyncRun.started_at.desc(), SyncRun.id.desc()).limit(limit)))


# ---- the approval queue -------------------------------------------------------------------------

@dataclass(frozen=True)
class PendingView:
    id: int
    connection_id: int
    confluence_task_id: str
    title: str
    due_date: dt.date | None
    page_title: str | None
    space_key: str | None
    space_name: str | None
    url: str | None
    state: str
    project_id: int | None
    project: str | None
    edited_fields: tuple[str, ...]
    gone_reason: str | None
    card_id: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "confluence_task_id": self.confluence_task_id, "title": self.title,
            "due_date": self.due_date.isoformat() if self.due_date else None, "page_title": self.page_title,
            "space_key": self.space_key, "space_name": self.space_name, "url": self.url, "state": self.state,
            "project": self.project,
        }


QUEUE_STATES = ("pending", "dismissed", "approved", "gone", "all")


def list_pending(
    session: Session, user_id: int, state: str = "pending", *, space_key: str | None = None,
    text: str | None = None, due_before: dt.date | None = None, stable_order: bool = False,
) -> list[PendingView]:
    """The user's queue, soonest due first (or in discovery order, which edits never reshuffle)."""
    if state not in QUEUE_STATES:
        raise ValidationError(f"unknown state {state!r}: use one of {', '.join(QUEUE_STATES)}")
    stmt = (select(PendingTask, Project.name).outerjoin(Project, Project.id == PendingTask.project_id)
            .where(PendingTask.user_id == user_id))
    if state != "all":
        stmt = stmt.where(PendingTask.status == state)
    if space_key:
        stmt = stmt.where(PendingTask.confluence_space_key == space_key)
    if text:
        stmt = stmt.where(PendingTask.task_title.ilike(f"%{text}%"))
    if due_before:
        stmt = stmt.where(PendingTask.due_date <= due_before)
    if stable_order:
        stmt = stmt.order_by(PendingTask.id)
    else:
        stmt = stmt.order_by(PendingTask.due_date.is_(None), PendingTask.due_date, PendingTask.id)
    return [
        PendingView(
            id=r.id, connection_id=r.connection_id, confluence_task_id=r.confluence_task_id, title=r.task_title,
            due_date=r.due_date, page_title=r.confluence_page_title, space_key=r.confluence_space_key,
            space_name=r.confluence_space_name, url=r.confluence_url, state=r.status, project_id=r.project_id,
            project=name, edited_fields=tuple(r.edited_fields or ()), gone_reason=r.gone_reason,
            card_id=r.trackli_task_id,
        )
        for r, name in session.execute(stmt)
    ]


def pending_count(session: Session, user_id: int) -> int:
    return session.scalar(select(func.count()).select_from(PendingTask).where(
        PendingTask.user_id == user_id, PendingTask.status == "pending")) or 0


def queue_stamp(session: Session, user_id: int) -> tuple:
    """Changes whenever the user's queue changes (for auto-refresh without needless reruns)."""
    return tuple(session.execute(select(func.count(PendingTask.id), func.max(PendingTask.updated_at))
                                 .where(PendingTask.user_id == user_id)).one())


def _owned(session: Session, user_id: int, ids: Iterable[int], *, lock: bool = False) -> list[PendingTask]:
    ids = sorted({int(i) for i in ids})
    if not ids:
        return []
    rows: list[PendingTask] = []
    for batch in chunks(ids, 500):
        stmt = select(PendingTask).where(PendingTask.user_id == user_id, PendingTask.id.in_(batch))
        if lock:
            stmt = stmt.with_for_update()
        rows.extend(session.scalars(stmt))
    missing = set(ids) - {r.id for r in rows}
    if missing:
        shown = ", ".join(str(i) for i in sorted(missing)[:10])
        raise NotFound(f"pending task{'s' if len(missing) > 1 else ''} {shown} not found")
    return rows


def edit_pending(
    session: Session, user_id: int, pending_id: int, *, title: Any = ..., due_date: Any = ..., project: Any = ...,
) -> PendingTask:
    [row] = _owned(session, user_id, [pending_id])
    edited = list(row.edited_fields or [])
    if title is not ...:
        row.task_title = board.clean_title(title)
        edited.append("title")
    if due_date is not ...:
        row.due_date = board.parse_due(due_date)
        edited.append("due_date")
    if project is not ...:
        row.project_id = board.resolve_project(session, user_id, project)
        edited.append("project")
    row.edited_fields = sorted(set(edited))
    row.updated_at = utcnow()
    audit.record(session, user_id, "queue.edited", {"pending_id": row.id, "fields": row.edited_fields}, provider="trackli")
    return row


def approve(
    session: Session, user_id: int, ids: Iterable[int] = (), *, all_pending: bool = False, project: Any = None,
) -> list[Task]:
    """Cards for the given pending tasks (or all pending), in one transaction. Approving twice makes one card."""
    board.lock_board(session, user_id)  # before reading: a concurrent approval of the same rows waits, then sees them approved
    default_project = board.resolve_project(session, user_id, project)
    if all_pending:
        rows = list(session.scalars(select(PendingTask).where(
            PendingTask.user_id == user_id, PendingTask.status == "pending").with_for_update()))
    else:
        rows = _owned(session, user_id, ids, lock=True)
    refused = [r.id for r in rows if r.status in ("dismissed", "gone")]
    if refused:
        raise ValidationError(f"pending task(s) {', '.join(map(str, refused[:10]))} are dismissed or gone: restore them first")
    cards: list[Task] = []
    position = board._next_position(session, user_id, "todo")
    now = utcnow()
    fresh: list[tuple[PendingTask, Task]] = []
    for row in rows:
        if row.status == "approved" and row.trackli_task_id:
            existing = session.get(Task, row.trackli_task_id)
            if existing is not None:
                cards.append(existing)
                continue
        card = Task(
            owner_id=user_id, project_id=row.project_id or default_project, title=row.task_title,
            description=row.task_description or "", status="todo", position=position, due_date=row.due_date,
            created_at=now, updated_at=now, source="confluence", connection_id=row.connection_id,
            confluence_task_id=row.confluence_task_id, confluence_page_id=row.confluence_page_id or row.confluence_blogpost_id,
            confluence_page_title=row.confluence_page_title, confluence_space_key=row.confluence_space_key,
            confluence_space_name=row.confluence_space_name, confluence_url=row.confluence_url,
            confluence_remote_status=row.remote_status or "incomplete", sync_state="synced",
        )
        position += 1
        session.add(card)
        fresh.append((row, card))
        cards.append(card)
    if fresh:
        session.flush()
        for row, card in fresh:
            row.status, row.trackli_task_id, row.updated_at = "approved", card.id, now
        audit.record(session, user_id, "queue.approved", {
            "count": len(fresh), "pending_ids": [r.id for r, _ in fresh][:50], "card_ids": [c.id for _, c in fresh][:50],
        }, provider="trackli")
    return cards


def dismiss(session: Session, user_id: int, ids: Iterable[int]) -> int:
    rows = _owned(session, user_id, ids, lock=True)
    changed = [r for r in rows if r.status == "pending"]
    if any(r.status == "approved" for r in rows):
        raise ValidationError("approved tasks already have a card: move or delete the card instead")
    for row in changed:
        row.status, row.updated_at = "dismissed", utcnow()
    if changed:
        audit.record(session, user_id, "queue.dismissed", {"count": len(changed), "pending_ids": [r.id for r in changed][:50]},
                     provider="trackli")
    return len(changed)


def restore(session: Session, user_id: int, ids: Iterable[int]) -> int:
    rows = _owned(session, user_id, ids, lock=True)
    changed = [r for r in rows if r.status in ("dismissed", "gone")]
    for row in changed:
        row.status, row.gone_reason, row.updated_at = "pending", None, utcnow()
    if changed:
        audit.record(session, user_id, "queue.restored", {"count": len(changed), "pending_ids": [r.id for r in changed][:50]},
                     provider="trackli")
    return len(changed)


# ---- completion outbox drain --------------------------------------------------------------------

@dataclass
class DrainResult:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    requests: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def outbox_backoff(attempts: int) -> dt.timedelta:
    return dt.timedelta(seconds=min(600, 2 ** attempts))


def _claim(ctx: Context, user_id: int | None, limit: int) -> list[int]:
    now = utcnow()
    with ctx.session() as session:
        # Entries whose sender died mid-send go back to the queue (the PUT is idempotent).
        stale = select(OutboxEntry.id).where(OutboxEntry.state == "sending", OutboxEntry.lease_until < now)
        for entry_id in session.scalars(stale).all():
            newer = session.scalar(select(OutboxEntry.id).where(
                OutboxEntry.state == "pending", OutboxEntry.task_id == select(OutboxEntry.task_id).where(
                    OutboxEntry.id == entry_id).scalar_subquery()))
            session.execute(update(OutboxEntry).where(OutboxEntry.id == entry_id, OutboxEntry.state == "sending").values(
                state="done" if newer else "pending", last_error="superseded" if newer else "resent after an interrupted send"))
    with ctx.session() as session:
        stmt = select(OutboxEntry.id).where(OutboxEntry.state == "pending", OutboxEntry.next_attempt_at <= now)
        if user_id is not None:
            stmt = stmt.where(OutboxEntry.user_id == user_id)
        candidates = list(session.scalars(stmt.order_by(OutboxEntry.id).limit(limit).with_for_update(skip_locked=True)))
        claimed = []
        for entry_id in candidates:
            res = session.execute(update(OutboxEntry).where(OutboxEntry.id == entry_id, OutboxEntry.state == "pending")
                                  .values(state="sending", lease_until=now + dt.timedelta(seconds=ctx.settings.lease_s),
                                          updated_at=now))
            if res.rowcount == 1:
                claimed.append(entry_id)
        return claimed


def _claims(ctx: Context, user_id: int | None, limit: int, chunk: int = 20):
    """Claim a few entries at a time, so a slow batch never outlives the lease of what it holds."""
    handed = 0
    while handed < limit:
        claimed = _claim(ctx, user_id, min(chunk, limit - handed))
        if not claimed:
            return
        for entry_id in claimed:
            handed += 1
            yield entry_id


def drain(
    ctx: Context, *, user_id: int | None = None, limit: int = 200, http: httpx.Client | None = None,
    retry: RetryPolicy | None = None,
) -> DrainResult:
    """Send claimed outbox entries. Several drainers at once send each change once."""
    result = DrainResult()
    clients: dict[int, ConfluenceClient | Exception] = {}
    try:
        for entry_id in _claims(ctx, user_id, limit):
            with ctx.session() as session:
                entry = session.get(OutboxEntry, entry_id)
                conn = session.get(AtlassianConnection, entry.connection_id) if entry.connection_id else None
                task_id, desired, remote_id = entry.task_id, entry.desired_status, entry.confluence_task_id
            error: Exception | None = None
            if conn is None:
                error = ReconnectRequired("the card's Atlassian connection was removed")
            else:
                client = clients.get(conn.id)
                if client is None:
                    try:
                        client = clients[conn.id] = connections.client_for(ctx, conn, http=http, retry=retry)
                    except (AtlassianError, SecretKeyError) as exc:
                        client = clients[conn.id] = exc
                if isinstance(client, Exception):
                    error = client
                else:
                    before = client.stats.requests
                    try:
                        client.set_task_status(remote_id, desired)
                    except (AtlassianError, SecretKeyError) as exc:
                        error = exc
                    result.requests += client.stats.requests - before
            _settle(ctx, entry_id, task_id, desired, error, result)
    finally:
        for client in clients.values():
            if isinstance(client, ConfluenceClient):
                client.close()
    return result


def _settle(ctx: Context, entry_id: int, task_id: int, desired: str, error: Exception | None, result: DrainResult) -> None:
    now = utcnow()
    with ctx.session() as session:
        entry = session.get(OutboxEntry, entry_id)
        card = session.get(Task, task_id)
        newer = session.scalar(select(OutboxEntry.id).where(OutboxEntry.task_id == task_id, OutboxEntry.state == "pending"))
        event = "confluence.task_completed" if desired == "complete" else "confluence.task_reopened"
        details = {"card_id": task_id, "confluence_task_id": entry.confluence_task_id, "status": desired,
                   "attempts": entry.attempts + 1}
        entry.attempts += 1
        entry.updated_at = now
        if error is None:
            entry.state, entry.sent_at, entry.last_error = "done", now, None
            if card is not None:
                card.confluence_remote_status = desired
                if newer is None:
                    card.sync_state, card.sync_error = "synced", None
            audit.record(session, entry.user_id, event, details)
            result.sent += 1
            return
        message = str(error)
        transient = isinstance(error, AtlassianError) and not error.permanent
        if transient and entry.attempts < MAX_ATTEMPTS:
            if newer is not None:  # a newer desire replaces this one; no need to retry it
                entry.state, entry.last_error = "done", "superseded"
            else:
                entry.state, entry.last_error = "pending", message
                entry.next_attempt_at = now + outbox_backoff(entry.attempts)
                if card is not None:
                    card.sync_error = f"Retrying: {message}"
            result.retrying += 1
            return
        entry.state, entry.last_error = "failed", message
        entry.failure_kind = failure_kind(error)
        if card is not None and newer is None:
            card.sync_state, card.sync_error = "failed", message
        audit.record(session, entry.user_id, "confluence.task_update_failed", details, success=False, error=message)
        result.failed += 1
        result.errors.append(message)


def failure_kind(error: Exception) -> str:
    if isinstance(error, ReconnectRequired):
        return "reconnect"
    if isinstance(error, MissingScope):
        return "scope"
    if isinstance(error, SecretKeyError):
        return "key"
    if isinstance(error, NotFoundOrNoPermission):
        return "not_found"
    return "remote"


def retry_card(session: Session, user_id: int, card_id: int) -> OutboxEntry | None:
    """Queue the card's completion sync again (after a failure, a reconnect or a conflict)."""
    card = board.get_card(session, user_id, card_id)
    if card.source != "confluence":
        raise ValidationError("only cards from Confluence sync their completion")
    card.confluence_remote_status = None  # unknown: send the card's state whatever we believed
    return outbox.enqueue(session, card, "complete" if card.status == "done" else "incomplete")


def resolve_conflict(session: Session, user_id: int, card_id: int, keep: str) -> Task:
    """`keep="here"`: Confluence gets completed again. `keep="confluence"`: the card reopens here."""
    card = board.get_card(session, user_id, card_id)
    if card.sync_state != "conflict":
        raise ValidationError("this card has no conflict to settle")
    if keep == "here":
        outbox.enqueue(session, card, "complete")
    elif keep == "confluence":
        card.confluence_remote_status = "incomplete"
        card.sync_state, card.sync_error = "synced", None
        board.move_card(session, user_id, card.id, "todo")
    else:
        raise ValidationError("keep must be 'here' or 'confluence'")
    audit.record(session, user_id, "board.conflict_resolved", {"card_id": card_id, "kept": keep}, provider="trackli")
    return card


def outbox_rows(session: Session, user_id: int, states: Iterable[str] = ("pending", "sending", "failed")) -> list[OutboxEntry]:
    return list(session.scalars(select(OutboxEntry).where(
        OutboxEntry.user_id == user_id, OutboxEntry.state.in_(tuple(states))).order_by(OutboxEntry.id)))



class TooSoon(ValidationError):
    pass


def manual_sync(ctx: Context, user_id: int, progress: Progress | None = None, **kwargs: Any) -> list[SyncResult]:
    """The Sync now button: at most once per `sync_min_interval_s` per user, then `sync_user`."""
    from trackli.models import User

    now = utcnow()
    interval = dt.timedelta(seconds=ctx.settings.sync_min_interval_s)
    with ctx.session() as session:
        user = session.get(User, user_id, with_for_update=True)
        if user.last_sync_request_at and now - user.last_sync_request_at < interval:
            wait = (user.last_sync_request_at + interval - now).total_seconds()
            raise TooSoon(f"Sync ran moments ago; try again in {max(1, round(wait))} s")
        user.last_sync_request_at = now
    return sync_user(ctx, user_id, "manual", progress=progress, **kwargs)
