"""The sync engine: the one module the pages, the CLI and the worker call to fetch tasks.

fetch -> enrich -> plan (pure, trackli.plan) -> apply the plan in one transaction.

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
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator, Literal, Mapping

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from trackli import audit, board, changes, connections, names, outbox, presence, rules
from trackli.atlassian.client import ConfluenceClient
from trackli.atlassian.models import Enrichment
from trackli.batches import chunks
from trackli.atlassian.errors import AtlassianError, MissingScope, ReconnectRequired
from trackli.atlassian.transport import RetryPolicy
from trackli.context import Context
from trackli.crypto import SecretKeyError
from trackli.db import bulk_insert
from trackli.errors import ConstraintViolation, NotFound, TrackliError, UserError, ValidationError
from trackli.models import AtlassianConnection, Card, PendingTask, SyncRun, SyncTrigger, User, utcnow
from trackli.plan import GONE_REASON, UPSTREAM, FetchedTask, SyncPlan, Upstream, new_rows, plan

SyncOutcome = Literal["ok", "failed", "already_running"]
SyncKind = Literal["full", "incremental"]
log = logging.getLogger("trackli.sync")


@dataclass
class SyncResult:
    connection_id: int
    outcome: SyncOutcome
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    gone: int = 0
    errors: int = 0
    requests: int = 0
    points: int = 0  # Atlassian's points (1 a call + 1 per object a read returns)
    kind: SyncKind = "full"  # a full sweep, or an incremental poll (tasks created or completed since a watermark)
    duration_s: float = 0.0
    error: str | None = None
    run_id: int | None = None
    pages_fetched: int = 0
    completed_upstream: int = 0
    conflicts: int = 0
    clipped: int = 0  # upstream values longer than Trackli keeps, cut (and counted in the audit entry)
    retries: int = 0  # requests repeated after a rate limit or a transient failure
    waited_s: float = 0.0  # time spent waiting for Retry-After and backoff
    near_limit: bool = False  # Atlassian's rate-limit headers said its quota is near (or spent)
    routed: int = 0  # new tasks the person's triage rules routed
    clock_skew_s: float | None = None  # Atlassian's `Date` minus our clock, when too far off to trust

    def as_dict(self) -> dict[str, Any]:
        keys = ("connection_id", "outcome", "kind", "new", "updated", "unchanged", "gone", "requests", "points",
                "duration_s", "error")
        data = asdict(self)
        return {k: data[k] for k in keys} | {"completed_upstream": self.completed_upstream, "conflicts": self.conflicts,
                                             "clipped": self.clipped, "errors": self.errors, "retries": self.retries,
                                             "waited_s": round(self.waited_s, 2)}


Progress = Callable[[int, int], None]  # (task pages fetched, tasks so far)


# ---- fetch and upsert ---------------------------------------------------------------------------

def _start_run(ctx: Context, conn: AtlassianConnection, trigger: SyncTrigger) -> int | None:
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
    except ConstraintViolation as exc:
        if "uq_sync_runs_one_running_per_connection" in str(exc):
            return None  # the partial unique index: a sync of this connection is running
        raise


def _heartbeat(ctx: Context, run_id: int, pages: int, connection_id: int | None = None) -> None:
    now = utcnow()
    with ctx.session() as session:
        session.execute(update(SyncRun).where(SyncRun.id == run_id).values(heartbeat_at=now, pages_fetched=pages))
        if connection_id is not None:  # a worker's claim on the connection lasts as long as its sync is alive
            session.execute(update(AtlassianConnection).where(
                AtlassianConnection.id == connection_id, AtlassianConnection.claimed_until > now,
            ).values(claimed_until=now + dt.timedelta(seconds=ctx.settings.lease_s)))


def choose_kind(ctx: Context, conn: AtlassianConnection, trigger: SyncTrigger, now: dt.datetime,
                seen: presence.Presence = "today") -> SyncKind:
    """A scheduled sync polls incrementally between full sweeps; Sync now, `trackli sync`, the first
    sync after a (re)connect and one at least every `full_sync_every_s` (twice that for a person away
    for a day) sweep in full."""
    if trigger != "scheduled" or conn.watermark_ms is None or conn.last_full_sync_at is None:
        return "full"
    if (now - conn.last_full_sync_at).total_seconds() >= presence.sweep_every(ctx.settings, seen):
        return "full"
    return "incremental"


def sync_connection(
    ctx: Context, connection_id: int, trigger: SyncTrigger = "manual", *, user_id: int | None = None,
    http: httpx.Client | None = None, retry: RetryPolicy | None = None, progress: Progress | None = None,
    kind: SyncKind | None = None,
) -> SyncResult:
    """Bring the connection's tasks into the approval queue: a full sweep of every incomplete task
    assigned to its account, or (scheduled, between sweeps) an incremental poll of what changed."""
    started = time.monotonic()
    with ctx.session() as session:
        conn = session.get(AtlassianConnection, connection_id)
        if conn is None or (user_id is not None and conn.user_id != user_id):
            raise NotFound(f"connection {connection_id} not found")
    run_id = _start_run(ctx, conn, trigger)
    if run_id is None:
        return SyncResult(connection_id, "already_running", error="a sync of this connection is already running")
    if kind is None:
        seen = presence.of_user(ctx, conn.user_id) if trigger == "scheduled" else "live"
        kind = choose_kind(ctx, conn, trigger, utcnow(), seen)
    result = SyncResult(connection_id, "ok", run_id=run_id, kind=kind)
    client: ConfluenceClient | None = None
    try:
        client = connections.client_for(ctx, conn, http=http, retry=retry)
        # Bounded in time, waits included; every request and wait keeps the run's lease fresh.
        # A scheduled sync has less time than one a person asked for: a slow site costs its own slot, not the day.
        limit = ctx.settings.scheduled_sync_deadline_s if trigger == "scheduled" else ctx.settings.sync_deadline_s
        client.transport.deadline = time.monotonic() + limit
        client.transport.on_activity = Heartbeat(ctx, run_id, result)
        if result.kind == "full":
            fetched, enrichment = _fetch(client, conn, result, progress)
            # The whole fetch succeeded: from here on, missing tasks may be reconciled.
            completed = client.completed_among(_cards_to_ask_about(ctx, conn.id, set(fetched)))
            _apply(ctx, conn, Upstream(fetched, enrichment, conn.site_url), completed, result, names_seen=enrichment,
                   tick=_ticker(ctx, client))
        else:
            fetched, completed, enrichment, looked_up = _fetch_changes(ctx, client, conn, result)
            _apply(ctx, conn, Upstream(fetched, enrichment, conn.site_url), completed, result, complete=False,
                   names_seen=looked_up, tick=_ticker(ctx, client))
    except (AtlassianError, SecretKeyError) as exc:
        result.outcome, result.error, result.errors = "failed", str(exc), result.errors + 1
        with ctx.session() as session:
            if isinstance(exc, ReconnectRequired):
                connections.mark(session, conn.id, "needs_reconnect", str(exc))
            elif isinstance(exc, (MissingScope, SecretKeyError)):
                connections.mark(session, conn.id, "error", str(exc))
    except Exception as exc:  # a bug, or upstream data the database refused: this connection's run fails, others go on
        log.exception("sync of connection %s stopped by an unexpected error", connection_id)
        result.outcome, result.errors = "failed", result.errors + 1
        result.error = f"an unexpected error stopped this sync ({type(exc).__name__}); the details are in the server log"
    except BaseException:  # stopped (Ctrl-C, SystemExit): the run must not be recorded as ok
        result.outcome, result.error, result.errors = "failed", "the sync was interrupted", result.errors + 1
        raise
    finally:
        if client:
            result.requests, result.retries, result.waited_s = client.stats.requests, client.stats.retries, client.stats.waited_s
            result.points, result.near_limit = client.stats.points, client.stats.near_limit
        result.duration_s = round(time.monotonic() - started, 3)
        _finish_run(ctx, conn, result, client)
        if client:
            client.close()
    return result


def _fetch(client: ConfluenceClient, conn: AtlassianConnection, result: SyncResult,
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


def _fetch_changes(ctx: Context, client: ConfluenceClient, conn: AtlassianConnection, result: SyncResult
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


def _ticker(ctx: Context, client: ConfluenceClient) -> Callable[[], None]:
    """What long local work inside the apply transaction calls: the deadline, and (PostgreSQL) the
    heartbeat. On SQLite a heartbeat written beside an open transaction would take the one write lock
    that transaction needs next, so there only the deadline is checked."""
    if ctx.dialect == "postgresql":
        return client.transport.alive
    return lambda: client.transport.alive(heartbeat=False)


class Heartbeat:
    """Marks the run alive at most every lease/6 seconds, from whichever thread is sending."""

    def __init__(self, ctx: Context, run_id: int, result: SyncResult):
        self.ctx, self.run_id, self.result = ctx, run_id, result
        self.every = ctx.settings.lease_s / 6
        self.last = time.monotonic()
        self.lock = threading.Lock()

    def __call__(self) -> None:
        with self.lock:
            if time.monotonic() - self.last < self.every:
                return
            self.last = time.monotonic()
        _heartbeat(self.ctx, self.run_id, self.result.pages_fetched, self.result.connection_id)


def _cards_to_ask_about(ctx: Context, connection_id: int, incomplete_ids: set[str]) -> list[str]:
    """The cards' tasks missing from the incomplete list and not known complete: were they completed?

    Asked before the reconcile transaction opens, so no transaction waits on HTTP.
    """
    with ctx.session() as session:
        linked = set(session.scalars(select(Card.confluence_task_id).where(
            Card.connection_id == connection_id, Card.confluence_task_id.isnot(None),
            func.coalesce(Card.confluence_remote_status, "") != "complete")))
    return sorted(t for t in linked - incomplete_ids if t)


def _queue_rows(connection_id: int) -> Any:
    """The connection's queue rows as the plan reads them: plain rows, streamed in batches (a server-side
    cursor on PostgreSQL), so comparing 50,000 unchanged tasks never holds them all."""
    return (select(PendingTask.id, PendingTask.confluence_task_id, PendingTask.status, PendingTask.edited_fields,
                   *[getattr(PendingTask, name) for name in UPSTREAM])
            .where(PendingTask.connection_id == connection_id).execution_options(yield_per=2000))


def _linked_cards(connection_id: int) -> Any:
    return (select(Card.id, Card.confluence_task_id, Card.status, Card.confluence_remote_status, Card.gone_reason)
            .where(Card.connection_id == connection_id, Card.confluence_task_id.isnot(None))
            .execution_options(yield_per=2000))


def dry_run(ctx: Context, connection_id: int, *, user_id: int | None = None, http: httpx.Client | None = None,
            retry: RetryPolicy | None = None) -> dict[str, Any]:
    """What a full sweep would do now — tasks new, changed and gone, cards to Done, conflicts — from a
    real fetch and the pure plan, writing nothing (no run, no audit entry, no row; only a due OAuth
    token refresh, which any request needs)."""
    with ctx.session() as session:
        conn = session.get(AtlassianConnection, connection_id)
        if conn is None or (user_id is not None and conn.user_id != user_id):
            raise NotFound(f"connection {connection_id} not found")
    result = SyncResult(connection_id, "ok", kind="full")
    with connections.client_for(ctx, conn, http=http, retry=retry) as client:
        client.transport.deadline = time.monotonic() + ctx.settings.sync_deadline_s
        fetched, enrichment = _fetch(client, conn, result, None)
        completed = client.completed_among(_cards_to_ask_about(ctx, conn.id, set(fetched)))
        with ctx.session() as session:
            would = plan(session.execute(_queue_rows(conn.id)), Upstream(fetched, enrichment, conn.site_url),
                         session.execute(_linked_cards(conn.id)), completed, outbox.unsent_card_ids(session, conn.id))
            session.rollback()  # read only: nothing to keep
        stats = client.stats
    return {"connection_id": connection_id, "site": conn.site_name or conn.site_url, "fetched": len(fetched),
            "new": len(would.new), "changed": len(would.changed), "unchanged": would.unchanged,
            "gone": len(would.gone), "cards_to_done": len(would.completed_upstream), "conflicts": len(would.conflicts),
            "cards_reopened_upstream": len(would.remote_incomplete), "cards_gone": len(would.cards_gone),
            "cards_back": len(would.cards_back), "requests": stats.requests, "points": stats.points}


def _apply(ctx: Context, conn: AtlassianConnection, fetched: Mapping[str, dict[str, Any]], completed: set[str],
           result: SyncResult, *, complete: bool = True, names_seen: Enrichment | None = None,
           tick: Callable[[], None] | None = None) -> None:
    """Plan against what the database holds now, and carry the plan out in one transaction.

    complete=False (an incremental poll): only the rows and cards of the tasks it returned are read
    and planned, and nothing is marked gone."""
    now = utcnow()
    with ctx.session() as session:
        # Plain rows, not ORM objects, streamed in batches (a server-side cursor on PostgreSQL): comparing
        # 50,000 unchanged tasks stays cheap and never holds them all.
        queue_rows, linked = _queue_rows(conn.id), _linked_cards(conn.id)
        asked = sorted(set(fetched) | completed) if not complete else []

        def read(stmt: Any, column: Any) -> Iterator[Any]:
            if complete:
                yield from session.execute(stmt)
            else:  # an incremental poll: only the rows of the tasks it returned
                for batch in chunks(asked, 1000):
                    yield from session.execute(stmt.where(column.in_(batch)))

        todo = plan(read(queue_rows, PendingTask.confluence_task_id), fetched,
                    read(linked, Card.confluence_task_id),  # read after the queue rows: one stream at a time
                    completed, outbox.unsent_card_ids(session, conn.id), complete=complete)
        if todo.touches_anything or todo.remote_incomplete:  # bulk statements: say so for the open tabs
            changes.touch(session, conn.user_id, "queue", "board")

        # The person's triage rules route tasks as they first enter the queue: the rows are written routed.
        incoming = rules.Incoming()
        if todo.new and rules.any_enabled(session, conn.user_id):  # each new row's fields computed once, then
            fetched = {t: fetched[t] for t in todo.new}  # routed and written (only the new ones are needed below)
            incoming = rules.route_incoming(session, conn.user_id, fetched, tick=tick)
        unrouted = {"status": "pending", "project_id": None, "rule_id": None, "rule_name": None, "snoozed_until": None}
        for rows in new_rows(todo, fetched, 2000):
            bulk_insert(session, PendingTask.__table__, [row | {
                "user_id": conn.user_id, "connection_id": conn.id, "edited_fields": [],
                "task_description": "", "first_seen_at": now, "last_seen_at": now, "created_at": now, "updated_at": now,
            } | unrouted | incoming.marks.get(row["confluence_task_id"], {}) for row in rows])
        if incoming.rules:
            rules.finish_incoming(session, conn.user_id, conn.id, incoming)
            result.routed = incoming.count
        plain = {"synchronize_session": False}  # no ORM objects of these rows are loaded
        by_columns: dict[frozenset[str], list[dict[str, Any]]] = {}  # one executemany per set of changed columns
        for row_id, changed in todo.changed.items():
            by_columns.setdefault(frozenset(changed), []).append({"id": row_id, **changed, "last_seen_at": now,
                                                                  "updated_at": now})
        for params in by_columns.values():
            for some in chunks(params, 1000):
                session.execute(update(PendingTask), some, execution_options=plain)
        for batch in chunks(todo.gone, 500):
            session.execute(update(PendingTask).where(PendingTask.id.in_(batch)).execution_options(**plain).values(
                status="gone", gone_reason=GONE_REASON, updated_at=now))
        _apply_to_cards(session, todo)
        if names_seen is not None:
            (names.replace if complete else names.add)(session, conn.id, names_seen, now)
        result.new, result.updated, result.unchanged, result.gone = len(todo.new), len(todo.changed), todo.unchanged, len(todo.gone)
        result.errors += todo.refused
        result.clipped += todo.clipped
        result.conflicts, result.completed_upstream = len(todo.conflicts), len(todo.completed_upstream)
        if todo.touches_anything:
            audit.record(session, conn.user_id, "confluence.queue_updated", {
                "connection_id": conn.id, "new": result.new, "updated": result.updated, "gone": result.gone,
                "completed_upstream": result.completed_upstream, "conflicts": result.conflicts,
                "cards_gone": len(todo.cards_gone), "cards_back": len(todo.cards_back),
                "values_cut_to_fit": result.clipped, "tasks_refused": todo.refused,
            })


CARD_GONE = "no longer assigned to you in Confluence (deleted there, or reassigned)"
CONFLICT = "Reopened in Confluence after you completed it here: keep it done, or reopen it here"


def _apply_to_cards(session: Session, todo: SyncPlan) -> None:
    for batch in chunks(todo.remote_incomplete, 500):
        session.execute(update(Card).where(Card.id.in_(batch)).values(confluence_remote_status="incomplete"))
    for batch in chunks(todo.conflicts, 500):
        session.execute(update(Card).where(Card.id.in_(batch)).values(
            sync_state="conflict", sync_error=CONFLICT, confluence_remote_status="incomplete"))
    for card_id in todo.completed_upstream:
        board.mark_remote_completed(session, session.get_one(Card, card_id))
    for batch in chunks(todo.cards_gone, 500):
        session.execute(update(Card).where(Card.id.in_(batch)).values(gone_reason=CARD_GONE))
    for batch in chunks(todo.cards_back, 500):
        session.execute(update(Card).where(Card.id.in_(batch)).values(gone_reason=None))


def _finish_run(ctx: Context, conn: AtlassianConnection, result: SyncResult, client: ConfluenceClient | None) -> None:
    with ctx.session() as session:
        run = session.get_one(SyncRun, result.run_id)
        run.finished_at = utcnow()
        run.outcome = result.outcome if result.outcome != "already_running" else "failed"
        run.new_count, run.updated_count, run.unchanged_count = result.new, result.updated, result.unchanged
        run.gone_count, run.error_count, run.requests = result.gone, result.errors, result.requests
        run.points, run.kind = result.points, result.kind
        run.duration_s, run.error, run.pages_fetched = result.duration_s, result.error, result.pages_fetched
        run.rate_limit = dict(client.stats.rate_limit) if client and client.stats.rate_limit else None
        if result.near_limit:
            run.rate_limit = (run.rate_limit or {}) | {NEAR_LIMIT: "true"}
        if result.outcome == "ok" and client:
            _advance(session, ctx, conn.id, result, client.stats.server_date, run.finished_at)
        details = result.as_dict() | {"run_id": result.run_id, "trigger": run.trigger}
        if result.outcome == "ok":
            audit.record(session, conn.user_id, "confluence.tasks_fetched", details)
        else:
            audit.record(session, conn.user_id, "confluence.fetch_failed", details, success=False, error=result.error)


CLOCK_TOLERANCE_S = 300.0  # an upstream `Date` further ahead of our clock than this is not trusted for the watermark
NEAR_LIMIT = "near_limit"  # kept beside a run's rate-limit headers when any of them said the quota is near


def _advance(session: Session, ctx: Context, connection_id: int, result: SyncResult,
             server_date: dt.datetime | None, now: dt.datetime) -> None:
    """After a successful sync: the next poll asks from this one's Atlassian time, less the margin (the
    local clock is never used: it may be off); a full sweep is remembered as the last one. Without a
    readable `Date` the watermark stays where it was (after a sweep without one: the next sync sweeps)."""
    values: dict[str, Any] = {}
    if result.kind == "full":
        values["last_full_sync_at"] = now
    trusted = server_date
    skew = (server_date - now).total_seconds() if server_date is not None else 0.0
    if abs(skew) > CLOCK_TOLERANCE_S:  # Diagnostics says how far off Atlassian's clock was
        result.clock_skew_s = round(skew, 1)
        session.execute(update(SyncRun).where(SyncRun.id == result.run_id).values(clock_skew_s=result.clock_skew_s))
    if skew > CLOCK_TOLERANCE_S:
        # A future `Date` would skip the tasks created meanwhile until the next sweep: the watermark stays.
        # (A past one is safe, it only asks for more: Atlassian stamps `createdAt` with that same clock.)
        trusted = None
    if trusted is not None:
        values["watermark_ms"] = int(trusted.timestamp() * 1000) - int(ctx.settings.watermark_margin_s * 1000)
    elif result.kind == "full" and server_date is None:
        values["watermark_ms"] = None
    # A plain UPDATE: scheduling state is not a change an open tab needs to redraw for.
    session.execute(update(AtlassianConnection).where(AtlassianConnection.id == connection_id).values(**values))


def sync_user(ctx: Context, user_id: int, trigger: SyncTrigger = "manual", **kwargs: Any) -> list[SyncResult]:
    """Sync each of the user's usable connections; one failing does not stop the others."""
    with ctx.session() as session:
        ids = [c.id for c in connections.list_connections(session, user_id) if c.access_token_enc]
    return [sync_connection(ctx, cid, trigger, user_id=user_id, **kwargs) for cid in ids]


