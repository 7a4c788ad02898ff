"""Issue 17's costs, each beside its baseline measured in the same run:

- a sync of 5,000 incoming tasks with 50 rules on, against the same sync with the rules switched off
  (fresh databases holding the same rules, alternating, median of 5 each);
- the calendar feed of 1,000 cards fetched over HTTP from `streamlit run app.py`, against a bare
  rendering of the same rows with `icalendar` (no database, no HTTP), median of 15 each.
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
from pathlib import Path

import httpx
from sqlalchemy import insert

from trackli import connections, feed, positions, projects, rules, sync, users
from trackli.models import CARD_STATUSES, Card, utcnow
from trackli.simulator import ME, ME_API_TOKEN

TASKS = 5000
RULES = 50
CARDS = 1000


def _rules(ctx, user_id: int, approve: bool = False) -> None:
    """50 rules of every kind of condition; two route a third of the incoming tasks, the rest match none.
    With `approve`, the last one approves what it matches into To do (a card made per task)."""
    with ctx.session() as s:
        for n in range(RULES - 2):
            kind = n % 4
            if kind == 0:
                rules.add_rule(s, user_id, space=f"NOPE{n}", project="Elsewhere")
            elif kind == 1:
                rules.add_rule(s, user_id, title_has=f"never-{n} words", dismiss=True)
            elif kind == 2:
                rules.add_rule(s, user_id, page_has=f"no page {n}", has_due=True, due_within=n, snooze_days=2)
            else:
                rules.add_rule(s, user_id, created_by=f"acc-{n}", project="People", approve_to="backlog")
        rules.add_rule(s, user_id, title_has="budget", project="Finance")
        rules.add_rule(s, user_id, has_due=True, due_within=7, project="Soon", approve_to="todo" if approve else None)


class _Stopwatch:
    """Time spent inside the rules' own steps during a sync (routing, and approvals + audit after it)."""

    def __init__(self) -> None:
        self.spent = 0.0
        self.originals = {name: getattr(rules, name) for name in ("route_incoming", "finish_incoming")}

    def __enter__(self) -> "_Stopwatch":
        for name, original in self.originals.items():
            def timed(*args, _original=original, **kwargs):
                started = time.perf_counter()
                try:
                    return _original(*args, **kwargs)
                finally:
                    self.spent += time.perf_counter() - started
            setattr(rules, name, timed)
        return self

    def __exit__(self, *exc) -> None:
        for name, original in self.originals.items():
            setattr(rules, name, original)


def _one_sync(sim_url: str, with_rules: bool, approve: bool = False) -> tuple[float, int, float]:
    """One first sync on a fresh database holding the 50 rules, switched on or off (the same writes
    before the timed sync either way)."""
    import gc

    from bench.run import context, database

    with database() as url:
        ctx = context(url)
        with ctx.session() as s:
            uid = users.ensure_local(s).id
        conn = connections.connect_api_token(ctx, uid, sim_url, ME[1], ME_API_TOKEN)
        _rules(ctx, uid, approve)
        if not with_rules:
            with ctx.session() as s:
                for rule in rules.list_rules(s, uid):
                    rules.set_enabled(s, uid, rule.id, False)
        gc.collect()
        with _Stopwatch() as own:
            started = time.perf_counter()
            result = sync.sync_connection(ctx, conn)
            elapsed = time.perf_counter() - started
        assert result.outcome == "ok" and result.new == TASKS, result
        return elapsed, result.routed, own.spent


