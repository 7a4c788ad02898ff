"""The dashboard's own scheduler: the same due-based `Worker` as `trackli worker` (claims and leases,
backoff, stretch, outbox drain, snooze wake, audit purge), on background threads of the dashboard's
process: one per process and database, never one per session or rerun.

So `streamlit run app.py` and `trackli demo` alone keep every connection current. It is safe beside
any number of dedicated workers and other dashboards (each connection is claimed by one scheduler at a
time), never runs on a page's thread, and stops with the process. `TRACKLI_EMBEDDED_WORKER=off` turns
it off for a team that runs dedicated workers.
"""

from __future__ import annotations

import atexit
import logging
import threading

from trackli.context import Context
from trackli.worker import Worker

log = logging.getLogger("trackli.embedded")

EMBEDDED_CONCURRENCY = 2
_running: dict[str, tuple[Worker, threading.Thread]] = {}  # database URL -> its scheduler here
_lock = threading.Lock()


def start(ctx: Context) -> Worker | None:
    """Start this process's scheduler for `ctx`'s database (once; later calls return the same one).
    None when the settings turn it off."""
    if not ctx.settings.runs_embedded_worker:
        return None
    key = ctx.settings.database_url
    with _lock:
        running = _running.get(key)
        if running is not None and running[1].is_alive():
            return running[0]
        # Fewer slots than a dedicated worker: the same process answers people's clicks, and every sync
        # thread competes with them for the interpreter.
        worker = Worker(ctx, kind="dashboard", concurrency=min(EMBEDDED_CONCURRENCY, ctx.settings.worker_concurrency))
        thread = threading.Thread(target=_serve, args=(worker,), name="trackli-scheduler", daemon=True)
        _running[key] = (worker, thread)
        if len(_running) == 1:
            atexit.register(stop_all)
        thread.start()
        log.info("the dashboard's scheduler started (%s)", worker.name)
        return worker


def _serve(worker: Worker) -> None:
    try:
        worker.run()
    except Exception:  # the pages go on without it; a dedicated worker (or a restart) takes over
        log.exception("the dashboard's scheduler stopped")


def running(ctx: Context) -> Worker | None:
    """This process's scheduler for `ctx`'s database, if it runs."""
    with _lock:
        found = _running.get(ctx.settings.database_url)
    return found[0] if found and found[1].is_alive() else None


def stop(ctx: Context, timeout: float = 30.0) -> bool:
    """Stop the scheduler for `ctx`'s database: no new sync starts, the running ones finish. True if it ended."""
    with _lock:
        found = _running.pop(ctx.settings.database_url, None)
    if found is None:
        return True
    worker, thread = found
    worker.stop_event.set()
    thread.join(timeout)
    return not thread.is_alive()


def stop_all(timeout: float = 10.0) -> None:
    with _lock:
        found = list(_running.values())
        _running.clear()
    for worker, _ in found:
        worker.stop_event.set()
    for _, thread in found:
        thread.join(timeout)
