"""When each connection syncs next, which worker syncs it, and how fast the whole deployment polls.

- Every usable connection has a `next_sync_at`. A worker **claims** due connections: on PostgreSQL
  `SELECT … FOR UPDATE SKIP LOCKED` and a lease (`claimed_until`), so any number of workers on one
  database sync each connection once; on SQLite one worker at a time (a conditional UPDATE is the claim).
  A claim outlives its worker by at most `lease_s`: a killed worker's connections are taken over.
- After a sync the connection is due again one cadence later, spread by ±20 % jitter so a team's syncs
  do not bunch up. A scheduled sync that failed is retried later and later (the cadence doubled per
  failure in a row, at most an hour), without holding anyone else back.
- The cadence is **stretched** when Atlassian's points pool runs near its limit: by the points the
  deployment's OAuth syncs spent in the last hour against `quota_points_per_hour`, and by the
  rate-limit headers Atlassian sent (near limit, a `Beta-Retry-After`, a 429). A change of stretch is
  written to the audit log of everyone whose syncs it slows, and Diagnostics shows it.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import socket
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from sqlalchemy import and_, func, or_, select, true, update
from sqlalchemy.orm import Session

from trackli import audit, presence
from trackli.backoff import doubling
from trackli.atlassian.transport import near_limit, remaining_share
from trackli.context import Context
from trackli.sync import NEAR_LIMIT
from trackli.db import insert_for
from trackli.models import AtlassianConnection, SchedulerState, SyncRun, User, utcnow

MAX_BACKOFF_S = 3600.0
JITTER = (0.8, 1.2)
STRETCH_FROM = 0.8  # share of the pool spent in the last hour from which the cadence stretches


def worker_name(kind: str = "worker") -> str:
    """`kind:host:pid:random`: a dedicated worker's (`worker`) or a dashboard's own scheduler's (`dashboard`)."""
    return f"{kind}:{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def describe_scheduler(name: str | None) -> str:
    """Who a scheduler name says ran a sync, in words."""
    if not name:
        return "nobody yet"
    kind, _, rest = name.partition(":")
    host, _, pid = rest.partition(":")
    pid = pid.split(":", 1)[0]
    if kind == "dashboard":
        here = host == socket.gethostname()[:40] and pid == str(os.getpid())
        return "this dashboard" if here else f"a dashboard ({host}, process {pid})"
    return f"a worker ({host}, process {pid})" if pid else f"a worker ({name[:60]})"


def _usable() -> Any:
    return and_(AtlassianConnection.status == "ok", AtlassianConnection.access_token_enc.isnot(None))


def _due(by: dt.datetime) -> Any:
    return or_(AtlassianConnection.next_sync_at.is_(None), AtlassianConnection.next_sync_at <= by)


def _unclaimed(now: dt.datetime) -> Any:
    return or_(AtlassianConnection.claimed_until.is_(None), AtlassianConnection.claimed_until < now)


def claim(ctx: Context, worker: str, due_by: dt.datetime, limit: int) -> list[int]:
    """Claim up to `limit` connections due by `due_by` that no live worker holds; their ids."""
    return [connection_id for connection_id, _ in claim_owned(ctx, worker, due_by, limit)]


