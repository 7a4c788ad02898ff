"""Live: new work brought to the person (issue 22), each figure beside a baseline measured in the same run.

    python -m bench.run --only live

- arrival: from a task created upstream to shown in an open Board tab (Chromium), the dashboard's own
  scheduler polling at the defaults (live 45 s, the tab's 5 s look for changes), the simulator at
  150 ms a request; p50 and p95 over 10 arrivals at random moments. Baseline: the floor — one
  incremental poll's own time plus the tab's redraw, as if a poll began the moment the task appeared.
- points an hour: 500 people × 40 open tasks (50 with a tab open, 200 seen today, 250 not seen today),
  every poll as busy as one with 2 new and 2 completed tasks, from polls and sweeps measured here;
  against the same team at one 5-minute cadence for all (last round's 61,500, no live polling).
- a Pending click (tick all shown → counted) while the dashboard's scheduler syncs 100 connections in
  the background, against the same click with the scheduler off.
- the board with 1,000 waiting tasks and 1,000 cards: draggable after navigation, against a bare
  `st.dataframe` of the same 2,000 rows.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import update

from bench.board import CHROMIUM, GRID_DRAWN, Server, _median_load
from bench.scale import pending_clicks, seed
from trackli import connections, users
from trackli.models import AtlassianConnection, User, utcnow
from trackli.simulator import ME, ME_API_TOKEN

ROOT = Path(__file__).resolve().parents[1]

IN_BOARD = """(title) => {
    const host = [...document.querySelectorAll('*')].find(e => e.shadowRoot && e.shadowRoot.querySelector('.tk-board'));
    if (!host) return false;
    return [...host.shadowRoot.querySelectorAll('.tk-inbox .tk-title')].some(t => t.textContent === title);
}"""

INBOX_READY = """() => {
    const host = [...document.querySelectorAll('*')].find(e => e.shadowRoot && e.shadowRoot.querySelector('.tk-board'));
    return !!host && host.shadowRoot.querySelectorAll('.tk-inbox .tk-task').length > 0;
}"""

BOARD_AND_INBOX_READY = """(n) => {
    const host = [...document.querySelectorAll('*')].find(e => e.shadowRoot && e.shadowRoot.querySelector('.tk-board'));
    if (!host) return false;
    const root = host.shadowRoot;
    const cols = root.querySelectorAll('.tk-cards[data-status]');
    return cols.length === 4 && [...cols].every(c => c.querySelectorAll('.tk-card').length >= n)
        && root.querySelectorAll('.tk-inbox .tk-task').length >= n;
}"""

BARE_BOTH = """
import pandas as pd, streamlit as st
from trackli import board, queue
from trackli.context import Context
from trackli.config import load_settings
ctx = Context.from_settings(load_settings())
with ctx.session() as s:
    cards = [c for status in ("backlog", "todo", "in_progress", "done") for c in board_view.list_cards(s, 1, status=status, limit=200)]
    waiting = queue.list_pending(s, 1, limit=200)
st.dataframe(pd.DataFrame([{"title": c.title, "status": c.status} for c in cards]
                          + [{"title": r.title, "status": "inbox"} for r in waiting]))
