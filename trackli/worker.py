"""The scheduled worker: sync every healthy connection, drain the outbox, purge old audit entries.

Connections are spread over the interval; one failing connection does not stop the others;
SIGTERM (or SIGINT) stops it cleanly between steps.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Callable

import httpx
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from trackli import audit, completion, sync
from trackli.context import Context
from trackli.errors import TrackliError
from trackli.models import AtlassianConnection

log = logging.getLogger("trackli.worker")


class Worker:
    def __init__(self, ctx: Context, every: float = 300.0, *, on_cycle: Callable[[dict], None] | None = None, **sync_kwargs):
        self.ctx, self.every, self.on_cycle = ctx, every, on_cycle
        # One connection pool and TLS context for every sync and send of this process (a new client
        # costs tens of milliseconds and a new TLS handshake each time).
        given = sync_kwargs.pop("http", None)
        self.owns_http = given is None
        self.http = given or httpx.Client(timeout=ctx.settings.http_timeout_s)
        self.sync_kwargs = {"http": self.http, **sync_kwargs}
        self.stop_event = threading.Event()

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop_event.set())

    def healthy_connections(self) -> list[int]:
        with self.ctx.session() as session:
            return list(session.scalars(select(AtlassianConnection.id).where(
                AtlassianConnection.status == "ok", AtlassianConnection.access_token_enc.isnot(None))
                .order_by(AtlassianConnection.id)))

    def cycle(self) -> dict:
        """One round: every connection synced (spread over the interval), then the outbox drained."""
        summary: dict = {"synced": [], "drained": None, "errors": []}
        ids = self.healthy_connections()
        gap = self.every / max(len(ids), 1) if self.every else 0
        for index, connection_id in enumerate(ids):
            if self.stop_event.is_set():
                break
            try:
                result = sync.sync_connection(self.ctx, connection_id, "scheduled", **self.sync_kwargs)
                summary["synced"].append(result.as_dict())
            except TrackliError as exc:
                summary["errors"].append(f"connection {connection_id}: {exc}")
            except OperationalError:
                raise  # the database is away for everyone: run() waits for it
            except Exception as exc:  # one connection's trouble never stops the others
                log.exception("connection %s", connection_id)
                summary["errors"].append(f"connection {connection_id}: unexpected error ({type(exc).__name__})")
            if index < len(ids) - 1 and gap:
                self.stop_event.wait(min(gap, 30))
        try:  # once per cycle, after every connection had its turn
            summary["drained"] = completion.drain(self.ctx, **self.sync_kwargs).as_dict()
        except TrackliError as exc:
            summary["errors"].append(f"outbox: {exc}")
        except OperationalError:
            raise
        except Exception as exc:
            log.exception("outbox drain")
            summary["errors"].append(f"outbox: unexpected error ({type(exc).__name__})")
        with self.ctx.session() as session:
            summary["audit_purged"] = audit.purge_older_than(session, self.ctx.settings.audit_retention_days)
        return summary

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
            if self.on_cycle:
                self.on_cycle(summary)
            cycles += 1
            if max_cycles is not None and cycles >= max_cycles:
                break
            self.stop_event.wait(self.every)
