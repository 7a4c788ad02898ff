"""A click costs what it shows (issue 15): the Pending rerun, the first load of Pending, Board and Home,
the change stamp, and a card move in a long column, at growing sizes, each beside a like-for-like
baseline measured in the same run (medians of 3 with their range).

    python -m bench.run --only scale
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import event, insert, select

from trackli import board, changes, positions, users
from trackli.models import CARD_STATUSES, AtlassianConnection, Card, PendingTask, utcnow

ROOT = Path(__file__).resolve().parents[1]
SIZES = (2000, 10000, 50000)

BARE_EDITOR = """
import pandas as pd, streamlit as st
from trackli import queue
from trackli.context import Context
from trackli.config import load_settings
ctx = Context.from_settings(load_settings())
with ctx.session() as s:
    rows = queue.list_pending(s, 1, "pending", stable_order=True, limit=200)
st.data_editor(pd.DataFrame({"select": [False] * len(rows), "title": [r.title for r in rows],
                             "due": [r.due_date for r in rows], "project": [r.project or "" for r in rows],
                             "page": [r.page_title or "" for r in rows], "space": [r.space_key or "" for r in rows],
                             "link": [r.url for r in rows]}), key="queue", hide_index=True)
"""

BARE_CLICK = """
import pandas as pd, streamlit as st
from trackli import queue
from trackli.context import Context
from trackli.config import load_settings
ctx = Context.from_settings(load_settings())
with ctx.session() as s:
    rows = queue.list_pending(s, 1, "pending", stable_order=True, limit=200)
every = st.checkbox(f"Select all {len(rows)} shown")
edited = st.data_editor(pd.DataFrame({"select": [every] * len(rows), "title": [r.title for r in rows],
                                      "due": [r.due_date for r in rows], "project": [r.project or "" for r in rows],
                                      "page": [r.page_title or "" for r in rows], "space": [r.space_key or "" for r in rows],
                                      "link": [r.url for r in rows]}), key="queue", hide_index=True)
st.button(f"Approve selected ({int(edited['select'].sum())})")
"""

BARE_BOARD = """
import pandas as pd, streamlit as st
from trackli import board
from trackli.context import Context
from trackli.config import load_settings
ctx = Context.from_settings(load_settings())
with ctx.session() as s:
    rows = [c for status in ("backlog", "todo", "in_progress", "done") for c in board_view.list_cards(s, 1, status=status, limit=200)]
st.dataframe(pd.DataFrame([r.__dict__ for r in rows]))
"""

BARE_HOME = """
import streamlit as st
from sqlalchemy import func, select
from trackli.context import Context
from trackli.config import load_settings
from trackli.models import Card, PendingTask
ctx = Context.from_settings(load_settings())
with ctx.session() as s:
    pending = s.scalar(select(func.count()).select_from(PendingTask).where(PendingTask.user_id == 1, PendingTask.status == "pending"))
    counts = dict(s.execute(select(Card.status, func.count()).where(Card.owner_id == 1).group_by(Card.status)).all())
for column, (label, value) in zip(st.columns(4), [("Waiting", pending)] + sorted(counts.items())):
    column.metric(label, value)