def bench_rules(rows: list, url: str) -> None:
    from bench.run import Row, sim_site

    sim = sim_site(TASKS, 400, 20)
    try:
        plain, ruled, approving, own, routed, approved = [], [], [], [], 0, 0
        for _ in range(5):  # alternating, so a slow moment of the machine hits each the same
            plain.append(_one_sync(sim.url, False)[0])
            seconds, routed, inside = _one_sync(sim.url, True)
            ruled.append(seconds)
            own.append(inside)
            seconds, approved, _ = _one_sync(sim.url, True, approve=True)
            approving.append(seconds)
        rows.append(Row(f"sync of {TASKS:,} incoming tasks with {RULES} rules on ({routed:,} routed: projects set, "
                        "dismissed, snoozed)", statistics.median(ruled), "s", statistics.median(plain),
                        "the same sync, rules off", "< 1.10×"))
        rows.append(Row("… of which the rules' own steps inside that sync (routing, audit)", statistics.median(own), "s",
                        statistics.median(plain), "the same sync, rules off", "< 0.10×"))
        rows.append(Row(f"… the same, one rule approving ~1,100 of them into To do (a card each; {approved:,} routed)",
                        statistics.median(approving), "s", statistics.median(plain), "the same sync, rules off",
                        "reported"))
    finally:
        sim.stop()


def _seed_cards(ctx, user_id: int) -> None:
    today = dt.date.today()
    with ctx.session() as s:
        project = projects.create_project(s, user_id, "Platform").id
        now = utcnow()
        open_columns = [c for c in CARD_STATUSES if c != "done"]
        s.execute(insert(Card), [{
            "owner_id": user_id, "title": f"Card {i:04d}: review the budget, plan; ship", "description": "",
            "status": open_columns[i % 3], "position": i * positions.GAP, "created_at": now, "updated_at": now,
            "source": "confluence", "sync_state": "synced", "project_id": project if i % 2 else None,
            "due_date": today + dt.timedelta(days=i % 60), "confluence_task_id": str(100000 + i),
            "confluence_url": f"https://acme.atlassian.net/wiki/spaces/ENG/pages/{i}"} for i in range(CARDS)])


def bench_feed(rows: list, url: str) -> None:
    from bench.board import Server
    from bench.run import Row, context

    ctx = context(url)
    with ctx.session() as s:
        uid = users.ensure_local(s).id
    _seed_cards(ctx, uid)
    data_dir = str(ctx.settings.data_dir)
    with ctx.session() as s:
        link = feed.turn_on(ctx, s, uid)
    token = link.rsplit("/", 1)[1]
    app = Server(Path(__file__).resolve().parents[1] / "app.py",
                 {"TRACKLI_DATABASE_URL": url, "TRACKLI_DATA_DIR": data_dir, "TRACKLI_SECRETS_FILE": "/nonexistent"})
    try:
        with httpx.Client(base_url=app.url, timeout=60) as http:
            first = http.get(f"/feeds/{token}")
            assert first.status_code == 200 and first.content.count(b"BEGIN:VEVENT") == CARDS
            served = []
            for _ in range(15):
                started = time.perf_counter()
                answer = http.get(f"/feeds/{token}")
                served.append(time.perf_counter() - started)
                assert answer.status_code == 200
            polled = []
            for _ in range(15):
                started = time.perf_counter()
                assert http.get(f"/feeds/{token}", headers={"If-None-Match": first.headers["etag"]}).status_code == 304
                polled.append(time.perf_counter() - started)
        with ctx.session() as s:
            user = s.get(feed.User, uid)
            entries = feed.entries(s, user)
        bare = []
        for _ in range(15):
            started = time.perf_counter()
            feed.render(entries, "Local user")
            bare.append(time.perf_counter() - started)
    finally:
        app.stop()
    baseline = statistics.median(bare)
    rows.append(Row(f"calendar feed of {CARDS:,} cards over HTTP from the dashboard", statistics.median(served) * 1000,
                    "ms", baseline * 1000, "bare icalendar rendering of the same rows", "< 2×"))
    rows.append(Row("calendar feed polled with If-None-Match (304)", statistics.median(polled) * 1000, "ms",
                    baseline * 1000, "bare rendering", "almost nothing"))


def bench_triage(rows: list, url: str) -> None:
    bench_rules(rows, url)
    bench_feed(rows, url)

