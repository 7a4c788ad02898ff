"""Why a connection works or fails, as structured findings the diagnostics page and CLI show.

The headline turns the first version's blocker — a 401 on the tasks API because two scopes were
never enabled — into one sentence naming the scopes and the fix.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from trackli import connections, outbox, presence, scheduler, sync
from trackli.atlassian import scopes
from trackli.atlassian.models import ProbeResult as Probe
from trackli.atlassian.errors import AtlassianError
from trackli.atlassian.transport import RetryPolicy
from trackli.context import Context
from trackli.crypto import SecretKeyError
from trackli.models import AtlassianConnection, SyncRun, utcnow


# What to fix first: a connection that must be reconnected makes every other finding moot.
RECONNECT, READ_SCOPE, WRITE_SCOPE, RATE_LIMITED, ERROR, WARNING, FINE = range(7)
WRITE_SCOPES = {"write:task:confluence"}


@dataclass
class Finding:
    check: str
    ok: bool
    detail: str
    fix: str | None = None
    rank: int = FINE  # among the findings that are not ok, the lowest rank is the headline
    headline: str | None = None  # what the page says first when this finding leads


@dataclass
class Diagnosis:
    connection_id: int
    site: str
    kind: str
    headline: str
    ok: bool
    findings: list[Finding] = field(default_factory=list)
    scope_table: list[dict[str, Any]] = field(default_factory=list)
    probes: list[Probe] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    outbox: dict[str, Any] = field(default_factory=dict)
    rate_limit: dict[str, str] | None = None
    points: dict[str, Any] = field(default_factory=dict)  # Atlassian points spent in the last hour


def points_last_hour(session: Session, connection_id: int) -> dict[str, int]:
    """Atlassian points the syncs of this connection, and of the whole deployment, spent in the last hour."""
    since = utcnow() - dt.timedelta(hours=1)
    spent = select(func.coalesce(func.sum(SyncRun.points), 0)).where(SyncRun.started_at >= since)
    return {"connection": int(session.scalar(spent.where(SyncRun.connection_id == connection_id)) or 0),
            "deployment": int(session.scalar(spent) or 0)}


def diagnose(ctx: Context, user_id: int, connection_id: int, *, live: bool = False,
             http: httpx.Client | None = None) -> Diagnosis:
    with ctx.session() as session:
        conn = connections.get_connection(session, user_id, connection_id)
        runs = sync.last_runs(session, user_id, connection_id, limit=5)
        entries = outbox.entries(session, user_id, ("pending", "sending", "failed"), connection_id)
        pace = scheduler.current(session)
        points = points_last_hour(session, connection_id) | {
            "pool": ctx.settings.quota_points_per_hour,
            "applies": "Atlassian's points pool for OAuth 2.0 apps" if conn.kind == "oauth"
            else "burst limits only (API-token traffic is not points-based); counted all the same",
            "stretch": pace.stretch if pace else 1.0,
            "stretched_because": pace.reason if pace and pace.stretch > 1 else None,
            "stretched_since": pace.since if pace and pace.stretch > 1 else None,
            "every_s": ctx.settings.sync_every_s,
            "next_sync_at": conn.next_sync_at,
            "synced_by": scheduler.describe_scheduler(conn.last_synced_by),
            "presence": presence.of_user(ctx, user_id),
            "embedded": ctx.settings.embedded_worker,
            "failures_in_a_row": conn.sync_failures,
            "last_full_sync_at": conn.last_full_sync_at}
    rate_limit = next((r.rate_limit for r in runs if r.rate_limit), None)
    findings = _credentials(conn) + _scopes(conn)
    findings += _history(runs, rate_limit, [e for e in entries if e.state == "failed"])
    scope_table = [{"operation": f.operation.label, "required": " ".join(f.operation.scopes),
                    "missing": " ".join(f.missing), "ok": f.ok} for f in scopes.diagnose(conn.scopes)] \
        if conn.kind == "oauth" else []

    probes: list[Probe] = []
    usable = bool(conn.access_token_enc) and conn.status != "needs_reconnect"
    if live and usable:
        probes = _probe(ctx, conn, http)
        findings += [Finding(f"Live probe: {p.api}", False, p.detail, rank=ERROR, headline=f"{p.api}: {p.detail}")
                     for p in probes if p.ok is False]
    problems = sorted((f for f in findings if not f.ok), key=lambda f: f.rank)
    if problems:
        top = problems[0]
        headline = top.headline or f"{top.check}: {top.detail}" + (f". Fix: {top.fix}." if top.fix else "")
    elif probes:
        headline = "Everything works: every API Trackli uses answered."
    else:
        headline = "The stored settings look right; run the live probe to check each API."
    failed = [e for e in entries if e.state == "failed"]
    return Diagnosis(
        connection_id=conn.id, site=conn.site_url, kind=conn.kind, headline=headline, ok=not problems,
        findings=sorted(findings, key=lambda f: (f.ok, f.rank)), scope_table=scope_table, probes=probes,
        points=points,
        runs=[{"started_at": r.started_at, "trigger": r.trigger, "kind": r.kind, "outcome": r.outcome, "new": r.new_count,
               "gone": r.gone_count, "requests": r.requests, "points": r.points, "duration_s": r.duration_s,
               "error": r.error} for r in runs],
        outbox={"waiting": len(entries) - len(failed), "failed": len(failed),
                "failures": [{"card_id": e.card_id, "status": e.desired_status, "error": e.last_error} for e in failed]},
        rate_limit=rate_limit,
    )


RECONNECT_FIX = "Reconnect Atlassian on the Connect page"


def _credentials(conn: AtlassianConnection) -> list[Finding]:
    """Stored credentials, saying the same thing as the connection's state."""
    now = utcnow()
    refused = conn.status == "needs_reconnect"
    has_token = bool(conn.access_token_enc)
    reason = conn.last_error or "the connection has no valid credentials"
    found = [Finding("Credentials stored", has_token,
                     "encrypted token present" if has_token else "no token: the connection was disconnected",
                     None if has_token else RECONNECT_FIX, rank=RECONNECT,
                     headline=None if has_token else f"Reconnect needed: {reason}.")]
    if refused:
        found.append(Finding("Connection status", False, f"reconnect needed: {reason}", RECONNECT_FIX, rank=RECONNECT,
                             headline=f"Reconnect needed: {reason}."))
    elif conn.status == "error":
        found.append(Finding("Connection status", False, conn.last_error or "error", None, rank=ERROR,
                             headline=f"The connection has an error: {conn.last_error}"))
    if conn.kind != "oauth":
        return found
    if refused or not has_token:
        found.append(Finding("Access token expiry", False, "not usable until you reconnect", RECONNECT_FIX, rank=RECONNECT))
        found.append(Finding("Can refresh", False, "Atlassian refused the refresh token" if refused else "no refresh token",
                             RECONNECT_FIX, rank=RECONNECT))
        return found
    if conn.token_expires_at:
        left = (conn.token_expires_at - now).total_seconds()
        found.append(Finding("Access token expiry", True, f"expires {conn.token_expires_at:%Y-%m-%d %H:%M} UTC" + (
            " (expired: it will be refreshed on the next call)" if left < 0 else f" (in {int(left // 60)} min)")))
    can_refresh = bool(conn.refresh_token_enc)
    found.append(Finding("Can refresh", can_refresh,
                         "refresh token stored (offline_access granted)" if can_refresh else "no refresh token",
                         None if can_refresh else scopes.fix_for(["offline_access"]), rank=WARNING))
    return found


