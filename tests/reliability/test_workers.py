"""Any number of workers on one PostgreSQL: each due connection synced by exactly one of them (issue 16)."""

import os
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from tests.conftest import PG_URL
from tests.integration.test_scheduler import people_with_connections
from trackli.models import AtlassianConnection, SyncRun


@pytest.mark.skipif(not PG_URL, reason="several workers share a PostgreSQL (SQLite runs one worker)")
def test_three_worker_processes_sync_each_of_100_connections_exactly_once_per_cadence(sim_ctx, sim, env):
    ids = people_with_connections(sim_ctx, sim, 100)
    sim.state.knobs.latency_ms = 20
    command = [sys.executable, "-m", "trackli", "worker", "--once", "--json", "--concurrency", "8"]
    workers = [subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for _ in range(3)]
    outputs = [w.communicate(timeout=240) for w in workers]
    assert [w.returncode for w in workers] == [0, 0, 0], [err[-2000:] for _, err in outputs]

    with sim_ctx.session() as s:
        runs = dict(s.execute(select(SyncRun.connection_id, func.count()).where(SyncRun.trigger == "scheduled")
                              .group_by(SyncRun.connection_id)).all())
        outcomes = set(s.scalars(select(SyncRun.outcome)))
        unclaimed = s.scalar(select(func.count()).select_from(AtlassianConnection).where(
            AtlassianConnection.claimed_by.isnot(None)))
    assert runs == {i: 1 for i in ids}  # every connection once, none twice
    assert outcomes == {"ok"} and unclaimed == 0
    shares = [out.count('"connection_id"') for out, _ in outputs]
    assert sum(shares) == 100 and sum(1 for n in shares if n) >= 2, shares  # the work was shared

    # A second round right away finds nothing due: the cadence has not come round.
    again = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and '"connection_id"' not in again.stdout


@pytest.mark.skipif(not PG_URL, reason="several schedulers share a PostgreSQL (SQLite runs one)")
def test_two_dashboards_and_a_worker_sync_no_connection_twice_in_a_cycle(sim_ctx, sim, env):
    """Two `streamlit run app.py` (each with its own scheduler, started with the server) and a
    `trackli worker` on one database: 60 due connections, each synced once, by one of them."""
    import time

    from tests.browser.conftest import AppServer
    from trackli.simulator import free_port

    import datetime as dt

    from sqlalchemy import update

    from trackli.models import utcnow

    ids = people_with_connections(sim_ctx, sim, 60)
    with sim_ctx.session() as s:  # due together once every scheduler is up, so they race for the same rows
        s.execute(update(AtlassianConnection).values(next_sync_at=utcnow() + dt.timedelta(seconds=20)))
    sim.state.knobs.latency_ms = 100
    scheduled = {**env, "ATLASSIAN_API_URL": sim.url, "ATLASSIAN_AUTH_URL": sim.url, "TRACKLI_EMBEDDED_WORKER": "on",
                 "TRACKLI_SYNC_EVERY_S": "600", "TRACKLI_WORKER_CONCURRENCY": "4"}
    dashboards = [AppServer(scheduled, free_port()).start() for _ in range(2)]
    worker = subprocess.Popen([sys.executable, "-m", "trackli", "worker", "--json", "--concurrency", "4"],
                              env={**os.environ, **scheduled}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with sim_ctx.session() as s:
                done = s.scalar(select(func.count(func.distinct(SyncRun.connection_id))).where(SyncRun.outcome == "ok"))
            if done == len(ids):
                break
            time.sleep(0.5)
        time.sleep(3)  # long enough for a second sync of anything claimed twice to show
        with sim_ctx.session() as s:
            runs = dict(s.execute(select(SyncRun.connection_id, func.count()).group_by(SyncRun.connection_id)).all())
            by = dict(s.execute(select(AtlassianConnection.last_synced_by, func.count())
                                .group_by(AtlassianConnection.last_synced_by)).all())
    finally:
        worker.terminate()
        out, err = worker.communicate(timeout=60)
        for dashboard in dashboards:
            dashboard.stop()
    assert runs == {i: 1 for i in ids}, {k: v for k, v in runs.items() if v != 1}
    assert worker.returncode == 0, err[-2000:]
    kinds = {name.split(":", 1)[0] for name in by if name}
    assert kinds == {"dashboard", "worker"} and len(by) >= 2, by  # the dashboards and the worker shared the work
