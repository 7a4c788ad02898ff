"""The scheduled worker: sync the connections that are due, drain the outbox, purge old audit entries.

Due connections are claimed through `trackli.scheduler` (any number of workers share one PostgreSQL;
each connection is synced by one of them) and synced `worker_concurrency` at a time on one shared
HTTP client. Scheduled syncs poll incrementally between full sweeps (`trackli.sync.choose_kind`).
One failing or slow connection does not stop or slow the others: slots are claimed as they free up,
one person holds at most `worker_slots_per_user` of them, and the outbox is drained on a thread of its
own. SIGTERM (or SIGINT) stops it cleanly: no new connection is started, the ones running finish.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import signal
import threading
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Callable

import httpx
from sqlalchemy.exc import OperationalError

from trackli import audit, completion, scheduler, snooze, sync
from trackli.context import Context
from trackli.errors import TrackliError
from trackli.models import utcnow

log = logging.getLogger("trackli.worker")
IDLE_S = 30.0  # at most this long between looks for due connections and waiting completions
WAKE_EVERY_S = 60.0
PURGE_EVERY_S = 3600.0


DRAIN_EVERY_S = 10.0  # the outbox is drained this often, on a thread of its own
PACE_EVERY_S = 30.0  # the deployment's stretch is looked at this often while serving


class Worker:
    """Syncs due connections on a bounded pool, claiming more as slots free up (never waiting for a
    slow one to finish a "round"), at most `worker_slots_per_user` of one person's at once; drains the
    outbox and does the housekeeping on a thread of its own, on its own timer."""

    def __init__(self, ctx: Context, every: float | None = None, *, concurrency: int | None = None,
                 on_cycle: Callable[[dict], None] | None = None, kind: str = "worker", **sync_kwargs):
        self.on_cycle = on_cycle
        self.every = ctx.settings.sync_every_s if every is None else every
        self.concurrency = concurrency or ctx.settings.worker_concurrency
        self.per_user = ctx.settings.worker_slots_per_user
        self.name = scheduler.worker_name(kind)
        # One connection pool and TLS context for every sync and send of this process (a new client
        # costs tens of milliseconds and a new TLS handshake each time).
        given = sync_kwargs.pop("http", None) or ctx.http
        self.owns_http = given is None
        self.http = given or httpx.Client(timeout=ctx.settings.http_timeout_s,
                                          limits=httpx.Limits(max_connections=max(20, self.concurrency * 4)))
        self.ctx = ctx.with_http(self.http)  # every sync and send of this worker shares it, without passing it on
        self.sync_kwargs = sync_kwargs
        self.stop_event = threading.Event()
        self.last_chores: dict[str, float] = {}
        self.report_lock = threading.Lock()
        self.report: dict = self._summary(scheduler.Cadence(1.0, None, None, 0, 0))  # serving: synced since the last report

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop_event.set())

    # ---- one round (`trackli worker --once`, tests, benchmarks) ----

    def cycle(self) -> dict:
        """Every connection due when it started synced once (by this worker or another), then the
        outbox drained once."""
        due_by = utcnow()
        pace = scheduler.cadence(self.ctx, self.every)
        summary = self._summary(pace)
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="sync") as pool:
            running: dict[Future, tuple[int, int]] = {}
            exhausted = False
            while True:
                if not exhausted and not self.stop_event.is_set():
                    claimed = self._claim(due_by, running)
                    exhausted = not claimed and not self._full(running)
                    self._start(pool, running, claimed, pace.stretch, summary)
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                self._collect(done, running)
                if self.stop_event.is_set():
                    exhausted = True
        self._drain_and_chores(summary)
        return summary

    # ---- serving (`trackli worker`, the dashboard's scheduler) ----

    def run(self, max_cycles: int | None = None) -> None:
        try:
            if max_cycles is not None:
                self._rounds(max_cycles)
            else:
                self._serve()
        finally:
            self.close()

    def close(self) -> None:
        if self.owns_http:
            self.http.close()

    def _rounds(self, max_cycles: int) -> None:
        for n in range(max_cycles):
            try:
                summary = self.cycle()
            except OperationalError as exc:
                summary = {"errors": [_database_away(exc)]}
            if self.on_cycle:
                self.on_cycle(summary)
            if self.stop_event.is_set() or n + 1 == max_cycles:
                return
            self.stop_event.wait(self._idle())

    def _serve(self) -> None:
        """Until stopped: keep every slot busy with due connections, claiming as slots free up."""
        drainer = threading.Thread(target=self._drain_loop, name="outbox", daemon=True)
        drainer.start()
        pace, paced_at, reported = scheduler.Cadence(1.0, None, None, 0, 0), -math.inf, time.monotonic()
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="sync") as pool:
            running: dict[Future, tuple[int, int]] = {}
            while not self.stop_event.is_set():
                try:
                    if time.monotonic() - paced_at >= PACE_EVERY_S:
                        pace, paced_at = scheduler.cadence(self.ctx, self.every), time.monotonic()
                        self.report["stretch"] = pace.stretch
                    claimed = self._claim(utcnow(), running)
                    self._start(pool, running, claimed, pace.stretch, None)
                    # Wake when a sync ends (a slot frees up) or the next connection is due.
                    timeout = self._idle()
                    if running:
                        done, _ = wait(running, timeout=timeout, return_when=FIRST_COMPLETED)
                        self._collect(done, running)
                    else:
                        self.stop_event.wait(timeout)
                except OperationalError as exc:  # the database is away for everyone: wait; claims expire
                    self.report["errors"].append(_database_away(exc))
                    self.stop_event.wait(IDLE_S / 6)
                if not running or time.monotonic() - reported > IDLE_S:
                    self._report_now(pace)
                    reported = time.monotonic()
            # Stopping: no new claims; the running syncs finish (the pool's exit waits for them).
        self._report_now(pace)
        drainer.join(timeout=5)

    def _report_now(self, pace: scheduler.Cadence) -> None:
        """Hand what was synced since the last report to `on_cycle`; syncs still running report next time."""
        with self.report_lock:
            report, self.report = self.report, self._summary(pace)
        if self.on_cycle and (report["synced"] or report["errors"]):
            self.on_cycle(report)

    def _drain_loop(self) -> None:
        while not self.stop_event.is_set():
            summary: dict = {"errors": []}
            try:
                self._drain_and_chores(summary)
            except OperationalError as exc:
                summary["errors"].append(_database_away(exc))
            except Exception:  # never let the drainer die: the next turn tries again
                log.exception("outbox drain and housekeeping")
            if self.on_cycle and ((summary.get("drained") or {}).get("sent") or summary["errors"]):
                self.on_cycle(summary)
            self.stop_event.wait(DRAIN_EVERY_S)

    # ---- pieces ----

    @staticmethod
    def _summary(pace: scheduler.Cadence) -> dict:
        summary: dict = {"synced": [], "drained": None, "errors": [], "stretch": pace.stretch}
        if pace.stretch > 1:
            summary["stretched_because"] = pace.reason
        return summary

    def _full(self, running: dict[Future, tuple[int, int]]) -> bool:
        return len(running) >= self.concurrency

    def _claim(self, due_by: dt.datetime, running: dict[Future, tuple[int, int]]) -> list[tuple[int, int]]:
        free = self.concurrency - len(running)
        if free <= 0 or self.stop_event.is_set():
            return []
        busy = Counter(user for _, user in running.values())
        return scheduler.claim_owned(self.ctx, self.name, due_by, free, busy=busy, per_user=self.per_user)

    def _start(self, pool: ThreadPoolExecutor, running: dict[Future, tuple[int, int]], claimed: list[tuple[int, int]],
               stretch: float, summary: dict | None) -> None:
        for connection_id, user_id in claimed:
            running[pool.submit(self._sync_one, connection_id, stretch, summary)] = (connection_id, user_id)

    def _collect(self, done: set[Future], running: dict[Future, tuple[int, int]]) -> None:
        for future in done:
            running.pop(future)
            future.result()  # OperationalError (the database is away for everyone) reaches the loop

    def _drain_and_chores(self, summary: dict) -> None:
        try:
            summary["drained"] = completion.drain(self.ctx, **self.sync_kwargs).as_dict()
        except TrackliError as exc:
            summary["errors"].append(f"outbox: {exc}")
        except OperationalError:
            raise
        except Exception as exc:
            log.exception("outbox drain")
            summary["errors"].append(f"outbox: unexpected error ({type(exc).__name__})")
        # Housekeeping scans whole tables: at most once a minute (snoozes) and once an hour (audit).
        if self._due("wake", WAKE_EVERY_S):
            with self.ctx.session() as session:
                summary["snoozes_ended"] = snooze.wake(session)  # what was snoozed until today is back
        if self._due("purge", PURGE_EVERY_S):
            with self.ctx.session() as session:
                summary["audit_purged"] = audit.purge_older_than(session, self.ctx.settings.audit_retention_days)

    def _due(self, chore: str, every: float) -> bool:
        now = time.monotonic()
        if now - self.last_chores.get(chore, -math.inf) < every:
            return False
        self.last_chores[chore] = now
        return True

    def _sync_one(self, connection_id: int, stretch: float, summary: dict | None) -> None:
        """Sync one claimed connection and let it go; its outcome goes to `summary` (serving: the
        report open when it ends)."""
        ok, synced, error = False, None, None
        try:
            result = sync.sync_connection(self.ctx, connection_id, "scheduled", **self.sync_kwargs)
            ok, synced = result.outcome != "failed", result.as_dict()
            error = None if ok else f"connection {connection_id}: {result.error}"
        except TrackliError as exc:
            error = f"connection {connection_id}: {exc}"
        except OperationalError:
            raise  # the database is away for everyone: run() waits for it; the claim expires
        except Exception as exc:  # one connection's trouble never stops the others
            log.exception("connection %s", connection_id)
            error = f"connection {connection_id}: unexpected error ({type(exc).__name__})"
        with self.report_lock:
            into = self.report if summary is None else summary
            if synced is not None:
                into["synced"].append(synced)
            if error:
                into["errors"].append(error)
        scheduler.release(self.ctx, connection_id, self.name, ok, self.every, stretch)

    def _idle(self) -> float:
        """Until the next unclaimed connection is due (to the moment: a cadence is kept, not rounded up), but
        at most IDLE_S (new connections are picked up that often). One due now that could not be claimed
        (no free slot, or its person's slots are full): look again in a second, or when a sync ends."""
        try:
            until = scheduler.seconds_to_next_due(self.ctx)
        except OperationalError:
            return IDLE_S
        if until is None:
            return IDLE_S
        if until <= 0:
            return 1.0
        return max(0.05, min(IDLE_S, until))


def _database_away(exc: OperationalError) -> str:
    log.warning("database unavailable: %s", str(exc.orig).splitlines()[0] if exc.orig else exc)
    return "database unavailable"