def claim_owned(ctx: Context, worker: str, due_by: dt.datetime, limit: int, *,
                busy: Mapping[int, int] | None = None, per_user: int | None = None) -> list[tuple[int, int]]:
    """`claim`, as (connection id, person) pairs, with at most `per_user` connections of one person
    running on this worker at once (`busy`: person -> connections of theirs it runs now): one
    person's many or slow connections never fill a worker while someone else's are due."""
    if limit <= 0:
        return []
    busy = busy or {}
    now = utcnow()
    until = now + dt.timedelta(seconds=ctx.settings.lease_s)
    order = (AtlassianConnection.next_sync_at.asc().nulls_first(), AtlassianConnection.id)
    with ctx.session() as session:
        where = (_usable(), _due(due_by), _unclaimed(now))
        if per_user is None:
            stmt = select(AtlassianConnection.id, AtlassianConnection.user_id).where(*where).order_by(*order).limit(limit)
        else:
            # Each person's first `per_user` due connections; a person's running ones drop out below, and
            # they can take at most one candidate each, so `limit + running` candidates always suffice.
            full = [user for user, n in busy.items() if n >= per_user]
            rank = func.row_number().over(partition_by=AtlassianConnection.user_id, order_by=order).label("rank")
            ranked = select(AtlassianConnection.id, rank).where(
                *where, AtlassianConnection.user_id.not_in(full) if full else true()).subquery()
            firsts = select(ranked.c.id).where(ranked.c.rank <= per_user)
            stmt = (select(AtlassianConnection.id, AtlassianConnection.user_id).where(AtlassianConnection.id.in_(firsts))
                    .order_by(*order).limit(limit + sum(busy.values())))
        if session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True, of=AtlassianConnection)
        picked: list[tuple[int, int]] = []
        taken: dict[int, int] = dict(busy)
        for connection_id, user_id in session.execute(stmt).all():
            if per_user is not None and taken.get(user_id, 0) >= per_user:
                continue
            taken[user_id] = taken.get(user_id, 0) + 1
            picked.append((connection_id, user_id))
            if len(picked) == limit:
                break
        if not picked:
            return []
        ids = [connection_id for connection_id, _ in picked]
        # The UPDATE re-checks the claim: on SQLite (no row locks) a second worker's UPDATE finds them taken.
        session.execute(update(AtlassianConnection).where(AtlassianConnection.id.in_(ids), _unclaimed(now))
                        .values(claimed_by=worker, claimed_until=until).execution_options(synchronize_session=False))
        won = set(session.scalars(select(AtlassianConnection.id).where(
            AtlassianConnection.id.in_(ids), AtlassianConnection.claimed_by == worker,
            AtlassianConnection.claimed_until == until)))
        return sorted(pair for pair in picked if pair[0] in won)


def next_delay(every: float, stretch: float, failures: int, rng: Callable[[float, float], float] = random.uniform) -> float:
    """Seconds until the next scheduled sync: the (stretched) cadence with jitter, or after `failures`
    failed syncs in a row, the cadence doubled per failure, at most an hour (or the cadence, if longer)."""
    if failures:
        return doubling(every, failures, max(MAX_BACKOFF_S, every)) * rng(*JITTER)
    return every * stretch * rng(*JITTER)


def release(ctx: Context, connection_id: int, worker: str, ok: bool, every: float, stretch: float) -> dt.datetime:
    """The sync is over: the claim is let go and the next sync time set (the cadence the person's
    presence earns, `presence.every_for`). Returns that time."""
    now = utcnow()
    with ctx.session() as session:
        row = session.execute(select(AtlassianConnection.sync_failures, User.last_seen_at)
                              .join(User, User.id == AtlassianConnection.user_id)
                              .where(AtlassianConnection.id == connection_id)).first()
        failures = 0 if ok or row is None else int(row[0] or 0) + 1
        seen = presence.state_of(ctx.settings, row[1] if row else None, now)
        when = now + dt.timedelta(seconds=next_delay(presence.every_for(ctx.settings, seen, every, stretch), 1.0, failures))
        session.execute(update(AtlassianConnection).where(
            AtlassianConnection.id == connection_id, AtlassianConnection.claimed_by == worker,
        ).values(claimed_by=None, claimed_until=None, next_sync_at=when, sync_failures=failures, last_synced_by=worker)
            .execution_options(synchronize_session=False))
    return when


def seconds_to_next_due(ctx: Context) -> float | None:
    """How long until the earliest usable connection no worker holds is due (0 if one is due now);
    None if there is none."""
    with ctx.session() as session:
        earliest = session.execute(select(func.count(), func.min(AtlassianConnection.next_sync_at),
                                          func.count(AtlassianConnection.next_sync_at))
                                   .where(_usable(), _unclaimed(utcnow()))).one()
    total, first, scheduled = earliest
    if not total:
        return None
    if scheduled < total or first is None:
        return 0.0
    if first.tzinfo is None:  # SQLite's aggregate bypasses the column type
        first = first.replace(tzinfo=dt.timezone.utc)
    return max(0.0, (first - utcnow()).total_seconds())


