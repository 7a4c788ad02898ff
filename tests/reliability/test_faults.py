"""Faults: 30 % of requests failing, workers killed with SIGKILL, PostgreSQL restarted, tokens expiring
and revoked mid-sync. A person's action is never lost, and a sync never duplicates or drops a task."""

import datetime as dt
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from sqlalchemy import func, select

from tests.conftest import PG_URL, oauth_connect, point_at
from trackli import board, completion, connections, queue, sync
from trackli.atlassian.client import RetryPolicy
from trackli.models import AtlassianConnection, OutboxEntry, PendingTask, SyncRun, Card
from trackli.simulator import ME, ME_API_TOKEN, Simulator

FAST = RetryPolicy(tries=4, base_delay=0.01, max_delay=0.05, max_retry_after=0.1)


@pytest.fixture
def big_sim():
    with Simulator.running(tasks=500, pages=60, spaces=5, seed=3) as simulator:
        yield simulator


def faulty(sim, rate=0.3):
    sim.state.knobs.fault_rate = rate
    sim.state.knobs.fault_kinds = ("429", "502", "503", "timeout", "drop")
    sim.state.knobs.retry_after_s = 0.05
    sim.state.knobs.timeout_s = 1.5


def fast_timeouts(ctx):
    ctx.settings = ctx.settings.with_(http_timeout_s=0.4)


def mine_upstream(sim) -> set[str]:
    return {t.id for t in sim.state.tasks.values() if t.assigned_to == ME[0] and t.status == "incomplete" and not t.blank}


def sync_until_ok(ctx, conn, tries=25, **kwargs):
    for _ in range(tries):
        result = sync.sync_connection(ctx, conn, retry=FAST, **kwargs)
        if result.outcome == "ok":
            return result
    raise AssertionError(f"no sync succeeded in {tries} tries: {result.error}")


def test_500_tasks_over_repeated_faulty_syncs_end_exact(ctx, user_id, big_sim):
    sim = big_sim
    fast_timeouts(ctx)
    conn = connections.connect_api_token(ctx, user_id, sim.url, ME[1], ME_API_TOKEN)
    faulty(sim)
    rng = random.Random(5)
    container = next(iter(sim.state.content.values()))
    dismissed = set()
    for round_ in range(6):
        mine = sorted(mine_upstream(sim))
        for task_id in rng.sample(mine, 4):
            sim.state.update_task(task_id, status="complete")
        for task_id in rng.sample(mine, 3):
            sim.state.update_task(task_id, assigned_to="sim-user-2")
        for task_id in rng.sample(mine, 3):
            sim.state.update_task(task_id, text=f"renamed in round {round_}")
        for n in range(4):
            sim.state.add_task(f"new in round {round_} #{n}", assigned_to=ME[0], container=container)
        for _ in range(2):  # some runs fail part-way: that must remove nothing
            sync.sync_connection(ctx, conn, retry=RetryPolicy(tries=1))
        sync_until_ok(ctx, conn)
        if round_ == 1:
            with ctx.session() as s:
                ids = [p.id for p in queue.list_pending(s, user_id)[:10]]
                queue.dismiss(s, user_id, ids)
                dismissed = {p.confluence_task_id for p in queue.list_pending(s, user_id, "dismissed")}
    expected = mine_upstream(sim)
    with ctx.session() as s:
        rows = s.execute(select(PendingTask.confluence_task_id, PendingTask.status, PendingTask.task_title)).all()
    live = {r.confluence_task_id for r in rows if r.status != "gone"}
    assert live == expected
    assert len(rows) == len({r.confluence_task_id for r in rows})  # no duplicates
    states = {r.confluence_task_id: r.status for r in rows}
    assert all(states[t] == "dismissed" for t in dismissed & expected)
    titles = {r.confluence_task_id: r.task_title for r in rows}
    for task_id in expected - dismissed:
        assert titles[task_id] == " ".join(sim.state.tasks[task_id].text.split())
    assert sim.state.counters["fault_timeout"] and sim.state.counters["fault_drop"] and sim.state.counters["fault_429"]