def last_runs(session: Session, user_id: int, connection_id: int | None = None, limit: int = 10) -> list[SyncRun]:
    stmt = select(SyncRun).where(SyncRun.user_id == user_id)
    if connection_id is not None:
        stmt = stmt.where(SyncRun.connection_id == connection_id)
    return list(session.scalars(stmt.order_by(SyncRun.started_at.desc(), SyncRun.id.desc()).limit(limit)))


def summary(r: SyncResult) -> str:
    """One line a person reads about one connection's sync (the dashboard and the CLI both show it)."""
    if r.outcome == "ok":
        waited = f", {r.retries} retried after {r.waited_s:.0f} s of rate limits and errors" if r.retries else ""
        return (f"Sync finished: {r.new} new · {r.updated} updated · {r.unchanged} unchanged · {r.gone} gone · "
                f"{r.completed_upstream} completed in Confluence · {r.conflicts} conflicts "
                f"({r.requests} requests{waited}, {r.duration_s:.1f} s)")
    if r.outcome == "already_running":
        return "A sync of this connection is already running; its results will appear shortly."
    return f"Sync failed: {r.error}"


class TooSoon(ValidationError):
    pass


def claim_manual_sync(ctx: Context, user_id: int) -> None:
    """Sync now is allowed at most once per `sync_min_interval_s` per person: take this person's turn."""
    now = utcnow()
    interval = dt.timedelta(seconds=ctx.settings.sync_min_interval_s)
    with ctx.session() as session:
        user = session.get(User, user_id, with_for_update=True)
        if user is None:
            raise NotFound(f"user {user_id} not found")
        if user.last_sync_request_at and now - user.last_sync_request_at < interval:
            wait = (user.last_sync_request_at + interval - now).total_seconds()
            raise TooSoon(f"Sync ran moments ago; try again in {max(1, round(wait))} s")
        user.last_sync_request_at = now