def _scopes(conn: AtlassianConnection) -> list[Finding]:
    if conn.kind != "oauth":
        return []
    missing = scopes.missing_product_scopes(conn.scopes)
    if not missing:
        return [Finding("Granted scopes", True, "every scope Trackli needs was granted")]
    needs = [op for op in scopes.OPERATIONS.values() if set(op.scopes) & set(missing)]
    what = ", ".join(op.label for op in needs[:3])
    reads = [m for m in missing if m not in WRITE_SCOPES]
    return [Finding("Granted scopes", False, f"missing {', '.join(missing)}", scopes.fix_for(missing),
                    rank=READ_SCOPE if reads else WRITE_SCOPE,
                    headline=f"Trackli cannot {what}: the connection lacks {' and '.join(missing)}. "
                             f"Fix: {scopes.fix_for(missing)}.")]


def _history(runs: list[Any], rate_limit: dict[str, str] | None, failed: list[Any]) -> list[Finding]:
    found = []
    last = runs[0] if runs else None
    limited = bool(last and last.outcome == "failed" and last.error and "rate-limiting" in last.error) or (
        bool(rate_limit) and str((rate_limit or {}).get("X-RateLimit-Remaining", "")).strip() == "0")
    if limited:
        found.append(Finding("Rate limits", False, "Atlassian is rate-limiting this connection",
                             "nothing to do: Trackli waits and tries again; fewer manual syncs help", rank=RATE_LIMITED,
                             headline="Atlassian is rate-limiting this connection: Trackli waits and tries again."))
    skew = getattr(last, "clock_skew_s", None) if last else None
    if skew:
        ahead = f"{abs(skew) / 60:.0f} min {'ahead of' if skew > 0 else 'behind'}"
        found.append(Finding("Clock", False, f"Atlassian's clock (its Date header) was {ahead} this server's at the "
                             "last sync: not trusted, so the next poll asks from the last trusted time",
                             "check this server's clock (NTP); nothing is missed meanwhile", rank=WARNING))
    if failed:
        found.append(Finding("Completions", False, f"{len(failed)} change(s) could not be sent to Confluence",
                             "retry them from their cards on the Board", rank=WARNING))
    return found


def _probe(ctx: Context, conn: AtlassianConnection, http: httpx.Client | None) -> list[Probe]:
    try:
        client = connections.client_for(ctx, conn, http=http, retry=RetryPolicy(tries=1))
    except (AtlassianError, SecretKeyError) as exc:
        return [Probe("credentials", "-", False, None, None, str(exc))]
    with client:
        probes = client.probe(conn.account_id or "")
    # With no task to try a write on, the write is judged by the granted scopes.
    can_write = conn.kind == "api_token" or "write:task:confluence" in conn.scopes.split()
    return [Probe(p.api, p.method, can_write, None, None, f"{p.detail}; judged by the granted scopes")
            if p.ok is None else p for p in probes]
