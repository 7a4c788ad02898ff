"""The due-based scheduler and worker (issue 16): claims, leases, backoff and the cadence stretched near
Atlassian's points pool. Against the simulated Atlassian, on both databases."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from trackli import audit, connections, diagnostics, scheduler
from trackli.models import AtlassianConnection, SyncRun, utcnow
from trackli.simulator import ME, ME_API_TOKEN
from trackli.worker import Worker
from tests.conftest import oauth_connect


def people_with_connections(ctx, sim, n):
    """`n` people, each with a token connection to the simulator; their connection ids."""
    from trackli import users

    ids = []
    for k in range(n):
        with ctx.session() as s:
            person = users.ensure(s, f"person{k}@example.com", f"Person {k}").id
        ids.append(connections.connect_api_token(ctx, person, sim.url, ME[1], ME_API_TOKEN))
    return ids


def runs_per_connection(ctx):
    with ctx.session() as s:
        return dict(s.execute(select(SyncRun.connection_id, func.count()).group_by(SyncRun.connection_id)).all())


def test_the_next_sync_is_one_cadence_away_with_jitter_and_failures_back_off_to_an_hour():
    low, high = (lambda a, b: a), (lambda a, b: b)
    assert scheduler.next_delay(300, 1, 0, low) == 240 and scheduler.next_delay(300, 1, 0, high) == 360
    assert scheduler.next_delay(300, 2, 0, low) == 480  # stretched
    backoff = [scheduler.next_delay(300, 1, n, lambda a, b: 1.0) for n in range(1, 7)]
    assert backoff == [600, 1200, 2400, 3600, 3600, 3600]
    assert scheduler.next_delay(7200, 1, 3, lambda a, b: 1.0) == 7200  # a cadence longer than the cap stays


def test_a_claimed_connection_is_nobody_elses_until_its_lease_runs_out(sim_ctx, sim):
    ids = people_with_connections(sim_ctx, sim, 5)
    now = utcnow()
    first = scheduler.claim(sim_ctx, "worker-a", now, 3)
    second = scheduler.claim(sim_ctx, "worker-b", now, 10)
    assert len(first) == 3 and set(first) | set(second) == set(ids) and not set(first) & set(second)
    assert scheduler.claim(sim_ctx, "worker-c", now, 10) == []
    with sim_ctx.session() as s:  # worker-a died: its lease runs out
        for conn in s.scalars(select(AtlassianConnection).where(AtlassianConnection.claimed_by == "worker-a")):
            conn.claimed_until = utcnow() - dt.timedelta(seconds=1)
    assert sorted(scheduler.claim(sim_ctx, "worker-c", utcnow(), 10)) == sorted(first)


def test_a_worker_killed_mid_cycle_leaves_its_claims_to_expire_and_another_takes_them(sim_ctx, sim):
    ids = people_with_connections(sim_ctx, sim, 4)
    sim_ctx.settings = sim_ctx.settings.with_(lease_s=1.0)
    held = scheduler.claim(sim_ctx, "killed-worker", utcnow(), 2)  # and then it was killed
    summary = Worker(sim_ctx, every=300).cycle()
    assert {r["connection_id"] for r in summary["synced"]} == set(ids) - set(held)

    import time
    time.sleep(1.1)
    summary = Worker(sim_ctx, every=300).cycle()
    assert {r["connection_id"] for r in summary["synced"]} == set(held)
    assert runs_per_connection(sim_ctx) == {i: 1 for i in ids}
    with sim_ctx.session() as s:
        for conn in s.scalars(select(AtlassianConnection)):
            assert conn.claimed_by is None and conn.next_sync_at > utcnow() + dt.timedelta(seconds=200)


def test_a_failing_connection_backs_off_without_slowing_the_others(sim_ctx, sim):
    good = people_with_connections(sim_ctx, sim, 3)
    with sim_ctx.session() as s:
        s.get(AtlassianConnection, good[0]).site_url = "http://127.0.0.1:9"  # nothing listens there
    bad, good = good[0], good[1:]
    worker = Worker(sim_ctx, every=60, retry=_one_try())
    summary = worker.cycle()
    assert {r["connection_id"]: r["outcome"] for r in summary["synced"]} == {bad: "failed", **{g: "ok" for g in good}}
    with sim_ctx.session() as s:
        row = s.get(AtlassianConnection, bad)
        assert row.sync_failures == 1 and row.next_sync_at >= utcnow() + dt.timedelta(seconds=0.8 * 120 - 5)
        row.next_sync_at = utcnow() - dt.timedelta(seconds=1)  # due again: a second failure doubles the wait
    worker.cycle()
    with sim_ctx.session() as s:
        row = s.get(AtlassianConnection, bad)
        assert row.sync_failures == 2 and row.next_sync_at >= utcnow() + dt.timedelta(seconds=0.8 * 240 - 5)
        assert all(s.get(AtlassianConnection, g).sync_failures == 0 for g in good)


def _one_try():
    from trackli.atlassian.transport import RetryPolicy

    return RetryPolicy(tries=1, sleep=lambda s: None)


def test_worker_once_syncs_each_due_connection_once_and_leaves_the_rest(sim_ctx, sim):
    ids = people_with_connections(sim_ctx, sim, 6)
    with sim_ctx.session() as s:  # not due yet
        s.get(AtlassianConnection, ids[0]).next_sync_at = utcnow() + dt.timedelta(minutes=5)
    summary = Worker(sim_ctx, every=0, concurrency=3).cycle()
    assert sorted(r["connection_id"] for r in summary["synced"]) == ids[1:]
    assert all(r["kind"] == "full" and r["points"] > 0 for r in summary["synced"])
    again = Worker(sim_ctx, every=300, concurrency=3).cycle()  # every=0: due again at once
    assert sorted(r["connection_id"] for r in again["synced"]) == ids[1:]
    assert all(r["kind"] == "incremental" for r in again["synced"])


def test_the_scheduler_stretches_the_cadence_when_the_simulators_pool_runs_low(sim_ctx, user_id, sim):
    connection = oauth_connect(sim_ctx, user_id, sim)
    sim.state.knobs.points_per_hour = 60  # a full sync of this site costs about 50
    worker = Worker(sim_ctx, every=300)
    first = worker.cycle()
    assert first["stretch"] == 1 and first["synced"][0]["outcome"] == "ok"
    with sim_ctx.session() as s:
        run = s.scalar(select(SyncRun))
        assert run.rate_limit.get("near_limit") == "true", (run.rate_limit, run.points)
        s.get(AtlassianConnection, connection).next_sync_at = utcnow()

    second = worker.cycle()

    assert second["stretch"] >= 2 and "near its limit" in second["stretched_because"]
    with sim_ctx.session() as s:
        entry = audit.query(s, user_id, event_types=["scheduler.cadence_stretched"])[0]
        assert entry.details["now_every_s"] >= 600
        assert s.get(AtlassianConnection, connection).next_sync_at >= utcnow() + dt.timedelta(seconds=0.8 * 600 - 5)
    d = diagnostics.diagnose(sim_ctx, user_id, connection)
    assert d.points["stretch"] >= 2 and d.points["stretched_because"]

    # The pool spent: the gateway answers 429; the sync fails without hammering, the connection backs
    # off, and the next cycle stretches the cadence to the most.
    sim.state.points_used = sim.state.knobs.points_per_hour
    with sim_ctx.session() as s:
        s.get(AtlassianConnection, connection).next_sync_at = utcnow()
    worker = Worker(sim_ctx, every=300, retry=_one_try())
    third = worker.cycle()
    assert third["synced"][0]["outcome"] == "failed" and "rate-limiting" in third["synced"][0]["error"]
    assert 1 <= sim.state.counters["points_429"] <= 2  # its two questions, asked once each: no hammering
    with sim_ctx.session() as s:
        assert s.get(AtlassianConnection, connection).sync_failures == 1
    assert worker.cycle()["stretch"] == 8


def test_the_cadence_stretches_on_the_deployments_own_count_and_comes_back(sim_ctx, user_id, sim):
    oauth_connect(sim_ctx, user_id, sim)  # the pool counts OAuth traffic
    worker = Worker(sim_ctx, every=300)
    worker.cycle()
    with sim_ctx.session() as s:
        spent = s.scalar(select(SyncRun.points))
    sim_ctx.settings = sim_ctx.settings.with_(quota_points_per_hour=int(spent / 0.85))
    assert scheduler.cadence(sim_ctx, 300).stretch == 2.0
    sim_ctx.settings = sim_ctx.settings.with_(quota_points_per_hour=spent * 100)
    pace = scheduler.cadence(sim_ctx, 300)
    assert pace.stretch == 1.0
    with sim_ctx.session() as s:
        kinds = [e.event_type for e in audit.query(s, user_id, event_types=[
            "scheduler.cadence_stretched", "scheduler.cadence_restored"])]
    assert kinds == ["scheduler.cadence_restored", "scheduler.cadence_stretched"]


@pytest.mark.parametrize("headers, near", [
    ({"X-RateLimit-NearLimit": "true"}, True),
    ({"X-Beta-RateLimit-NearLimit": "TRUE"}, True),
    ({"Beta-Retry-After": "30"}, True),
    ({"X-RateLimit-Limit": "1000", "X-RateLimit-Remaining": "100"}, True),
    ({"X-RateLimit-Limit": "1000", "X-RateLimit-Remaining": "900"}, False),
    ({"X-RateLimit-Limit": "nan", "X-RateLimit-Remaining": "-3"}, False),
    ({"X-RateLimit-Limit": "0", "X-RateLimit-Remaining": "0"}, False),
    ({}, False),
])
def test_rate_limit_headers_are_read_without_trusting_them(headers, near):
    from trackli.atlassian.transport import near_limit

    assert near_limit(headers) is near
