"""Fairness between people on one deployment (issue 24), each figure beside a baseline measured in the same run.

    python -m bench.run --only fairness

- another person's sync cadence on a serving worker (`--every 1`, concurrency 4) while one tarpit
  connection (each answer takes 2.5 s, inside the timeouts, so it never backs off) shares the worker,
  against the same worker and cadence without the tarpit;
- a sync bringing 1,000 new tasks, routed by 200 worst-case rules (10 one-letter words each: every rule
  looks at every task and fails on its last word), against the same sync with no rules.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import func, select

from trackli import connections, rules, sync, users
from trackli.models import SyncRun
from trackli.simulator import ME, ME_API_TOKEN
from trackli.worker import Worker

WINDOW_S = 30.0


def _syncs_of(ctx, connection_id: int, window: float) -> int:
    worker = Worker(ctx, every=1, concurrency=4)
    serving = threading.Thread(target=worker.run, daemon=True)
    with ctx.session() as s:
        before = s.scalar(select(func.count()).where(SyncRun.connection_id == connection_id)) or 0
    serving.start()
    time.sleep(window)
    worker.stop_event.set()
    serving.join(timeout=60)
    with ctx.session() as s:
        return (s.scalar(select(func.count()).where(SyncRun.connection_id == connection_id)) or 0) - before


def bench_tarpit(rows: list, url: str) -> None:
    from bench.run import Row, context, sim_site
    from tests.reliability.hostile import EMAIL, TOKEN, Server, page, site, task

    ctx = context(url)
    sim = sim_site(40, 12, 3)
    tarpit = Server().start()
    try:
        with ctx.session() as s:
            mine = users.ensure(s, "me@example.com", "Me").id
            slow = users.ensure(s, "slow@example.com", "Slow").id
        good = connections.connect_api_token(ctx, mine, sim.url, ME[1], ME_API_TOKEN)
        alone = _syncs_of(ctx, good, WINDOW_S)
        tarpit.routes.update(site(page([task(1)])))
        bad = connections.connect_api_token(ctx, slow, tarpit.url, EMAIL, TOKEN)

        def crawl(handler):
            time.sleep(2.5)
            page([task(1)])(handler)
        tarpit.routes["/wiki/api/v2/tasks"] = crawl
        beside = _syncs_of(ctx, good, WINDOW_S)
        with ctx.session() as s:
            slow_syncs = s.scalar(select(func.count()).where(SyncRun.connection_id == bad)) or 0
    finally:
        tarpit.stop()
        sim.stop()
    rows.append(Row(f"another person's syncs in {WINDOW_S:g} s (cadence 1 s) beside a tarpit connection "
                    f"({slow_syncs} tarpit syncs)", beside, "syncs", alone, "the same worker without the tarpit",
                    "≥ 0.9×"))


def bench_rules(rows: list, url: str) -> None:
    from bench.run import Row, context, database, sim_site

    sim = sim_site(1000, 60, 6)
    try:
        times = {}
        for with_rules in (False, True):
            with database() as fresh:
                ctx = context(fresh)
                with ctx.session() as s:
                    uid = users.ensure_local(s).id
                    if with_rules:
                        letters = "abcdefghiq"  # q begins no word of the simulator's titles: each rule fails last
                        for n in range(200):
                            words = " ".join(letters[(n + k) % 9] for k in range(9)) + " q"
                            rules.add_rule(s, uid, title_has=words, dismiss=True)
                conn = connections.connect_api_token(ctx, uid, sim.url, ME[1], ME_API_TOKEN)
                started = time.perf_counter()
                result = sync.sync_connection(ctx, conn)
                times[with_rules] = time.perf_counter() - started
                assert result.outcome == "ok" and result.new >= 1000, result
    finally:
        sim.stop()
    rows.append(Row("a sync of 1,000 new tasks routed by 200 worst-case rules (10 words each)", times[True], "s",
                    times[False], "the same sync, no rules", "≤ 3×"))


def bench_fairness(rows: list, url: str) -> None:
    from bench.run import database

    for fn in (bench_rules, bench_tarpit):
        with database() as fresh:
            fn(rows, fresh)
