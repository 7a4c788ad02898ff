"""The board in Chromium (Playwright): how soon 1,000 cards can be dragged, how soon a drop is saved,
and whether 10,000 cards still draw and scroll — each beside a baseline measured in the same run.

    python -m bench.run --only board

- "draggable": from navigation until every column of the component holds its first page of cards,
  against a bare `st.dataframe` of the same rows (read the same way) until its grid is drawn.
- "move saved": from the drop (a listener on the board) until the server's redraw shows the card
  in its new column, no longer "Saving…" (the move is committed before the redraw is sent), against a
  bare app's button round trip (click → rerun → new text).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import insert

from trackli import positions, users
from trackli.models import CARD_STATUSES, Card, utcnow
from trackli.simulator import free_port

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

BARE_BOARD = """
import pandas as pd, streamlit as st
from trackli import board
from trackli.context import Context
from trackli.config import load_settings
ctx = Context.from_settings(load_settings())
with ctx.session() as s:
    rows = board.list_cards(s, 1)
st.dataframe(pd.DataFrame([r.__dict__ for r in rows]))
if st.button("Again"):
    st.session_state["n"] = st.session_state.get("n", 0) + 1
st.write(f"clicked {st.session_state.get('n', 0)}")
"""

GRID_DRAWN = """() => {
    const canvas = document.querySelector('[data-testid="stDataFrame"] canvas');
    return !!(canvas && canvas.width && canvas.height);
}"""

BOARD_READY = """(n) => {
    const host = [...document.querySelectorAll('*')].find(e => e.shadowRoot && e.shadowRoot.querySelector('.tk-board'));
    if (!host) return false;
    const cols = host.shadowRoot.querySelectorAll('.tk-cards');
    return cols.length === 4 && [...cols].every(c => c.querySelectorAll('.tk-card').length >= n);
}"""

WATCH_DROP = """() => {
    const host = [...document.querySelectorAll('*')].find(e => e.shadowRoot && e.shadowRoot.querySelector('.tk-board'));
    const root = host.shadowRoot.querySelector('.tk-board');
    window.__drop = null; window.__drawn = null;
    root.addEventListener('drop', () => { window.__drop = performance.now(); window.__drawn = null; }, true);
    new MutationObserver(() => {
        if (window.__drop && !window.__drawn && !root.querySelector('.saving')) window.__drawn = performance.now();
    }).observe(root, {childList: true, subtree: true});
}"""


def seed(ctx, count: int) -> None:
    """`count` cards, a quarter in each column, spread as the board spreads them."""
    with ctx.session() as session:
        uid = users.ensure_local(session).id
        now = utcnow()
        per = count // len(CARD_STATUSES)
        rows = [{"owner_id": uid, "title": f"Card {i:05d} — review the {['plan', 'budget', 'roadmap'][i % 3]}",
                 "description": "", "status": status, "position": i * positions.GAP, "created_at": now, "updated_at": now,
                 "source": "manual", "sync_state": "none"}
                for status in CARD_STATUSES for i in range(per)]
        for start in range(0, len(rows), 2000):
            session.execute(insert(Card), rows[start:start + 2000])


class Server:
    def __init__(self, script: Path, env: dict[str, str]):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(script), "--server.port", str(self.port),
             "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/_stcore/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError(f"{script} did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@contextmanager
def servers(url: str, bare_source: str) -> Iterator[tuple[Server, Server]]:
    """Trackli's dashboard and a bare baseline app, both on the database at `url`, stopped afterwards."""
    data_dir = tempfile.mkdtemp()
    env = {"TRACKLI_DATABASE_URL": url, "TRACKLI_DATA_DIR": data_dir, "TRACKLI_SECRETS_FILE": "/nonexistent"}
    bare_script = Path(data_dir) / "bare.py"
    bare_script.write_text(bare_source)
    app, bare = Server(ROOT / "app.py", env), Server(bare_script, env)
    try:
        yield app, bare
    finally:
        app.stop()
        bare.stop()