def test_200_completions_under_faults_each_settled_put_sent_once(ctx, user_id, big_sim, monkeypatch):
    sim = big_sim
    fast_timeouts(ctx)
    monkeypatch.setattr(completion, "backoff", lambda attempts: dt.timedelta(0))
    conn = connections.connect_api_token(ctx, user_id, sim.url, ME[1], ME_API_TOKEN)
    sync_until_ok(ctx, conn)
    with ctx.session() as s:
        cards = queue.approve(s, user_id, [p.id for p in queue.list_pending(s, user_id)[:200]])
        for card in cards:
            board.move_card(s, user_id, card.id, "done")
    remote = {c.id: c.confluence_task_id for c in cards}
    faulty(sim)
    sim.state.reset_log()
    for _ in range(60):
        completion.drain(ctx, retry=FAST)
        with ctx.session() as s:
            left = s.scalar(select(func.count()).select_from(OutboxEntry).where(OutboxEntry.state.in_(("pending", "sending"))))
        if not left:
            break
    assert left == 0
    assert all(sim.state.tasks[t].status == "complete" for t in remote.values())
    ok_puts = Counter(r["path"].rsplit("/", 1)[1] for r in sim.state.api_requests("PUT task") if r.get("status") == 200)
    assert set(ok_puts) == set(remote.values()) and set(ok_puts.values()) == {1}
    with ctx.session() as s:
        assert set(s.scalars(select(Card.sync_state))) == {"synced"}
        assert s.scalar(select(func.count()).select_from(OutboxEntry).where(OutboxEntry.state == "failed")) == 0


