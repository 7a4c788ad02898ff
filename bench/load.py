"""Twenty people working at once: approving, editing and moving cards through the functions the pages call.

Used by the load test (tests/reliability/test_load.py, a few seconds) and by `python -m bench` (longer).
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import func, select

from trackli import board, board_view, queue, users
from trackli.context import Context
from trackli.models import CARD_STATUSES, AtlassianConnection, PendingTask, Card, utcnow


@dataclass
class LoadReport:
    operations: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    by_kind: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    last_title: dict[int, str] = field(default_factory=dict)  # pending id -> the title its owner wrote last

    @property
    def per_second(self) -> float:
        return self.operations / self.seconds if self.seconds else 0.0

    @property
    def p95_ms(self) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[int(0.95 * (len(ordered) - 1))] * 1000


def seed(ctx: Context, people: int = 4, pending_each: int = 200) -> dict[int, list[int]]:
    """People, each with a connection and pending tasks (no Atlassian needed): user id -> pending ids."""
    out: dict[int, list[int]] = {}
    now = utcnow()
    with ctx.session() as session:
        for n in range(people):
            user = users.ensure(session, f"load{n}@example.com", f"Load {n}")
            conn = AtlassianConnection(user_id=user.id, kind="api_token", site_url=f"https://load{n}.example.net",
                                       status="ok")
            session.add(conn)
            session.flush()
            session.execute(PendingTask.__table__.insert(), [{
                "user_id": user.id, "connection_id": conn.id, "confluence_task_id": str(10_000 * (n + 1) + i),
                "task_title": f"Task {i} of {n}", "task_description": "", "status": "pending", "edited_fields": [],
                "confluence_page_title": "Page", "remote_status": "incomplete",
                "first_seen_at": now, "last_seen_at": now, "created_at": now, "updated_at": now,
            } for i in range(pending_each)])
            out[user.id] = list(session.scalars(select(PendingTask.id).where(PendingTask.user_id == user.id)
                                                .order_by(PendingTask.id)))
    return out


def run(ctx: Context, seconds: float = 5.0, threads: int = 20, people: int = 4, seed_rows: int = 200) -> LoadReport:
    pools = seed(ctx, people, seed_rows)
    user_ids = sorted(pools)
    report = LoadReport()
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    # Each thread owns a slice of its person's first half of pending rows for title edits (so the
    # last title it wrote must be the one stored: a lost update would show); the second half is a
    # shared pool that several threads approve at once (approval must stay idempotent).
    per_person = max(1, threads // people)

    def worker(index: int) -> None:
        rng = random.Random(index)
        uid = user_ids[index % people]
        ids = pools[uid]
        half = len(ids) // 2
        mine = ids[:half][index // people::per_person]
        shared = ids[half:]
        n = 0
        while time.monotonic() < stop:
            kind = rng.choice(("edit", "approve", "move", "move", "board"))
            started = time.perf_counter()
            try:
                with ctx.session() as session:
                    if kind == "edit" and mine:
                        pid = rng.choice(mine)
                        n += 1
                        title = f"edited by {index} #{n}"
                        queue.edit_pending(session, uid, pid, title=title)
                    elif kind == "approve":
                        queue.approve(session, uid, rng.sample(shared, k=min(3, len(shared))))
                    elif kind == "move":
                        card_ids = list(session.scalars(select(Card.id).where(Card.owner_id == uid).limit(50)))
                        if card_ids:
                            board.move_card(session, uid, rng.choice(card_ids), rng.choice(CARD_STATUSES),
                                            rng.randint(0, 5))
                    else:
                        board_view.board(session, uid)
                if kind == "edit" and mine:
                    with lock:
                        report.last_title[pid] = title
            except Exception as exc:  # collected: the caller asserts there were none
                with lock:
                    report.errors.append(f"{kind}: {type(exc).__name__}: {exc}")
                continue
            elapsed = time.perf_counter() - started
            with lock:
                report.operations += 1
                report.latencies.append(elapsed)
                report.by_kind[kind] += 1

    began = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(i,), name=f"load-{i}") for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=seconds + 120)
    report.seconds = time.perf_counter() - began
    if any(t.is_alive() for t in pool):
        report.errors.append("a worker thread never finished (deadlock?)")
    return report


def check(ctx: Context, report: LoadReport) -> list[str]:
    """What must hold after the load: the problems found (empty when all is well)."""
    problems = list(report.errors)
    with ctx.session() as session:
        for pid, title in report.last_title.items():
            stored = session.get(PendingTask, pid).task_title
            if stored != title:
                problems.append(f"lost update on pending {pid}: {stored!r} instead of {title!r}")
        approved = session.scalar(select(func.count()).select_from(PendingTask).where(PendingTask.status == "approved"))
        cards = session.scalar(select(func.count()).select_from(Card))
        if approved != cards:
            problems.append(f"{approved} approved tasks but {cards} cards")
        rows = session.execute(select(Card.owner_id, Card.status, Card.position)).all()
    columns: dict[tuple, list[int]] = defaultdict(list)
    for owner, status, position in rows:
        columns[(owner, status)].append(position)
    for key, positions in columns.items():
        if len(set(positions)) != len(positions):  # gaps are fine; two cards in one slot are not
            problems.append(f"column {key} has cards sharing a position: {sorted(positions)[:10]}…")
    return problems