@dataclass
class SyncJob:
    """A Sync now running in the background: its progress while it runs, its results when done."""

    user_id: int
    pages: int = 0
    tasks: int = 0
    results: list[SyncResult] | None = None
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event, repr=False)

    def progress(self, pages: int, tasks: int) -> None:
        self.pages, self.tasks = pages, tasks


class BackgroundSyncs:
    """Sync now off the page's thread, on a small pool per process, one job per person at a time: the
    page stays usable while Atlassian answers, and a slow site holds one pool thread, within the
    sync's own deadline, never the server."""

    def __init__(self, workers: int = 4) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sync-now")
        self._jobs: dict[tuple[str, int], SyncJob] = {}
        self._lock = threading.Lock()

    def start(self, ctx: Context, user_id: int) -> SyncJob:
        """The person's running job, or a new one (TooSoon, or UserError without a connection, at once)."""
        key = (ctx.settings.database_url, user_id)
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and not job.done.is_set():
                return job
        with ctx.session() as session:
            if not any(c.access_token_enc for c in connections.list_connections(session, user_id)):
                raise UserError("No Atlassian connection yet: connect one on the Connect page.")
        claim_manual_sync(ctx, user_id)
        job = SyncJob(user_id)
        with self._lock:
            self._jobs[key] = job
        self._pool.submit(self._run, ctx, job)
        return job

    def current(self, ctx: Context, user_id: int) -> SyncJob | None:
        with self._lock:
            return self._jobs.get((ctx.settings.database_url, user_id))

    @staticmethod
    def _run(ctx: Context, job: SyncJob) -> None:
        try:
            job.results = sync_user(ctx, job.user_id, "manual", progress=job.progress)
        except TrackliError as exc:
            job.error = str(exc)
        except Exception:
            log.exception("Sync now for user %s", job.user_id)
            job.error = "an unexpected error stopped the sync; the details are in the server log"
        finally:
            job.done.set()


background = BackgroundSyncs()
