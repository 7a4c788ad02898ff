"""The sync engine: the one place the pages, the CLI and the schedulers sync a connection.

fetch -> enrich -> plan (pure, trackli.plan) -> apply the plan in one transaction.

Rules (also in the README):
- A new task lands as `pending`. A pending task changed upstream gets the new values in the
  fields the person has not edited; what they edited stays theirs. Dismissed stays dismissed.
  Approved is never queued again.
- Only a fetch that completed removes or closes anything: a pending task no longer returned
  becomes `gone` with the reason; an approved card whose task was completed in Confluence moves
  to done without calling Confluence back; a card done here whose task was reopened there is
  flagged `conflict` for the person to settle.
- One running sync per connection (its `sync_runs` row is the lock); a second one answers
  "already running". A re-sync with nothing changed writes only its run record and audit entry.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

import httpx

from trackli import connections, outbox, presence
from trackli.atlassian.client import ConfluenceClient
from trackli.atlassian.errors import AtlassianError, MissingScope, ReconnectRequired
from trackli.atlassian.transport import RetryPolicy
from trackli.context import Context
from trackli.crypto import SecretKeyError
from trackli.errors import NotFound
from trackli.models import AtlassianConnection, SyncTrigger, utcnow
from trackli.plan import Upstream, plan
from trackli.sync.apply import apply, linked_cards, queue_rows
from trackli.sync.fetch import cards_to_ask_about, fetch_all, fetch_changes
from trackli.sync.runs import Heartbeat, Progress, SyncKind, SyncResult, finish_run, start_run, ticker

log = logging.getLogger("trackli.sync")


def choose_kind(ctx: Context, conn: AtlassianConnection, trigger: SyncTrigger, now: dt.datetime,
                seen: presence.Presence = "today") -> SyncKind:
    """A scheduled sync polls incrementally between full sweeps; Sync now, `trackli sync`, the first
    sync after a (re)connect and one at least every `full_sync_every_s` (twice that for a person away
    for a day) sweep in full."""
    if trigger != "scheduled" or conn.watermark_ms is None or conn.last_full_sync_at is None:
        return "full"
    if (now - conn.last_full_sync_at).total_seconds() >= presence.sweep_every(ctx.settings, seen):
        return "full"
    return "incremental"


def sync_connection(
    ctx: Context, connection_id: int, trigger: SyncTrigger = "manual", *, user_id: int | None = None,
    http: httpx.Client | None = None, retry: RetryPolicy | None = None, progress: Progress | None = None,
    kind: SyncKind | None = None,
) -> SyncResult:
    """Bring the connection's tasks into the approval queue: a full sweep of every incomplete task
    assigned to its account, or (scheduled, between sweeps) an incremental poll of what changed."""
    started = time.monotonic()
    with ctx.session() as session:
        conn = session.get(AtlassianConnection, connection_id)
        if conn is None or (user_id is not None and conn.user_id != user_id):
            raise NotFound(f"connection {connection_id} not found")
    run_id = start_run(ctx, conn, trigger)
    if run_id is None:
        return SyncResult(connection_id, "already_running", error="a sync of this connection is already running")
    if kind is None:
        seen = presence.of_user(ctx, conn.user_id) if trigger == "scheduled" else "live"
        kind = choose_kind(ctx, conn, trigger, utcnow(), seen)
    result = SyncResult(connection_id, "ok", run_id=run_id, kind=kind)
    client: ConfluenceClient | None = None
    try:
        client = connections.client_for(ctx, conn, http=http, retry=retry)
        # Bounded in time, waits included; every request and wait keeps the run's lease fresh.
        # A scheduled sync has less time than one a person asked for: a slow site costs its own slot, not the day.
        limit = ctx.settings.scheduled_sync_deadline_s if trigger == "scheduled" else ctx.settings.sync_deadline_s
        client.transport.bound(limit, Heartbeat(ctx, run_id, result))
        if result.kind == "full":
            fetched, enrichment = fetch_all(client, conn, result, progress)
            # The whole fetch succeeded: from here on, missing tasks may be reconciled.
            completed = client.completed_among(cards_to_ask_about(ctx, conn.id, set(fetched)))
            apply(ctx, conn, Upstream(fetched, enrichment, conn.site_url), completed, result, names_seen=enrichment,
                   tick=ticker(ctx, client))
        else:
            fetched, completed, enrichment, looked_up = fetch_changes(ctx, client, conn, result)
            apply(ctx, conn, Upstream(fetched, enrichment, conn.site_url), completed, result, complete=False,
                   names_seen=looked_up, tick=ticker(ctx, client))
    except (AtlassianError, SecretKeyError) as exc:
        result.outcome, result.error, result.errors = "failed", str(exc), result.errors + 1
        with ctx.session() as session:
            if isinstance(exc, ReconnectRequired):
                connections.mark(session, conn.id, "needs_reconnect", str(exc))
            elif isinstance(exc, (MissingScope, SecretKeyError)):
                connections.mark(session, conn.id, "error", str(exc))
    except Exception as exc:  # a bug, or upstream data the database refused: this connection's run fails, others go on
        log.exception("sync of connection %s stopped by an unexpected error", connection_id)
        result.outcome, result.errors = "failed", result.errors + 1
        result.error = f"an unexpected error stopped this sync ({type(exc).__name__}); the details are in the server log"
    except BaseException:  # stopped (Ctrl-C, SystemExit): the run must not be recorded as ok
        result.outcome, result.error, result.errors = "failed", "the sync was interrupted", result.errors + 1
        raise
    finally:
        if client:
            result.requests, result.retries, result.waited_s = client.stats.requests, client.stats.retries, client.stats.waited_s
            result.points, result.near_limit = client.stats.points, client.stats.near_limit
        result.duration_s = round(time.monotonic() - started, 3)
        finish_run(ctx, conn, result, client)
        if client:
            client.close()
    return result


def dry_run(ctx: Context, connection_id: int, *, user_id: int | None = None, http: httpx.Client | None = None,
            retry: RetryPolicy | None = None) -> dict[str, Any]:
    """What a full sweep would do now — tasks new, changed and gone, cards to Done, conflicts — from a
    real fetch and the pure plan, writing nothing (no run, no audit entry, no row; only a due OAuth
    token refresh, which any request needs)."""
    with ctx.session() as session:
        conn = session.get(AtlassianConnection, connection_id)
        if conn is None or (user_id is not None and conn.user_id != user_id):
            raise NotFound(f"connection {connection_id} not found")
    result = SyncResult(connection_id, "ok", kind="full")
    with connections.client_for(ctx, conn, http=http, retry=retry) as client:
        client.transport.bound(ctx.settings.sync_deadline_s)
        fetched, enrichment = fetch_all(client, conn, result, None)
        completed = client.completed_among(cards_to_ask_about(ctx, conn.id, set(fetched)))
        with ctx.session() as session:
            would = plan(session.execute(queue_rows(conn.id)), Upstream(fetched, enrichment, conn.site_url),
                         session.execute(linked_cards(conn.id)), completed, outbox.unsent_card_ids(session, conn.id))
            session.rollback()  # read only: nothing to keep
        stats = client.stats
    return {"connection_id": connection_id, "site": conn.site_name or conn.site_url, "fetched": len(fetched),
            "new": len(would.new), "changed": len(would.changed), "unchanged": would.unchanged,
            "gone": len(would.gone), "cards_to_done": len(would.completed_upstream), "conflicts": len(would.conflicts),
            "cards_reopened_upstream": len(would.remote_incomplete), "cards_gone": len(would.cards_gone),
            "cards_back": len(would.cards_back), "requests": stats.requests, "points": stats.points}


def sync_user(ctx: Context, user_id: int, trigger: SyncTrigger = "manual", **kwargs: Any) -> list[SyncResult]:
    """Sync each of the user's usable connections; one failing does not stop the others."""
    with ctx.session() as session:
        ids = [c.id for c in connections.list_connections(session, user_id) if c.access_token_enc]
    return [sync_connection(ctx, cid, trigger, user_id=user_id, **kwargs) for cid in ids]
