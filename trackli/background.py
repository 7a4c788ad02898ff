"""The dashboard's background pools, in one place with one keying rule: a person is (database, user id).

- `syncs`: Sync now off the page's thread (a small pool), one job per person at a time, at most once per
  `sync_min_interval_s` per person (the throttle), its progress and results for the tab that started it.
- `sends`: one thread that drains a person's outbox when a move asks for it; asks for a person whose
  drain is already queued coalesce into it.

The dashboard's scheduler (`trackli.embedded`) is the third background part of a dashboard process; it
runs the same `Worker` as `trackli worker`.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from trackli import completion, connections, people, sync
from trackli.context import Context
from trackli.errors import NotFound, TrackliError, UserError, ValidationError
from trackli.models import User, utcnow

log = logging.getLogger("trackli.background")
Person = tuple[str, int]


def person(ctx: Context, user_id: int) -> Person:
    """The key of a person's background work: their database and id (one process may serve several)."""
    return (ctx.settings.database_url, int(user_id))


class TooSoon(ValidationError):
    pass


def claim_manual_sync(ctx: Context, user_id: int) -> None:
    """Sync now is allowed at most once per `sync_min_interval_s` per person: take this person's turn."""
    now = utcnow()
    interval = dt.timedelta(seconds=ctx.settings.sync_min_interval_s)
    with ctx.session() as session:
        user = session.get(User, user_id, with_for_update=True)
        if user is None:
            raise NotFound(f"user {user_id} not found")
        if user.last_sync_request_at and now - user.last_sync_request_at < interval:
            wait = (user.last_sync_request_at + interval - now).total_seconds()
            raise TooSoon(f"Sync ran moments ago; try again in {max(1, round(wait))} s")
        user.last_sync_request_at = now


@dataclass
class SyncJob:
    """A Sync now running in the background: its progress while it runs, its results when done."""

    user_id: int
    pages: int = 0
    tasks: int = 0
    results: list[sync.SyncResult] | None = None
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event, repr=False)

    def progress(self, pages: int, tasks: int) -> None:
        self.pages, self.tasks = pages, tasks


class BackgroundSyncs:
    """Sync now off the page's thread, on a small pool per process, one job per person at a time: the
    page stays usable while Atlassian answers, and a slow site holds one pool thread, within the
    sync's own deadline, never the server."""

    def __init__(self, workers: int = 4) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sync-now")
        self._jobs: dict[Person, SyncJob] = {}
        self._lock = threading.Lock()

    def start(self, ctx: Context, user_id: int) -> SyncJob:
        """The person's running job, or a new one (TooSoon, or UserError without a connection, at once)."""
        key = person(ctx, user_id)
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and not job.done.is_set():
                return job
        with ctx.session() as session:
            if not any(c.access_token_enc for c in connections.list_connections(session, user_id)):
                raise UserError("No Atlassian connection yet: connect one on the Connect page.")
        claim_manual_sync(ctx, user_id)
        job = SyncJob(user_id)
        with self._lock:
            self._jobs[key] = job
        self._pool.submit(self._run, ctx, job)
        return job

    def current(self, ctx: Context, user_id: int) -> SyncJob | None:
        with self._lock:
            return self._jobs.get(person(ctx, user_id))

    @staticmethod
    def _run(ctx: Context, job: SyncJob) -> None:
        try:
            job.results = sync.sync_user(ctx, job.user_id, "manual", progress=job.progress)
        except TrackliError as exc:
            job.error = str(exc)
        except Exception:
            log.exception("Sync now for user %s", job.user_id)
            job.error = "an unexpected error stopped the sync; the details are in the server log"
        finally:
            job.done.set()


class BackgroundSender:
    """One thread per process that drains a person's outbox when asked (the dashboard's moves).

    The page never waits for Confluence; asks for a person whose drain is already queued
    coalesce into it, so a burst of moves costs one drain and never a thread each.
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="completions")
        self._queued: set[Person] = set()
        self._timers: dict[Person, threading.Timer] = {}
        self._lock = threading.Lock()

    def send_soon(self, ctx: Context, user_id: int, after_s: float = 0.0) -> None:
        """Drain the person's outbox now, or once `after_s` (an Undo window) has passed; a later ask
        replaces an earlier timer, so one drain covers a burst of moves."""
        key = person(ctx, user_id)
        if after_s > 0:
            timer = threading.Timer(after_s + 0.5, self.send_soon, args=(ctx, user_id))
            timer.daemon = True
            with self._lock:
                old = self._timers.pop(key, None)
                self._timers[key] = timer
            if old is not None:
                old.cancel()
            timer.start()
            return
        with self._lock:
            if key in self._queued:
                return
            self._queued.add(key)
        self._pool.submit(self._drain, ctx, user_id, key)

    def _drain(self, ctx: Context, user_id: int, key: Person) -> None:
        with self._lock:
            self._queued.discard(key)  # a move from now on asks for another drain
        try:
            completion.drain(ctx, user_id=user_id)
        except Exception:  # the entries stay in the outbox for the worker; nothing is lost
            log.exception("sending completions for user %s failed", user_id)


syncs = BackgroundSyncs()
sends = BackgroundSender()


# ---- people's names -------------------------------------------------------------------------------

_names_lock = threading.Lock()
_names_running: set[tuple[str, int]] = set()


def look_up_names(ctx: Context, user_id: int, wait_s: float = 2.0) -> bool:
    """Name the people who created the person's tasks (`people.look_up`: only those never asked about)
    off the page's thread, one look-up per person at a time; wait up to `wait_s` for it (a slow upstream
    never holds the page longer: the names then show on a later visit). True if it finished in time."""
    key = (ctx.settings.database_url, user_id)
    with _names_lock:
        if key in _names_running:
            return False
        _names_running.add(key)
    worker = threading.Thread(target=_look_up_names, args=(ctx, user_id, key), daemon=True, name="trackli-names")
    worker.start()
    worker.join(wait_s)
    return not worker.is_alive()


def _look_up_names(ctx: Context, user_id: int, key: tuple[str, int]) -> None:
    try:
        people.look_up(ctx, user_id)
    except Exception:  # logged; the people stay shown by id
        log.exception("looking up people's names failed")
    finally:
        with _names_lock:
            _names_running.discard(key)