"""


def seed(ctx, pending: int, cards: int, long_column: int = 0) -> int:
    """One person with `pending` queue rows and `cards` cards (`long_column` of them in To do, the
    rest spread over the four columns). Returns the user id."""
    now = utcnow()
    with ctx.session() as session:
        uid = users.ensure_local(session).id
        conn = AtlassianConnection(user_id=uid, kind="api_token", site_url="https://bench.example.net",
                                   site_name="Bench", account_id="bench", scopes="")
        session.add(conn)
        session.flush()
        rows = [{"user_id": uid, "connection_id": conn.id, "confluence_task_id": str(100000 + i),
                 "task_title": f"Task {i} — review the {['plan', 'budget', 'roadmap'][i % 3]}", "task_description": "",
                 "confluence_page_title": f"Page {i % 400}", "confluence_space_key": f"S{i % 20}",
                 "confluence_url": f"https://bench.example.net/wiki/spaces/S/pages/{i % 400}", "status": "pending",
                 "edited_fields": [], "first_seen_at": now, "last_seen_at": now, "created_at": now, "updated_at": now}
                for i in range(pending)]
        for start in range(0, len(rows), 5000):
            session.execute(insert(PendingTask), rows[start:start + 5000])
        statuses = ["todo"] * long_column + [CARD_STATUSES[i % 4] for i in range(cards - long_column)]
        card_rows = [{"owner_id": uid, "title": f"Card {i}", "description": "", "status": status,
                      "position": i * positions.GAP, "created_at": now, "updated_at": now, "source": "manual",
                      "sync_state": "none"} for i, status in enumerate(statuses)]
        for start in range(0, len(card_rows), 5000):
            session.execute(insert(Card), card_rows[start:start + 5000])
    if ctx.dialect == "postgresql":  # what autovacuum would have done by the time anyone looks
        with ctx.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
    return uid


def spread(times: list[float]) -> tuple[float, str]:
    return statistics.median(times), f"[{min(times):.3g}–{max(times):.3g}]"


def apptest_times(make, reruns: int) -> tuple[list[float], list[float]]:
    """First-run times of fresh AppTests (after one warm-up), and rerun times of the last one."""
    firsts, again = [], []
    for i in range(4):
        at = make()
        started = time.perf_counter()
        at.run(timeout=300)
        if i:
            firsts.append(time.perf_counter() - started)
        assert not at.exception, [e.value for e in at.exception]
    for _ in range(reruns):
        started = time.perf_counter()
        at.run(timeout=300)
        again.append(time.perf_counter() - started)
    return firsts, again


def bench_scale(rows: list, url_unused: str) -> None:
    from streamlit.testing.v1 import AppTest

    from bench.run import Row, context, database

    def page(name):
        def make():
            at = AppTest.from_file(str(ROOT / "home.py"), default_timeout=300)
            if name:
                at.switch_page(f"pages/{name}.py")
            return at
        return make

    def bare(script):
        return lambda: AppTest.from_string(script, default_timeout=300)

    stamps: dict[int, float] = {}
    for size in SIZES:
        cards = min(size, 20000)
        with database() as url:
            ctx = context(url)
            os.environ.update({"TRACKLI_DATABASE_URL": url, "TRACKLI_DATA_DIR": tempfile.mkdtemp(),
                               "TRACKLI_SECRETS_FILE": "/nonexistent"})
            uid = seed(ctx, size, cards, long_column=6000 if size == SIZES[-1] else 0)
            first, click = apptest_times(page("pending"), 3)
            bare_first, bare_click = apptest_times(bare(BARE_EDITOR), 3)
            (f, fr), (b, br) = spread(click), spread(bare_click)
            rows.append(Row(f"Pending full-page rerun (AppTest; a click reruns only the grid), {size:,} queue rows {fr}",
                            f, "s", b, f"bare st.data_editor of the 200 rows shown {br}", "flat in size"))
            (f, fr), (b, br) = spread(first), spread(bare_first)
            rows.append(Row(f"Pending first load, {size:,} queue rows {fr}", f, "s", b,
                            f"bare st.data_editor of the rows shown {br}", "≤ 2×"))
            first, _ = apptest_times(page("board"), 0)
            bare_first, _ = apptest_times(bare(BARE_BOARD), 0)
            (f, fr), (b, br) = spread(first), spread(bare_first)
            rows.append(Row(f"Board first load, {cards:,} cards in four columns {fr}", f, "s", b,
                            f"bare st.dataframe of the cards shown {br}", "≤ 2×"))
            first, _ = apptest_times(page(None), 0)
            bare_first, _ = apptest_times(bare(BARE_HOME), 0)
            (f, fr), (b, br) = spread(first), spread(bare_first)
            rows.append(Row(f"Home first load, {size:,} queue rows + {cards:,} cards {fr}", f, "s", b,
                            f"bare page of the same counts {br}", "≤ 2×"))
            with ctx.session() as session:
                started = time.perf_counter()
                for _ in range(200):
                    changes.board_version(session, uid)
                stamps[size + cards] = (time.perf_counter() - started) / 200
            bench_click(rows, url, size)
            if size == SIZES[-1]:
                bench_move(rows, ctx, uid)
                bench_approve_all(rows, ctx, uid, size)
    (small, small_t), (big, big_t) = min(stamps.items()), max(stamps.items())
    rows.append(Row(f"change stamp at {big:,} rows (one primary-key read)", big_t * 1000, "ms", small_t * 1000,
                    f"the same at {small:,} rows", "±20 %"))


def bench_move(rows: list, ctx, uid: int) -> None:
    from bench.run import Row

    written: list[int] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith(("UPDATE TASKS", "INSERT INTO TASKS")):
            written.append(cursor.rowcount)

    with ctx.session() as session:
        column = list(session.scalars(select(Card.id).where(Card.owner_id == uid, Card.status == "todo")
                                      .order_by(Card.position, Card.id)))
    event.listen(ctx.engine, "after_cursor_execute", count)
    times, rows_written = [], []
    try:
        for i in range(5):
            written.clear()
            started = time.perf_counter()
            with ctx.session() as session:  # the top card to the middle of a column of 6,000
                board.move_card(session, uid, column[i], "todo", before=column[3000 + i])
            times.append(time.perf_counter() - started)
            rows_written.append(sum(written))
    finally:
        event.remove(ctx.engine, "after_cursor_execute", count)
    bare = []
    for i in range(5):
        started = time.perf_counter()
        with ctx.session() as session:
            session.get_one(Card, column[10 + i]).description = "touched"
        bare.append(time.perf_counter() - started)
    (f, fr), (b, br) = spread(times), spread(bare)
    rows.append(Row(f"card move in a column of {len(column):,} cards {fr}", f * 1000, "ms", b * 1000,
                    f"one card's UPDATE in its own transaction {br}", "≤ 20 ms"))
    rows.append(Row(f"card move in a column of {len(column):,}: task rows written", max(rows_written), "rows",
                    len(column), "cards in the column", "≤ 2"))


def pending_clicks(browser, address: str, clicks: int = 6) -> list[float]:
    """Seconds per click on Pending's "Select all 200 shown" until the button counts the ticked rows (the first
    click, which warms the page, left out)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(address)
    box = page.get_by_text("Select all 200 shown")
    box.wait_for(timeout=120000)
    page.get_by_role("button", name="Approve selected (0)").wait_for(timeout=120000)
    times = []
    for n in range(clicks + 1):
        started = time.perf_counter()
        box.click()
        page.get_by_role("button", name=f"Approve selected ({0 if n % 2 else 200})").wait_for(timeout=60000)
        times.append(time.perf_counter() - started)
    page.close()
    return times[1:]