"""


def _env(url: str, ctx=None, **extra: str) -> dict[str, str]:
    """A dashboard's environment: the bench's database and, when given, its context's data directory (its
    secret key: the connections the bench made must decrypt there)."""
    data_dir = str(ctx.settings.data_dir) if ctx is not None else tempfile.mkdtemp()
    return {"TRACKLI_DATABASE_URL": url, "TRACKLI_DATA_DIR": data_dir, "TRACKLI_SECRETS_FILE": "/nonexistent", **extra}


def bench_arrival(rows: list, url: str, arrivals: int = 10) -> None:
    from playwright.sync_api import sync_playwright

    from bench.run import Row, context, sim_site
    from trackli import sync

    ctx = context(url)
    sim = sim_site(40, 12, 3)
    try:
        with ctx.session() as s:
            uid = users.ensure_local(s).id
        conn = connections.connect_api_token(ctx, uid, sim.url, ME[1], ME_API_TOKEN)
        sync.sync_connection(ctx, conn)
        sim.configure(latency_ms=150)
        floor_poll = []
        for _ in range(3):  # the floor: one incremental poll of a quiet account
            with ctx.session() as s:
                s.execute(update(AtlassianConnection).values(next_sync_at=utcnow()))
            started = time.perf_counter()
            sync.sync_connection(ctx, conn, "scheduled")
            floor_poll.append(time.perf_counter() - started)
        app = Server(ROOT / "app.py", _env(url, ctx, ATLASSIAN_API_URL=sim.url, ATLASSIAN_AUTH_URL=sim.url))
        waits, redraws = [], []
        rng = random.Random(7)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                started = time.perf_counter()
                page.goto(f"{app.url}/board")
                page.wait_for_function(INBOX_READY, timeout=120000, polling=100)
                redraws.append(time.perf_counter() - started)
                for n in range(arrivals):
                    time.sleep(rng.uniform(0, 45))  # a moment anywhere in the live cadence
                    title = f"Arrival {n} — reply to the review"
                    sim.http.post("/_admin/tasks", json={"title": title, "assigned_to": ME[0]}).raise_for_status()
                    created = time.perf_counter()
                    page.wait_for_function(IN_BOARD, arg=title, timeout=180000, polling=100)
                    waits.append(time.perf_counter() - created)
                browser.close()
        finally:
            app.stop()
    finally:
        sim.stop()
    waits.sort()
    p50 = statistics.median(waits)
    p95 = waits[min(len(waits) - 1, round(0.95 * (len(waits) - 1)))]
    floor = statistics.median(floor_poll) + 5.0 / 2 + min(redraws)  # a poll, half the tab's 5 s look, a redraw
    rows.append(Row(f"arrival in an open Board tab, p50 of {len(waits)} (live cadence 45 s, 150 ms a request)", p50, "s",
                    floor, "a poll starting the moment the task appears + the tab's look + a redraw", "reported"))
    rows.append(Row(f"arrival in an open Board tab, p95 of {len(waits)}", p95, "s", floor, "the same floor", "≤ 60 s"))


def bench_points(rows: list, url: str) -> None:
    """Points an hour for a team by presence, from a full sweep and a busy poll measured on the simulator."""
    from bench.run import Row, context, sim_site
    from bench.team import PEOPLE, TASKS, _cycle, _people, busy_poll

    ctx = context(url)
    sim = sim_site(TASKS, 12, 3)
    try:
        _people(ctx, sim, PEOPLE)
        _, _, _, full_points = _cycle(ctx)
        busy, busy_points = busy_poll(ctx, sim)
        assert {r["kind"] for r in busy["synced"]} == {"incremental"}
    finally:
        sim.stop()
    sweep, poll = full_points / PEOPLE, busy_points / PEOPLE
    s = ctx.settings
    mix = {"live": 50, "today": 200, "idle": 250}
    from trackli import presence

    def hourly(kind: str) -> float:
        syncs = 3600 / presence.every_for(s, kind, s.sync_every_s)  # type: ignore[arg-type]
        sweeps = 3600 / presence.sweep_every(s, kind)  # type: ignore[arg-type]
        return sweeps * sweep + max(0.0, syncs - sweeps) * poll

    with_live = sum(n * hourly(kind) for kind, n in mix.items())
    before = PEOPLE * (sweep + (3600 / s.sync_every_s - 1) * poll)
    rows.append(Row(f"points an hour, {PEOPLE} people × {TASKS} tasks: 50 live (45 s), 200 today (300 s), 250 idle "
                    f"(1800 s, swept every 2 h); every poll as busy as 2 new + 2 completed (sweep {sweep:.0f}, poll "
                    f"{poll:.1f} points)", with_live, "points", before, "all 500 at 300 s, no live polling", "≤ 65,000"))


def bench_click_beside_scheduler(rows: list, url: str) -> None:
    """The Pending click with the dashboard's scheduler syncing 100 connections in the background vs off."""
    from playwright.sync_api import sync_playwright

    from bench.run import Row, context, sim_site
    from bench.team import _people

    ctx = context(url)
    seed(ctx, 2000, 0)
    sim = sim_site(40, 12, 3)
    try:
        ids = _people(ctx, sim, 101)[1:]  # 100 other people's connections (the first person is the seeded one)
        sim.configure(latency_ms=150)

        def clicks(scheduler: str) -> list[float]:
            with ctx.session() as s:  # every connection due, and due again at once after each sync
                s.execute(update(AtlassianConnection).where(AtlassianConnection.id.in_(ids)).values(next_sync_at=utcnow()))
            app = Server(ROOT / "app.py", _env(url, ctx, TRACKLI_EMBEDDED_WORKER=scheduler, TRACKLI_SYNC_EVERY_S="1",
                                               ATLASSIAN_API_URL=sim.url, ATLASSIAN_AUTH_URL=sim.url))
            try:
                with sync_playwright() as p:
                    browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
                    times = pending_clicks(browser, f"{app.url}/pending", clicks=8)
                    browser.close()
            finally:
                app.stop()
            return times

        off = clicks("off")
        on = clicks("on")
        with ctx.session() as s:
            from sqlalchemy import func, select

            from trackli.models import SyncRun
            synced = s.scalar(select(func.count()).select_from(SyncRun).where(SyncRun.outcome == "ok")) or 0
            failed = s.scalar(select(func.count()).select_from(SyncRun).where(SyncRun.outcome == "failed")) or 0
        assert synced and not failed, (synced, failed)  # the scheduler really synced beside the clicks
    finally:
        sim.stop()
    rows.append(Row(f"Pending click (2,000 waiting) while the dashboard's scheduler syncs 100 connections "
                    f"({synced} syncs ran)", statistics.median(on) * 1000, "ms", statistics.median(off) * 1000,
                    "the same click, the scheduler off", "≤ 1.2×"))


def bench_board_inbox(rows: list, url: str) -> None:
    from playwright.sync_api import sync_playwright

    from bench.run import Row, context

    ctx = context(url)
    seed(ctx, 1000, 1000)
    with ctx.session() as s:
        s.execute(update(User).values(inbox_open=True))
    data_dir = tempfile.mkdtemp()
    bare_script = Path(data_dir) / "bare.py"
    bare_script.write_text(BARE_BOTH)
    app, bare = Server(ROOT / "app.py", _env(url)), Server(bare_script, _env(url))
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            board_s = _median_load(browser, f"{app.url}/board", BOARD_AND_INBOX_READY, 1)
            bare_s = _median_load(browser, bare.url, GRID_DRAWN)
            browser.close()
    finally:
        app.stop()
        bare.stop()
    rows.append(Row("board, 1,000 waiting tasks + 1,000 cards: draggable after navigation (Chromium)", board_s, "s",
                    bare_s, "bare st.dataframe of the same rows drawn", "≤ 2×"))


def bench_live(rows: list, url: str) -> None:
    from bench.run import database

    for fn in (bench_points, bench_board_inbox, bench_click_beside_scheduler, bench_arrival):
        with database() as fresh:
            fn(rows, fresh)
