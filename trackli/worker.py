"""The scheduled worker: sync the connections that are due, drain the outbox, purge old audit entries.

Due connections are claimed through `trackli.scheduler` (any number of workers share one PostgreSQL;
each connection is synced by one of them) and synced `worker_concurrency` at a time on one shared
HTTP client. Scheduled syncs poll incrementally between full sweeps (`trackli.sync.choose_kind`).
One failing connection does not stop or slow the others; SIGTERM (or SIGINT) stops it cleanly: no new
connection is started, the ones running finish.
"""

from __future__ import annotations

import logging
import math
import signal
import threading
import time
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


class Worker:
    def __init__(self, ctx: Context, every: float | None = None, *, concurrency: int | None = None,
                 on_cycle: Callable[[dict], None] | None = None, **sync_kwargs):
        self.ctx, self.on_cycle = ctx, on_cycle
        self.every = ctx.settings.sync_every_s if every is None else every
        self.concurrency = concurrency or ctx.settings.worker_concurrency
        self.name = scheduler.worker_name()
        # One connection pool and TLS context for every sync and send of this process (a new client
        # costs tens of milliseconds and a new TLS handshake each time).
        given = sync_kwargs.pop("http", None)
        self.owns_http = given is None
        self.http = given or httpx.Client(timeout=ctx.settings.http_timeout_s,
                                          limits=httpx.Limits(max_connections=max(20, self.concurrency * 4)))
        self.sync_kwargs = {"http": self.http, **sync_kwargs}
        self.stop_event = threading.Event()
        self.last_chores: dict[str, float] = {}

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop_event.set())

    def cycle(self) -> dict:
        """One round: every connection due when it started synced once (by this worker or another),
        then the outbox drained once."""
        due_by = utcnow()
        pace = scheduler.cadence(self.ctx, self.every)
        summary: dict = {"synced": [], "drained": None, "errors": [], "stretch": pace.stretch}
        if pace.stretch > 1:
            summary["stretched_because"] = pace.reason
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="sync") as pool:
            running: dict[Future, int] = {}
            exhausted = False
            while True:
                free = self.concurrency - len(running)
                if free and not exhausted and not self.stop_event.is_set():
                    claimed = scheduler.claim(self.ctx, self.name, due_by, free)
                    exhausted = len(claimed) < free
                    for connection_id in claimed:
                        running[pool.submit(self._sync_one, connection_id, pace.stretch, summary)] = connection_id
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    running.pop(future)
                    future.result()  # OperationalError (the database is away for everyone) stops the cycle
                if self.stop_event.is_set():
                    exhausted = True
        try:  # once per cycle, after every due connection had its turn
            summary["drained"] = completion.drain(self.ctx, **self.sync_kwargs).as_dict()
        except TrackliError as exc:
            summary["errors"].append(f"outbox: {exc}")
        except OperationalError:
            raise
        except Exception as exc:
            log.exception("outbox drain")
            summary["errors"].append(f"outbox: unexpected error ({type(exc).__name__})")
        # Housekeeping scans whole tables: at most once a minute (snoozes) and once an hour (audit), not on
        # every idle look for due connections.
        if self._due("wake", WAKE_EVERY_S):
            with self.ctx.session() as session:
                summary["snoozes_ended"] = snooze.wake(session)  # what was snoozed until today is back
        if self._due("purge", PURGE_EVERY_S):
            with self.ctx.session() as session:
                summary["audit_purged"] = audit.purge_older_than(session, self.ctx.settings.audit_retention_days)
        return summary

    def _due(self, chore: str, every: float) -> bool:
        now = time.monotonic()
        if now - self.last_chores.get(chore, -math.inf) < every:
            return False
        self.last_chores[chore] = now
        return True

    def _sync_one(self, connection_id: int, stretch: float, summary: dict) -> None:
        ok = False
        try:
            result = sync.sync_connection(self.ctx, connection_id, "scheduled", **self.sync_kwargs)
            ok = result.outcome != "failed"
            summary["synced"].append(result.as_dict())  # list.append is atomic under the GIL
            if not ok:
                summary["errors"].append(f"connection {connection_id}: {result.error}")
        except TrackliError as exc:
            summary["errors"].append(f"connection {connection_id}: {exc}")
        except OperationalError:
            raise  # the database is away for everyone: run() waits for it; the claim expires
        except Exception as exc:  # one connection's trouble never stops the others
            log.exception("connection %s", connection_id)
            summary["errors"].append(f"connection {connection_id}: unexpected error ({type(exc).__name__})")
        scheduler.release(self.ctx, connection_id, self.name, ok, self.every, stretch)

    def run(self, max_cycles: int | None = None) -> None:
        try:
            self._run(max_cycles)
        finally:
            self.close()

    def close(self) -> None:
        if self.owns_http:
            self.http.close()

    def _run(self, max_cycles: int | None) -> None:
        cycles = 0
        while not self.stop_event.is_set():
            try:
                summary = self.cycle()
            except OperationalError as exc:  # database restarting: wait and go on
                log.warning("database unavailable: %s", str(exc.orig).splitlines()[0] if exc.orig else exc)
                summary = {"errors": ["database unavailable"]}
            cycles += 1
            last = max_cycles is not None and cycles >= max_cycles
            if self.on_cycle and (last or summary.get("synced") or summary.get("errors")
                                  or (summary.get("drained") or {}).get("sent")):
                self.on_cycle(summary)
            if last:
                break
            self.stop_event.wait(self._idle())

    def _idle(self) -> float:
        """Until the next connection is due, but at most IDLE_S (new connections and completions
        are picked up that often)."""
        try:
            until = scheduler.seconds_to_next_due(self.ctx)
        except OperationalError:
            return IDLE_S
        return max(1.0, min(IDLE_S, self.every, until if until is not None else IDLE_S))
