"""Trackli benchmarks: every figure next to a baseline measured in the same run, and the ratio.

    python -m bench.run              # all benchmarks (PostgreSQL on 127.0.0.1 if it answers, else SQLite)
    python -m bench.run --only sync  # one group: requests, sync, syncmem, upsert, load, board, scale, team, triage, live, fairness

Figures are printed, never asserted: the tests check behaviour, this checks speed.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, event, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trackli import connections, db, queue, sync, users  # noqa: E402
from trackli.atlassian.client import ConfluenceClient, StaticCredentials  # noqa: E402
from trackli.config import load_settings  # noqa: E402
from trackli.plan import upstream_fields  # noqa: E402
from trackli.sync.apply import apply  # noqa: E402
from tests.helpers import all_tasks, enrich  # noqa: E402
from trackli.context import Context  # noqa: E402
from trackli.simulator import ME, ME_API_TOKEN  # noqa: E402

PG_ADMIN = os.environ.get("TRACKLI_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@dataclass
class Row:
    name: str
    figure: float
    unit: str
    baseline: float
    baseline_name: str
    target: str

    @property
    def ratio(self) -> float:
        return self.figure / self.baseline if self.baseline else float("nan")


@contextmanager
def database():
    """A throwaway PostgreSQL database if the server answers, else a temporary SQLite file."""
    try:
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            name = f"trackli_bench_{uuid.uuid4().hex[:8]}"
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    except Exception:
        admin, name = None, None
        url = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    try:
        yield url
    finally:
        db.dispose_engines()
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def context(url: str) -> Context:
    settings = load_settings(env={"TRACKLI_DATABASE_URL": url, "TRACKLI_DATA_DIR": tempfile.mkdtemp()},
                             secrets_path=Path("/nonexistent"))
    return Context.from_settings(settings, migrate=True)


class SimProcess:
    """The simulated Atlassian in its own process, as Atlassian would be: its CPU time is not ours."""

    def __init__(self, tasks: int, pages: int, spaces: int):
        import subprocess

        from trackli.simulator import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "trackli", "simulator", "--port", str(self.port), "--tasks", str(tasks),
             "--pages", str(pages), "--spaces", str(spaces), "--blogposts", "0"],
            env={**os.environ, "TRACKLI_DATA_DIR": tempfile.mkdtemp()}, stderr=subprocess.DEVNULL)
        import httpx

        self.http = httpx.Client(base_url=self.url)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.http.get("/_admin/state").raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("the simulator did not start")
                time.sleep(0.1)

    def configure(self, **knobs) -> None:
        self.http.post("/_admin/config", json=knobs).raise_for_status()

    def task(self, task_id: str) -> dict:
        return self.http.get(f"/_admin/tasks/{task_id}").json()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.http.close()


def sim_site(tasks: int, pages: int, spaces: int) -> SimProcess:
    return SimProcess(tasks, pages, spaces)


# ---- requests (issue: Atlassian client) ---------------------------------------------------------

def bench_requests(rows: list[Row], n=5000, p=800, s=40) -> None:
    sim = sim_site(n, p, s)
    try:
        client = ConfluenceClient(StaticCredentials.basic(sim.url, ME[1], ME_API_TOKEN))
        tasks = all_tasks(client, assigned_to=ME[0])
        enrich(client, tasks)
        naive = 1 + 2 * len(tasks)
        target = -(-n // 250) + -(-p // 250) + -(-s // 250)
        rows.append(Row(f"HTTP requests, full fetch + enrichment (N={len(tasks)}, P={p}, S={s})", client.stats.requests,
                        "requests", naive, "naive 1 + 2N", f"= {target}"))
    finally:
        sim.stop()


# ---- sync (issue: sync engine) ------------------------------------------------------------------

def io_floor(sim: "SimProcess", n: int) -> float:
    """The latency floor, measured: the task pages fetched in sequence with bare httpx (no parsing,
    no database), then one concurrent round of the page and space look-ups the sync needs."""
    import httpx
    from concurrent.futures import ThreadPoolExecutor

    auth = {"Authorization": StaticCredentials.basic(sim.url, ME[1], ME_API_TOKEN).authorization()}
    params = {"assigned-to": ME[0], "include-blank-tasks": "false", "body-format": "atlas_doc_format",
              "limit": 250, "status": "incomplete"}
    with httpx.Client(headers=auth, timeout=60) as http:
        http.get(f"{sim.url}/wiki/api/v2/spaces", params={"limit": 1})  # connection set-up is not latency
        started = time.perf_counter()
        url, page_ids, space_ids = f"{sim.url}/wiki/api/v2/tasks", set(), set()
        while url:
            response = http.get(url, params=params)
            params = None
            nxt = response.links.get("next", {}).get("url")
            url = sim.url + nxt if nxt else None
            for t in response.json()["results"]:
                page_ids.add(t.get("pageId"))
                space_ids.add(t.get("spaceId"))
        sequential = time.perf_counter() - started
        batches = [("pages", "id", sorted(page_ids)[i:i + 250]) for i in range(0, len(page_ids), 250)]
        batches += [("spaces", "ids", sorted(space_ids)[i:i + 250]) for i in range(0, len(space_ids), 250)]
        started = time.perf_counter()
        with ThreadPoolExecutor(len(batches)) as pool:
            list(pool.map(lambda b: http.get(f"{sim.url}/wiki/api/v2/{b[0]}",
                                             params={b[1]: ",".join(b[2]), "limit": 250}), batches))
        return sequential + (time.perf_counter() - started)


def bench_sync(rows: list[Row], url: str, n=5000, p=800, s=40, latency_ms=50) -> None:
    ctx = context(url)
    sim = sim_site(n, p, s)
    try:
        with ctx.session() as session:
            uid = users.ensure_local(session).id
        conn = connections.connect_api_token(ctx, uid, sim.url, ME[1], ME_API_TOKEN)
        sim.configure(latency_ms=latency_ms)
        task_pages = -(-n // 250)
        floor = min(io_floor(sim, n) for _ in range(2))  # the second pass is warm, like the sync after it
        started = time.perf_counter()
        result = sync.sync_connection(ctx, conn)
        elapsed = time.perf_counter() - started
        assert result.outcome == "ok" and result.new == n, result
        rows.append(Row(f"full sync, {n} tasks / {p} pages / {s} spaces, {latency_ms} ms per request ({ctx.dialect})",
                        elapsed, "s", floor, f"I/O floor: {task_pages} task pages in sequence + 1 concurrent look-up round, "
                        "bare HTTP, measured", "≤ 1.5×"))

        writes: list[str] = []

        def count(conn_, cursor, statement, *args):
            if statement.lstrip().upper().startswith("UPDATE"):
                writes.append(statement.split()[1])

        event.listen(ctx.engine, "before_cursor_execute", count)
        started = time.perf_counter()
        again = sync.sync_connection(ctx, conn)
        resync = time.perf_counter() - started
        event.remove(ctx.engine, "before_cursor_execute", count)
        data_updates = [w for w in writes if w != "sync_runs"]
        rows.append(Row("re-sync, nothing changed: UPDATEs outside its own run record", len(data_updates), "statements",
                        again.unchanged, "tasks compared", "= 0"))
        rows.append(Row("re-sync, nothing changed: wall time", resync, "s", floor, "I/O floor", "≤ 1.5×"))
    finally:
        sim.stop()


def bench_sync_memory(rows: list[Row], url: str, n=50000, cards=20000, latency_ms=50) -> None:
    """A 50,000-task sync and re-sync (with 20,000 of them approved as cards), each in a process of its
    own: peak memory against a process that only imported and connected, time against the I/O floor."""
    import json
    import subprocess

    sim = sim_site(n, 800, 40)
    try:
        sim.configure(latency_ms=latency_ms)
        floor = io_floor(sim, n)

        def run(*extra: str) -> dict:
            out = subprocess.run([sys.executable, "-m", "bench.sync_memory", url, sim.url, *extra],
                                 capture_output=True, text=True, cwd=ROOT, check=True)
            return json.loads(out.stdout)

        base = run("--floor")
        full = run()
        ctx = context(url)
        with ctx.session() as session:
            uid = users.ensure_local(session).id
            ids = [r.id for r in queue.list_pending(session, uid, stable_order=True, limit=cards)]
            queue.approve_ids(session, uid, ids)
        again = run()
        print(json.dumps({"floor": base, "full": full, "again": again}), file=sys.stderr)
        assert full["outcome"] == again["outcome"] == "ok" and full["new"] == n, (full, again)
        rows.append(Row(f"full sync, {n:,} tasks, {latency_ms} ms per request: wall time", full["seconds"], "s", floor,
                        "I/O floor (bare HTTP, same simulator)", "≤ 1.2×"))
        rows.append(Row(f"re-sync, {n:,} tasks of which {cards:,} are cards: wall time", again["seconds"], "s", floor,
                        "I/O floor", "≤ 1.2×"))
        rows.append(Row(f"full sync, {n:,} tasks: peak memory of the process", full["peak_mb"], "MB", base["peak_mb"],
                        "the same process before it syncs (imports, connection)", "≤ 120 MB"))
        rows.append(Row(f"re-sync, {n:,} tasks + {cards:,} cards: peak memory", again["peak_mb"], "MB", base["peak_mb"],
                        "the same process before it syncs", "≤ 120 MB"))
    finally:
        sim.stop()


def bench_upsert(rows: list[Row], url: str, n=5000) -> None:
    """Upserting N pending rows: the sync's insert path against one INSERT per row in its own transaction."""
    from trackli.models import AtlassianConnection, PendingTask

    ctx = context(url)
    sim = sim_site(n, 800, 40)
    try:
        with ctx.session() as session:
            uid = users.ensure_local(session).id
        conn_id = connections.connect_api_token(ctx, uid, sim.url, ME[1], ME_API_TOKEN)
        client = ConfluenceClient(StaticCredentials.basic(sim.url, ME[1], ME_API_TOKEN))
        tasks = all_tasks(client, assigned_to=ME[0])
        found = enrich(client, tasks)
        with ctx.session() as session:
            conn = session.get(AtlassianConnection, conn_id)
        result = sync.SyncResult(conn_id, "ok")
        fetched = {t.id: upstream_fields(t, found, conn.site_url) for t in tasks}
        started = time.perf_counter()
        apply(ctx, conn, fetched, set(), result)
        batched = time.perf_counter() - started
        with ctx.session() as session:
            session.query(PendingTask).delete()
        sample = tasks[:500]
        started = time.perf_counter()
        for task in sample:
            with ctx.session() as session:
                session.add(PendingTask(user_id=uid, connection_id=conn_id, confluence_task_id=task.id,
                                        task_title=task.title, **{k: v for k, v in fetched[task.id].items() if k != "task_title"}))
        one_by_one = (time.perf_counter() - started) / len(sample)
        rows.append(Row(f"upsert {n} pending rows ({ctx.dialect}), per row", batched / n * 1e3, "ms",
                        one_by_one * 1e3, "one INSERT + commit per row", "< 1"))
    finally:
        sim.stop()


