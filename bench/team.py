"""Team-scale sync (issue 16): Atlassian's points and the worker's wall time for 500 connections, each
figure beside its baseline measured in the same run.

- points of a quiet scheduled poll against a full sync of the same connection;
- points an hour for 500 people x 40 open tasks at a 5-minute cadence with hourly sweeps, against
  every poll a full sync (the way Trackli polled before), both from cycles measured here;
- one worker cycle over 500 connections at 150 ms per request against the serial floor (the
  requests that cycle made, one after another);
- two and three `trackli worker --once` processes on one PostgreSQL: connections synced twice.

The simulator serves one account with 40 open tasks; every connection belongs to another Trackli
person and reads that account's tasks, so every connection costs what a person with 40 tasks costs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from sqlalchemy import func, insert, select, update

from trackli import connections, users
from trackli.models import AtlassianConnection, SyncRun, User, utcnow
from trackli.simulator import ME, ME_API_TOKEN
from trackli.worker import Worker

PEOPLE = 500
TASKS = 40
CADENCE_S = 300
SWEEP_S = 3600


def _people(ctx, sim, n: int) -> list[int]:
    """`n` people, each with a connection to the simulated site (the first made by a real connect,
    the others copied from it: connecting 500 times would measure the connect, not the sync)."""
    with ctx.session() as s:
        first = users.ensure(s, "person0@example.com", "Person 0").id
    model = connections.connect_api_token(ctx, first, sim.url, ME[1], ME_API_TOKEN)
    with ctx.session() as s:
        row = s.get(AtlassianConnection, model)
        copy = {c: getattr(row, c) for c in ("kind", "site_url", "cloud_id", "site_name", "account_id", "account_email",
                                             "account_name", "access_token_enc", "scopes", "status")}
        s.execute(insert(User), [{"email": f"person{k}@example.com", "display_name": f"Person {k}", "created_at": utcnow()}
                                 for k in range(1, n)])
        people = list(s.scalars(select(User.id).where(User.id != first).order_by(User.id)))
        s.execute(insert(AtlassianConnection), [copy | {"user_id": p, "created_at": utcnow(), "updated_at": utcnow()}
                                                for p in people])
        return list(s.scalars(select(AtlassianConnection.id).order_by(AtlassianConnection.id)))


def _all_due(ctx) -> None:
    with ctx.session() as s:
        s.execute(update(AtlassianConnection).values(next_sync_at=utcnow()))


def _cycle(ctx, concurrency: int = 8) -> tuple[dict, float, int, int]:
    """One worker cycle over every due connection: (summary, seconds, requests, points)."""
    started = time.perf_counter()
    summary = Worker(ctx, every=CADENCE_S, concurrency=concurrency).cycle()
    elapsed = time.perf_counter() - started
    synced = summary["synced"]
    bad = [r for r in synced if r["outcome"] != "ok"]
    assert not bad and not summary["errors"], (bad[:2], summary["errors"][:2])
    return summary, elapsed, sum(r["requests"] for r in synced), sum(r["points"] for r in synced)


def busy_poll(ctx, sim) -> tuple[dict, int]:
    """A poll of every connection as busy as one in a busy team's hour: 2 tasks arrived and 2 were completed
    upstream since the last. (The cycle's summary, its points.)"""
    for n in range(2):
        sim.http.post("/_admin/tasks", json={"title": f"New this hour {n}", "assigned_to": ME[0]})
    open_ids = [t["id"] for t in sim.http.get("/_admin/tasks").json()
                if t.get("status") == "incomplete" and t.get("assignedTo") == ME[0]]
    for task_id in open_ids[:2]:
        sim.http.post(f"/_admin/tasks/{task_id}", json={"status": "complete"})
    _all_due(ctx)
    busy, _, _, points = _cycle(ctx)
    return busy, points


def bench_team(rows: list, url: str) -> None:
    from bench.run import Row, context, sim_site

    ctx = context(url)
    sim = sim_site(TASKS, 12, 3)
    try:
        ids = _people(ctx, sim, PEOPLE)

        full, full_s, full_requests, full_points = _cycle(ctx)  # the first sync of each: a full sweep
        assert {r["kind"] for r in full["synced"]} == {"full"} and len(full["synced"]) == PEOPLE
        _all_due(ctx)
        quiet, _, _, quiet_points = _cycle(ctx)
        assert {r["kind"] for r in quiet["synced"]} == {"incremental"}
        rows.append(Row(f"points, one quiet scheduled poll ({TASKS} open tasks)", quiet_points / PEOPLE, "points",
                        full_points / PEOPLE, "a full sync of the same connection", "≤ 5 %"))

        busy, busy_points = busy_poll(ctx, sim)
        polls = SWEEP_S // CADENCE_S  # 12 scheduled syncs an hour per connection
        hourly = full_points + (polls - 1) * busy_points
        before = polls * full_points
        rows.append(Row(f"points an hour, {PEOPLE} people × {TASKS} open tasks, {CADENCE_S // 60}-min cadence, hourly "
                        "sweep (every poll as busy as one with 2 new and 2 completed tasks)", hourly, "points", before,
                        "every poll a full sync", "≤ 65,000"))

        # 500 connections at 150 ms a request: the bounded pool against one connection after another.
        sim.configure(latency_ms=150)
        _all_due(ctx)
        _, elapsed, requests, _ = _cycle(ctx, concurrency=8)
        floor = requests * 0.150
        rows.append(Row(f"one worker cycle, {PEOPLE} connections, 150 ms a request, concurrency 8", elapsed, "s", floor,
                        f"serial floor ({requests} requests × 150 ms)", "≥ 6× faster (≤ 0.167×)"))

        if ctx.settings.database_url.startswith("postgresql"):
            sim.configure(latency_ms=20)
            env = {**os.environ, "TRACKLI_DATABASE_URL": ctx.settings.database_url,
                   "TRACKLI_DATA_DIR": str(ctx.settings.data_dir), "TRACKLI_SECRETS_FILE": "/nonexistent"}
            for workers in (2, 3):
                _all_due(ctx)
                with ctx.session() as s:
                    before_id = s.scalar(select(func.coalesce(func.max(SyncRun.id), 0)))
                procs = [subprocess.Popen([sys.executable, "-m", "trackli", "worker", "--once", "--json"], env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                         for _ in range(workers)]
                errors = [p.communicate(timeout=600)[1] for p in procs]
                assert all(p.returncode == 0 for p in procs), errors
                with ctx.session() as s:
                    counts = list(s.scalars(select(func.count()).where(SyncRun.id > before_id)
                                            .group_by(SyncRun.connection_id)))
                doubles = sum(1 for c in counts if c > 1)
                assert len(counts) == len(ids), (len(counts), len(ids))
                rows.append(Row(f"{workers} workers on one PostgreSQL, {PEOPLE} due connections: synced twice",
                                doubles, "connections", len(counts), "connections synced", "= 0"))
    finally:
        sim.stop()