def start_worker(env, every="0.3"):
    return subprocess.Popen([sys.executable, "-m", "trackli", "worker", "--every", every],
                            env={**os.environ, **env, "TRACKLI_LEASE_S": "2", "TRACKLI_HTTP_TIMEOUT_S": "5"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for(condition, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def count(ctx, model, *where):
    with ctx.session() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def test_worker_killed_mid_sync_and_mid_drain_loses_and_doubles_nothing(ctx, user_id, big_sim, env):
    sim = big_sim
    container = next(iter(sim.state.content.values()))
    for n in range(1000):
        sim.state.add_task(f"bulk {n}", assigned_to=ME[0], container=container)
    connections.connect_api_token(ctx, user_id, sim.url, ME[1], ME_API_TOKEN)
    sim.state.knobs.latency_ms = 150

    worker = start_worker(env)
    wait_for(lambda: count(ctx, SyncRun, SyncRun.outcome == "running") == 1 and sim.state.counters["GET tasks"] >= 2,
             what="a sync in progress")
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    assert count(ctx, SyncRun, SyncRun.outcome == "running") == 1  # left behind by the dead worker

    worker = start_worker(env)
    try:
        wait_for(lambda: count(ctx, SyncRun, SyncRun.outcome == "ok") >= 1, what="a sync after the restart")
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    with ctx.session() as s:
        assert {r.outcome for r in s.scalars(select(SyncRun))} >= {"abandoned", "ok"}
        ids = list(s.scalars(select(PendingTask.confluence_task_id)))
    assert len(ids) == len(set(ids)) and set(ids) == mine_upstream(sim)

    # Mid-drain: 150 completions, a worker killed while sending them.
    with ctx.session() as s:
        cards = queue.approve(s, user_id, [p.id for p in queue.list_pending(s, user_id)[:150]])
        for card in cards:
            board.move_card(s, user_id, card.id, "done")
    sim.state.knobs.latency_ms = 60
    sim.state.reset_log()
    worker = start_worker(env, every="30")  # one cycle: sync, then the drain
    wait_for(lambda: len(sim.state.api_requests("PUT task")) >= 30, what="sends in progress")
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    assert count(ctx, OutboxEntry, OutboxEntry.state.in_(("pending", "sending"))) > 0
    worker = start_worker(env, every="0.5")
    try:
        wait_for(lambda: count(ctx, OutboxEntry, OutboxEntry.state.in_(("pending", "sending"))) == 0, timeout=90,
                 what="the outbox to empty")
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(20)
    assert all(sim.state.tasks[c.confluence_task_id].status == "complete" for c in cards)
    with ctx.session() as s:
        assert set(s.scalars(select(Card.sync_state))) == {"synced"}
        assert s.scalar(select(func.count()).select_from(Card)) == 150
    ok_puts = Counter(r["path"] for r in sim.state.api_requests("PUT task") if r.get("status") == 200)
    assert len(ok_puts) == 150 and max(ok_puts.values()) <= 2  # at most the entries in flight at the kill, resent


@pytest.mark.skipif(not PG_URL or not shutil.which("pg_ctlcluster"), reason="restarts the PostgreSQL server")
def test_postgresql_restarted_under_the_worker(ctx, user_id, big_sim, env):
    sim = big_sim
    connections.connect_api_token(ctx, user_id, sim.url, ME[1], ME_API_TOKEN)
    worker = start_worker(env, every="0.5")
    try:
        wait_for(lambda: count(ctx, SyncRun, SyncRun.outcome == "ok") >= 1, what="a first sync")
        version = sorted(os.listdir("/etc/postgresql"))[0]
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"], check=True,
                       capture_output=True)
        container = next(iter(sim.state.content.values()))
        late = sim.state.add_task("added while the database restarted", assigned_to=ME[0], container=container)

        def arrived():
            try:
                return count(ctx, PendingTask, PendingTask.confluence_task_id == late.id) == 1
            except Exception:  # our own pool reconnects too
                return False

        wait_for(arrived, timeout=90, what="the worker to sync again after the restart")
        assert worker.poll() is None, worker.stderr.read()
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(20)
    assert worker.returncode == 0


@pytest.fixture
def oauth_1500(ctx, user_id, big_sim):
    """An OAuth connection to a site with 1,500 tasks for you (six pages of results)."""
    container = next(iter(big_sim.state.content.values()))
    for n in range(1000):
        big_sim.state.add_task(f"bulk {n}", assigned_to=ME[0], container=container)
    return oauth_connect(point_at(ctx, big_sim), user_id, big_sim)


def test_access_token_expiring_mid_sync_is_invisible(ctx, oauth_1500, big_sim):
    sim, sim_ctx, conn = big_sim, ctx, oauth_1500

    def expire_after_first_page(pages, tasks):
        if pages == 1:
            sim.state.expire_access_tokens()

    result = sync.sync_connection(sim_ctx, conn, progress=expire_after_first_page)
    assert result.outcome == "ok" and result.new == len(mine_upstream(sim)) == 1500
    assert sim.state.counters["token_refreshes"] == 1
    with sim_ctx.session() as s:
        assert s.get(AtlassianConnection, conn).status == "ok"


def test_refresh_token_revoked_mid_sync_ends_in_reconnect_with_nothing_lost(ctx, user_id, oauth_1500, big_sim):
    sim, sim_ctx, conn = big_sim, ctx, oauth_1500
    sync.sync_connection(sim_ctx, conn)
    with sim_ctx.session() as s:
        cards = queue.approve(s, user_id, [p.id for p in queue.list_pending(s, user_id)[:5]])
        for card in cards:
            board.move_card(s, user_id, card.id, "done")
    before = count(sim_ctx, PendingTask, PendingTask.status == "pending")
    sim.state.update_task(next(iter(mine_upstream(sim) - {c.confluence_task_id for c in cards})), status="complete")

    def revoke_after_first_page(pages, tasks):
        if pages == 1:
            sim.state.revoke_all_refresh_tokens()
            sim.state.expire_access_tokens()

    result = sync.sync_connection(sim_ctx, conn, progress=revoke_after_first_page)
    assert result.outcome == "failed" and "Reconnect" in result.error
    with sim_ctx.session() as s:
        stored = s.get(AtlassianConnection, conn)
        assert stored.status == "needs_reconnect"
    assert count(sim_ctx, PendingTask, PendingTask.status == "pending") == before  # the failed fetch removed nothing
    drained = completion.drain(sim_ctx)
    assert drained.failed == 5 and all(sim.state.tasks[c.confluence_task_id].status == "incomplete" for c in cards)

    oauth_connect(sim_ctx, user_id, sim)  # the person reconnects: the waiting completions go out
    assert completion.drain(sim_ctx).sent == 5
    assert all(sim.state.tasks[c.confluence_task_id].status == "complete" for c in cards)
    assert sync.sync_connection(sim_ctx, conn).gone == 1