def print_table(rows: list[Row], dialect: str) -> None:
    print(f"\nTrackli benchmarks — {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"database: {dialect}, {time.strftime('%Y-%m-%d')}\n")
    print("| benchmark | figure | baseline | ratio | target |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r.name} | {r.figure:.3g} {r.unit} | {r.baseline:.3g} ({r.baseline_name}) | {r.ratio:.3f}× | {r.target} |")


GROUPS = ["requests", "sync", "syncmem", "upsert", "load", "board", "scale", "team", "triage", "live", "fairness"]


def bench_load(rows: list[Row], url: str, seconds: float = 15.0) -> None:
    from bench import load

    ctx = context(url)
    solo = load.run(ctx, seconds=seconds / 3, threads=1, people=1)
    with database() as fresh:
        many = load.run(context(fresh), seconds=seconds, threads=20)
        problems = load.check(context(fresh), many)
    status = "no error, no lost update, no deadlock" if not problems else f"{len(problems)} problems: {problems[0]}"
    rows.append(Row(f"load: 20 threads approving, editing, moving ({ctx.dialect}) — {status}", many.per_second,
                    "ops/s", solo.per_second, "1 thread alone", "no errors"))
    rows.append(Row("load: 95th-percentile latency under 20 threads", many.p95_ms, "ms", solo.p95_ms,
                    "1 thread alone", "reported"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=GROUPS, action="append")
    args = parser.parse_args(argv)
    groups = args.only or GROUPS
    rows: list[Row] = []
    with database() as url:
        dialect = url.split(":", 1)[0]
        if "requests" in groups:
            bench_requests(rows)
        from bench.board import bench_board
        from bench.fairness import bench_fairness
        from bench.live import bench_live
        from bench.scale import bench_scale
        from bench.team import bench_team
        from bench.triage import bench_triage

        for name, fn in (("sync", bench_sync), ("syncmem", bench_sync_memory), ("upsert", bench_upsert), ("load", bench_load),
                         ("board", bench_board), ("scale", bench_scale), ("team", bench_team),
                         ("triage", bench_triage), ("live", bench_live),
                         ("fairness", bench_fairness)):
            if name in groups:
                with database() as fresh:
                    fn(rows, fresh)
    print_table(rows, dialect)
    return 0


if __name__ == "__main__":
    sys.exit(main())