def _median_load(browser, url: str, ready: str, arg=None, runs: int = 3) -> float:
    times = []
    for _ in range(runs + 1):  # the first load warms the server's imports and caches
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        started = time.perf_counter()
        page.goto(url)
        page.wait_for_function(ready, arg=arg, timeout=120000, polling=50)
        times.append(time.perf_counter() - started)
        page.close()
    return statistics.median(times[1:])


def bench_board(rows: list, url: str) -> None:
    from playwright.sync_api import sync_playwright

    from bench.run import Row, context

    ctx = context(url)
    seed(ctx, 1000)
    with servers(url, BARE_BOARD) as (app, bare), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        board_s = _median_load(browser, f"{app.url}/board", BOARD_READY, 1)
        bare_s = _median_load(browser, bare.url, GRID_DRAWN)
        rows.append(Row("board, 1,000 cards: draggable after navigation (Chromium)", board_s, "s", bare_s,
                        "bare st.dataframe of the same rows drawn", "≤ 2×"))

        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{app.url}/board")
        page.wait_for_function(BOARD_READY, arg=1, timeout=120000)
        page.evaluate(WATCH_DROP)
        moves = []
        for i in range(6):
            source = page.locator(f'.tk-cards[data-status="{CARD_STATUSES[i % 4]}"] .tk-card').nth(3)
            target = page.locator(f'.tk-cards[data-status="{CARD_STATUSES[(i + 1) % 4]}"] .tk-card').nth(2)
            source.drag_to(target)
            page.wait_for_function("() => window.__drawn !== null", timeout=30000, polling=20)
            moves.append((page.evaluate("window.__drawn - window.__drop")) / 1000)
        page.close()
        page = browser.new_page()
        page.goto(bare.url)
        page.wait_for_function(GRID_DRAWN, timeout=120000)
        clicks = []
        for n in range(1, 7):
            started = time.perf_counter()
            page.get_by_role("button", name="Again").click()
            page.get_by_text(f"clicked {n}").wait_for()
            clicks.append(time.perf_counter() - started)
        page.close()
        rows.append(Row("board, 1,000 cards: a drop saved and redrawn (median of 6)", statistics.median(moves) * 1000,
                        "ms", statistics.median(clicks) * 1000, "bare app: button click → rerun → redrawn",
                        "≤ 300 ms"))

        seed(ctx, 9000)  # 10,000 in all
        big_s = _median_load(browser, f"{app.url}/board", BOARD_READY, 1, runs=2)
        big_bare = _median_load(browser, bare.url, GRID_DRAWN, runs=2)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{app.url}/board")
        page.wait_for_function(BOARD_READY, arg=1, timeout=120000)
        started = time.perf_counter()
        for status in CARD_STATUSES:
            page.locator(f'.tk-cards[data-status="{status}"]').evaluate("el => el.scrollTop = el.scrollHeight")
            page.locator(f'.tk-cards[data-status="{status}"] .tk-card').last.wait_for()
        scrolled = time.perf_counter() - started
        started = time.perf_counter()
        page.locator('.tk-column[data-status="todo"] .tk-show-more').click()
        page.wait_for_function("""() => {
            const host = [...document.querySelectorAll('*')].find(e => e.shadowRoot && e.shadowRoot.querySelector('.tk-board'));
            return host.shadowRoot.querySelectorAll('.tk-cards[data-status="todo"] .tk-card').length >= 400;
        }""", timeout=60000)
        more = time.perf_counter() - started
        page.close()
        rows.append(Row("board, 10,000 cards: drawn (200 a column, counts of all)", big_s, "s", big_bare,
                        "bare st.dataframe of the same 10,000 rows", "reported"))
        rows.append(Row("board, 10,000 cards: every column scrolled to its end", scrolled * 1000, "ms",
                        more * 1000, "'Show more' (200 more cards in a column)", "reported"))
        browser.close()
