"""Fairness between people on one deployment (issue 24): one person's slow site, many connections or
long syncs never stall or slow anyone else's. Against the simulator and a scripted slow server, on
both databases."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, insert, select, update

from tests.reliability.hostile import EMAIL, TOKEN, Server, page, site, task
from trackli import connections, scheduler, sync, users
from trackli.atlassian.transport import RetryPolicy
from trackli.errors import ValidationError
from trackli.models import AtlassianConnection, SyncRun, utcnow
from trackli.simulator import ME, ME_API_TOKEN
from trackli.worker import Worker


@pytest.fixture
def slow_site():
    server = Server().start()
    yield server
    server.stop()


def person(ctx, n: int) -> int:
    with ctx.session() as s:
        return users.ensure(s, f"person{n}@example.com", f"Person {n}").id


def copies(ctx, connection_id: int, owner: int, n: int) -> list[int]:
    """`n` more connections like `connection_id` for `owner` (rows copied: a person's many sites)."""
    with ctx.session() as s:
        row = s.get(AtlassianConnection, connection_id)
        copy = {c: getattr(row, c) for c in ("kind", "site_url", "cloud_id", "site_name", "account_email",
                                             "account_name", "access_token_enc", "scopes", "status")}
        s.execute(insert(AtlassianConnection), [copy | {"user_id": owner, "account_id": f"copy-{owner}-{k}",
                                                        "created_at": utcnow(), "updated_at": utcnow()} for k in range(n)])
        return list(s.scalars(select(AtlassianConnection.id).where(AtlassianConnection.user_id == owner)
                              .order_by(AtlassianConnection.id)))


def runs_of(ctx, connection_id: int) -> int:
    with ctx.session() as s:
        return s.scalar(select(func.count()).where(SyncRun.connection_id == connection_id)) or 0


def test_one_person_holds_at_most_their_slots_of_a_worker(sim_ctx, sim):
    a, b = person(sim_ctx, 1), person(sim_ctx, 2)
    first = connections.connect_api_token(sim_ctx, a, sim.url, ME[1], ME_API_TOKEN)
    mine = copies(sim_ctx, first, a, 5)  # six connections, all due, all older than b's
    theirs = connections.connect_api_token(sim_ctx, b, sim.url, ME[1], ME_API_TOKEN)
    claimed = scheduler.claim_owned(sim_ctx, "w", utcnow(), 4, per_user=2)
    assert sorted(owner for _, owner in claimed) == [a, a, b]  # a third of a's would keep b waiting
    assert {c for c, _ in claimed} <= set(mine) | {theirs}
    # With two of a's running on this worker, a gets nothing more; the claims already made are held.
    again = scheduler.claim_owned(sim_ctx, "w", utcnow(), 4, busy={a: 2}, per_user=2)
    assert again == []
    with sim_ctx.session() as s:
        s.execute(update(AtlassianConnection).values(claimed_by=None, claimed_until=None))
    assert [o for _, o in scheduler.claim_owned(sim_ctx, "w", utcnow(), 4, busy={a: 1}, per_user=2)] == [a, b]


def test_a_person_keeps_at_most_the_connections_allowed(sim_ctx, sim):
    sim_ctx.settings = sim_ctx.settings.with_(max_connections_per_user=2)
    a = person(sim_ctx, 1)
    first = connections.connect_api_token(sim_ctx, a, sim.url, ME[1], ME_API_TOKEN)
    copies(sim_ctx, first, a, 1)
    # Connecting the same account again updates its connection: always allowed.
    assert connections.connect_api_token(sim_ctx, a, sim.url, ME[1], ME_API_TOKEN) == first
    with sim_ctx.session() as s:
        s.execute(update(AtlassianConnection).where(AtlassianConnection.id == first).values(account_id="someone-else"))
    with pytest.raises(ValidationError, match=r"the most one person may keep here \(2\)"):
        connections.connect_api_token(sim_ctx, a, sim.url, ME[1], ME_API_TOKEN)
    with sim_ctx.session() as s:
        assert s.scalar(select(func.count()).select_from(AtlassianConnection)) == 2


def test_a_scheduled_sync_has_a_shorter_deadline_than_one_a_person_asked_for(ctx, user_id, slow_site):
    slow_site.routes.update(site(page([task(1)])))
    conn = connections.connect_api_token(ctx, user_id, slow_site.url, EMAIL, TOKEN)
    slow_site.routes["/wiki/api/v2/tasks"] = lambda h: h.json(429, {}, {"Retry-After": "50"})
    ctx.settings = ctx.settings.with_(scheduled_sync_deadline_s=30.0, sync_deadline_s=900.0)
    waits: list[float] = []
    policy = RetryPolicy(tries=2, sleep=waits.append, jitter=lambda: 1.0)
    scheduled = sync.sync_connection(ctx, conn, "scheduled", retry=policy)
    assert scheduled.outcome == "failed" and "time limit" in scheduled.error and waits == []
    manual = sync.sync_connection(ctx, conn, "manual", retry=policy)
    assert waits == [50.0] and "rate-limiting" in manual.error  # a person's Sync now waits it out


def test_a_slow_site_never_slows_another_persons_cadence(sim_ctx, sim, slow_site):
    """A tarpit answers each request just inside the timeouts (so it never backs off); the other
    person's connection keeps its one-second cadence while the tarpit's sync holds its slot."""
    slow, fast = person(sim_ctx, 1), person(sim_ctx, 2)
    slow_site.routes.update(site(page([task(1)])))
    tarpit = connections.connect_api_token(sim_ctx, slow, slow_site.url, EMAIL, TOKEN)

    def crawl(h):
        time.sleep(2.5)
        page([task(1)])(h)
    slow_site.routes["/wiki/api/v2/tasks"] = crawl
    good = connections.connect_api_token(sim_ctx, fast, sim.url, ME[1], ME_API_TOKEN)
    worker = Worker(sim_ctx, every=1, concurrency=4)
    serving = threading.Thread(target=worker.run, daemon=True)
    serving.start()
    time.sleep(7)
    worker.stop_event.set()
    serving.join(timeout=30)
    assert not serving.is_alive()
    # The old worker waited for every sync of a round before the next: about 2 syncs in 7 s here.
    assert runs_of(sim_ctx, good) >= 5, runs_of(sim_ctx, good)
    assert 1 <= runs_of(sim_ctx, tarpit) <= 3
    with sim_ctx.session() as s:
        assert s.scalar(select(func.count()).where(AtlassianConnection.claimed_by.isnot(None))) == 0