def bench_click(rows: list, url: str, size: int) -> None:
    """A click on Pending in Chromium: tick "Select all shown" until the button counts the ticked rows,
    against the same click on a bare page of the same editor and button."""
    from playwright.sync_api import sync_playwright

    from bench.board import CHROMIUM, servers
    from bench.run import Row

    with servers(url, BARE_CLICK) as (app, bare), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])

        mine, theirs = pending_clicks(browser, f"{app.url}/pending"), pending_clicks(browser, bare.url)
        browser.close()
    (f, fr), (b, br) = spread(mine), spread(theirs)
    rows.append(Row(f"Pending click in Chromium (tick all shown → counted), {size:,} queue rows {fr}", f * 1000,
                    "ms", b * 1000, f"the same click on a bare editor of the 200 rows shown {br}", "≤ 1.5×"))


def bench_approve_all(rows: list, ctx, uid: int, size: int) -> None:
    """Approve all: the set-based statements, against the bare INSERT … SELECT of the same cards (rolled back)."""
    from sqlalchemy import text

    from bench.run import Row
    from trackli import queue

    with ctx.engine.connect() as conn:
        started = time.perf_counter()
        conn.execute(text(
            "INSERT INTO tasks (owner_id, title, description, status, position, created_at, updated_at, source, "
            "sync_state) SELECT user_id, task_title, '', 'todo', id, created_at, created_at, 'manual', 'none' "
            "FROM confluence_pending_tasks WHERE user_id = :u AND status = 'pending'"), {"u": uid})
        bare = time.perf_counter() - started
        conn.rollback()
    started = time.perf_counter()
    with ctx.session() as session:
        made = queue.approve_ids(session, uid, all_pending=True)
    elapsed = time.perf_counter() - started
    assert len(made) == size, len(made)
    rows.append(Row(f"Approve all, {size:,} pending tasks (set-based)", elapsed, "s", bare,
                    "one bare INSERT … SELECT of the same rows", "reported"))
