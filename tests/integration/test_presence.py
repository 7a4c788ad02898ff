"""Presence and the dashboard's own scheduler (issue 22): who is looking sets how often their
connections are polled; the scheduler runs once per process and stops. On both databases."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from sqlalchemy import event, func, select, update

from trackli import connections, embedded, presence, scheduler, sync, users
from trackli.models import AtlassianConnection, SyncRun, User, utcnow
from trackli.simulator import ME, ME_API_TOKEN
from trackli.worker import Worker


@pytest.fixture(autouse=True)
def fresh_memo():
    presence.forget_memo()
    yield
    presence.forget_memo()


def seen(ctx, user_id, ago: dt.timedelta | None) -> None:
    with ctx.session() as s:
        s.execute(update(User).where(User.id == user_id).values(last_seen_at=None if ago is None else utcnow() - ago))


def writes_to_users(engine):
    """Count UPDATEs of `users` sent through `engine` while the block runs."""
    count = {"n": 0}

    def listen(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("UPDATE USERS"):
            count["n"] += 1
    event.listen(engine, "before_cursor_execute", listen)
    return count, lambda: event.remove(engine, "before_cursor_execute", listen)


def test_presence_costs_at_most_one_write_per_person_per_30_s_however_many_tabs(ctx, user_id):
    count, stop = writes_to_users(ctx.engine)
    try:
        assert presence.touch(ctx, user_id) is True
        for _ in range(50):  # reruns and tabs of this process
            assert presence.touch(ctx, user_id) is False
        presence.forget_memo()  # another process: the database's own condition holds it to one write
        assert presence.touch(ctx, user_id) is False
    finally:
        stop()
    assert count["n"] == 1
    with ctx.session() as s:
        assert s.get(User, user_id).last_seen_at > utcnow() - dt.timedelta(seconds=5)


def test_each_presence_earns_its_cadence_and_live_polling_slows_first(ctx):
    s = ctx.settings  # defaults: live 45 s, today 300 s, idle 1800 s
    now = utcnow()
    assert presence.state_of(s, now - dt.timedelta(seconds=60), now) == "live"
    assert presence.state_of(s, now - dt.timedelta(hours=3), now) == "today"
    assert presence.state_of(s, None, now) == "today"  # never seen (the CLI): the ordinary cadence
    assert presence.state_of(s, now - dt.timedelta(days=2), now) == "idle"
    assert [presence.every_for(s, p, 300) for p in ("live", "today", "idle")] == [45, 300, 1800]
    # Near the points pool (stretch 2, 4, 8): live polling is stretched hardest, never past the others.
    assert [presence.every_for(s, "live", 300, k) for k in (2, 4, 8)] == [360, 1200, 2400]
    assert [presence.every_for(s, "today", 300, k) for k in (2, 4, 8)] == [600, 1200, 2400]
    assert presence.sweep_every(s, "idle") == 2 * presence.sweep_every(s, "live") == 7200


def test_the_scheduler_sets_each_persons_next_sync_by_presence(sim_ctx, sim):
    people = {}
    for name, ago in (("live", dt.timedelta(seconds=20)), ("today", dt.timedelta(hours=5)), ("idle", dt.timedelta(days=3))):
        with sim_ctx.session() as s:
            person = users.ensure(s, f"{name}@example.com", name).id
        people[name] = connections.connect_api_token(sim_ctx, person, sim.url, ME[1], ME_API_TOKEN)
        seen(sim_ctx, person, ago)
    started = utcnow()
    summary = Worker(sim_ctx).cycle()
    assert {r["connection_id"] for r in summary["synced"]} == set(people.values())
    with sim_ctx.session() as s:
        delay = {name: (s.get(AtlassianConnection, c).next_sync_at - started).total_seconds() for name, c in people.items()}
        assert all(s.get(AtlassianConnection, c).last_synced_by.startswith("worker:") for c in people.values())
    assert 0.8 * 45 - 1 <= delay["live"] <= 1.2 * 45 + 5
    assert 0.8 * 300 - 1 <= delay["today"] <= 1.2 * 300 + 5
    assert 0.8 * 1800 - 1 <= delay["idle"] <= 1.2 * 1800 + 5


def test_a_person_coming_back_is_synced_at_once_and_an_idle_one_is_swept_half_as_often(sim_ctx, user_id, sim):
    conn = connections.connect_api_token(sim_ctx, user_id, sim.url, ME[1], ME_API_TOKEN)
    assert sync.sync_connection(sim_ctx, conn).kind == "full"
    later = utcnow() + dt.timedelta(minutes=25)
    with sim_ctx.session() as s:
        row = s.get(AtlassianConnection, conn)
        row.next_sync_at = later
        row.last_full_sync_at = utcnow() - dt.timedelta(seconds=5400)  # 90 minutes ago
    seen(sim_ctx, user_id, dt.timedelta(days=2))
    with sim_ctx.session() as s:
        row = s.get(AtlassianConnection, conn)
        assert sync.choose_kind(sim_ctx, row, "scheduled", utcnow(), "idle") == "incremental"  # 2 h for the idle
        assert sync.choose_kind(sim_ctx, row, "scheduled", utcnow(), "today") == "full"
    assert presence.touch(sim_ctx, user_id)  # back after two days: due now, not in 25 minutes
    with sim_ctx.session() as s:
        assert s.get(AtlassianConnection, conn).next_sync_at <= utcnow()
    seen(sim_ctx, user_id, dt.timedelta(seconds=40))  # a live person's touch moves nothing
    presence.forget_memo()
    with sim_ctx.session() as s:
        s.get(AtlassianConnection, conn).next_sync_at = later
    assert presence.touch(sim_ctx, user_id)
    with sim_ctx.session() as s:
        assert s.get(AtlassianConnection, conn).next_sync_at == later


def test_the_dashboards_scheduler_starts_once_per_process_syncs_and_stops(sim_ctx, user_id, sim):
    conn = connections.connect_api_token(sim_ctx, user_id, sim.url, ME[1], ME_API_TOKEN)
    sim_ctx.settings = sim_ctx.settings.with_(embedded_worker="off")
    assert embedded.start(sim_ctx) is None  # off: nothing runs
    sim_ctx.settings = sim_ctx.settings.with_(embedded_worker="auto")
    before = {t.name for t in threading.enumerate()}
    first = embedded.start(sim_ctx)
    try:
        assert first is not None and embedded.start(sim_ctx) is first  # every rerun and session: the same one
        assert [t.name for t in threading.enumerate()].count("trackli-scheduler") == 1
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with sim_ctx.session() as s:
                if s.scalar(select(func.count()).where(SyncRun.connection_id == conn, SyncRun.outcome == "ok")):
                    break
            time.sleep(0.2)
        with sim_ctx.session() as s:
            row = s.get(AtlassianConnection, conn)
            assert row.last_synced_by.startswith("dashboard:")
        assert scheduler.describe_scheduler(row.last_synced_by) == "this dashboard"
    finally:
        assert embedded.stop(sim_ctx)
    assert embedded.running(sim_ctx) is None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and {t.name for t in threading.enumerate()} - before:
        time.sleep(0.1)
    assert not ({t.name for t in threading.enumerate()} - before), "a scheduler thread outlived stop()"