# ---- the points pool and the cadence ------------------------------------------------------------------

@dataclass
class Cadence:
    stretch: float
    reason: str | None
    since: dt.datetime | None
    points_last_hour: int
    pool: int


def pool_share(session: Session, pool: int, now: dt.datetime) -> tuple[int, float]:
    """Points the deployment's OAuth syncs spent in the last hour, and that as a share of the pool."""
    spent = session.scalar(select(func.coalesce(func.sum(SyncRun.points), 0))
                           .join(AtlassianConnection, AtlassianConnection.id == SyncRun.connection_id)
                           .where(SyncRun.started_at >= now - dt.timedelta(hours=1), AtlassianConnection.kind == "oauth"))
    return int(spent or 0), int(spent or 0) / max(pool, 1)


def header_share(session: Session, since: dt.datetime) -> tuple[float, str | None]:
    """What Atlassian's rate-limit headers on recent runs say: a share of the quota spent (1 = spent)."""
    worst, why = 0.0, None
    for headers, error in session.execute(select(SyncRun.rate_limit, SyncRun.error).where(
            SyncRun.finished_at >= since, or_(SyncRun.rate_limit.isnot(None), SyncRun.outcome == "failed"))
            .order_by(SyncRun.id.desc()).limit(200)):
        if error and "rate-limiting" in error:  # RateLimited: Atlassian answered 429 until the tries ran out
            return 1.0, "Atlassian answered 429 (rate limited)"
        if not isinstance(headers, dict):
            continue
        headers = {str(k): str(v) for k, v in headers.items()}
        left = remaining_share(headers)
        share = 1.0 - left if left is not None else 0.0
        if near_limit(headers) or headers.get(NEAR_LIMIT) == "true":
            share = max(share, STRETCH_FROM)
            reason = headers.get("RateLimit-Reason") or headers.get("X-Beta-RateLimit-Reason") or "near its limit"
            if share > worst or why is None:
                why = f"Atlassian's rate-limit headers say the quota is near its limit ({reason[:80]})"
        worst = max(worst, share)
    return worst, why


def stretch_for(share: float) -> float:
    if share < STRETCH_FROM:
        return 1.0
    if share < 0.9:
        return 2.0
    if share < 1.0:
        return 4.0
    return 8.0


def cadence(ctx: Context, every: float) -> Cadence:
    """The deployment's stretch now; a change is saved, audited for the people it concerns, and returned."""
    now = utcnow()
    pool = ctx.settings.quota_points_per_hour
    with ctx.session() as session:
        spent, share = pool_share(session, pool, now)
        from_headers, header_reason = header_share(session, now - dt.timedelta(seconds=max(every, 60) * 2))
        stretch = stretch_for(max(share, from_headers))
        if stretch == 1.0:
            reason = None
        elif from_headers > share and header_reason:
            reason = header_reason
        else:
            reason = f"{spent:,} of the {pool:,} points Atlassian allows an hour were spent in the last hour"
        # The one row, made by whichever worker comes first (several may start together), then locked.
        insert = insert_for(session)
        session.execute(insert(SchedulerState).values(id=1, stretch=1.0, reason=None, since=now)
                        .on_conflict_do_nothing(index_elements=[SchedulerState.id]))
        state = session.get_one(SchedulerState, 1, with_for_update=True, populate_existing=True)
        if state.stretch != stretch:
            event = "scheduler.cadence_stretched" if stretch > 1 else "scheduler.cadence_restored"
            details = {"stretch": stretch, "was": state.stretch, "every_s": every, "now_every_s": every * stretch,
                       "points_last_hour": spent, "pool": pool, "reason": reason}
            users = session.scalars(select(AtlassianConnection.user_id).where(_usable()).distinct()).all()
            for user_id in users:
                audit.record(session, user_id, event, details)
            state.stretch, state.reason, state.since = stretch, reason, now
        return Cadence(state.stretch, state.reason, state.since, spent, pool)


def current(session: Session) -> SchedulerState | None:
    return session.get(SchedulerState, 1)
