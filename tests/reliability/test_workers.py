"""Any number of workers on one PostgreSQL: each due connection synced by exactly one of them (issue 16)."""

import os
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from tests.conftest import PG_URL
from tests.test_scheduler import people_with_connections
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
