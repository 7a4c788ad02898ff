"""A sync's run record: the per-connection lock (one running row), the heartbeat that keeps it and the
worker's claim alive, the finish (counts, points, audit), and the incremental watermark after success."""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Literal

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from trackli import audit
from trackli.atlassian.client import ConfluenceClient
from trackli.context import Context
from trackli.errors import ConstraintViolation
from trackli.models import AtlassianConnection, SyncRun, SyncTrigger, utcnow

SyncOutcome = Literal["ok", "failed", "already_running"]


SyncKind = Literal["full", "incremental"]


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


def start_run(ctx: Context, conn: AtlassianConnection, trigger: SyncTrigger) -> int | None:
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


def heartbeat(ctx: Context, run_id: int, pages: int, connection_id: int | None = None) -> None:
    now = utcnow()
    with ctx.session() as session:
        session.execute(update(SyncRun).where(SyncRun.id == run_id).values(heartbeat_at=now, pages_fetched=pages))
        if connection_id is not None:  # a worker's claim on the connection lasts as long as its sync is alive
            session.execute(update(AtlassianConnection).where(
                AtlassianConnection.id == connection_id, AtlassianConnection.claimed_until > now,
            ).values(claimed_until=now + dt.timedelta(seconds=ctx.settings.lease_s)))


def ticker(ctx: Context, client: ConfluenceClient) -> Callable[[], None]:
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
        heartbeat(self.ctx, self.run_id, self.result.pages_fetched, self.result.connection_id)


def finish_run(ctx: Context, conn: AtlassianConnection, result: SyncResult, client: ConfluenceClient | None) -> None:
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
            advance(session, ctx, conn.id, result, client.stats.server_date, run.finished_at)
        details = result.as_dict() | {"run_id": result.run_id, "trigger": run.trigger}
        if result.outcome == "ok":
            audit.record(session, conn.user_id, "confluence.tasks_fetched", details)
        else:
            audit.record(session, conn.user_id, "confluence.fetch_failed", details, success=False, error=result.error)


CLOCK_TOLERANCE_S = 300.0  # an upstream `Date` further ahead of our clock than this is not trusted for the watermark


NEAR_LIMIT = "near_limit"  # kept beside a run's rate-limit headers when any of them said the quota is near


def advance(session: Session, ctx: Context, connection_id: int, result: SyncResult,
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


def last_runs(session: Session, user_id: int, connection_id: int | None = None, limit: int = 10) -> list[SyncRun]:
    stmt = select(SyncRun).where(SyncRun.user_id == user_id)
    if connection_id is not None:
        stmt = stmt.where(SyncRun.connection_id == connection_id)
    return list(session.scalars(stmt.order_by(SyncRun.started_at.desc(), SyncRun.id.desc()).limit(limit)))
