"""Why a connection works or fails, as structured findings the diagnostics page and CLI show.

The headline turns the first version's blocker — a 401 on the tasks API because two scopes were
never enabled — into one sentence naming the scopes and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from trackli import connections, outbox, sync
from trackli.atlassian import scopes
from trackli.atlassian.client import ProbeResult as Probe
from trackli.atlassian.errors import AtlassianError
from trackli.atlassian.transport import RetryPolicy
from trackli.context import Context
from trackli.crypto import SecretKeyError
from trackli.models import AtlassianConnection, utcnow


@dataclass
class Finding:
    check: str
    ok: bool
    detail: str
    fix: str | None = None


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


def diagnose(ctx: Context, user_id: int, connection_id: int, *, live: bool = False,
             http: httpx.Client | None = None) -> Diagnosis:
    with ctx.session() as session:
        conn = connections.get_connection(session, user_id, connection_id)
        runs = sync.last_runs(session, user_id, connection_id, limit=5)
        entries = outbox.entries(session, user_id, ("pending", "sending", "failed"), connection_id)
    findings: list[Finding] = []
    now = utcnow()
    has_token = bool(conn.access_token_enc)
    findings.append(Finding("Credentials stored", has_token,
                            "encrypted token present" if has_token else "no token: the connection was disconnected",
                            None if has_token else "Reconnect on the Connect page"))
    if conn.kind == "oauth":
        if conn.token_expires_at:
            left = conn.token_expires_at - now
            findings.append(Finding("Access token expiry", True,
                                    f"expires {conn.token_expires_at:%Y-%m-%d %H:%M} UTC" +
                                    (" (expired: it will be refreshed on the next call)" if left.total_seconds() < 0 else
                                     f" (in {int(left.total_seconds() // 60)} min)")))
        can_refresh = bool(conn.refresh_token_enc)
        findings.append(Finding("Can refresh", can_refresh,
                                "refresh token stored (offline_access granted)" if can_refresh else "no refresh token",
                                None if can_refresh else scopes.fix_for(["offline_access"])))
    if conn.status != "ok":
        findings.append(Finding("Connection status", False, f"{conn.status}: {conn.last_error or ''}",
                                "Reconnect on the Connect page" if conn.status == "needs_reconnect" else None))

    scope_table = []
    missing_all: list[str] = []
    if conn.kind == "oauth":
        for f in scopes.diagnose(conn.scopes):
            scope_table.append({"operation": f.operation.label, "required": " ".join(f.operation.scopes),
                                "missing": " ".join(f.missing), "ok": f.ok})
            missing_all += [m for m in f.missing if m not in missing_all]
        if missing_all:
            findings.append(Finding("Granted scopes", False, f"missing {', '.join(missing_all)}", scopes.fix_for(missing_all)))
        else:
            findings.append(Finding("Granted scopes", True, "every scope Trackli needs was granted"))

    probes: list[Probe] = []
    if live and has_token:
        probes = _probe(ctx, conn, http)

    headline = _headline(conn, missing_all, probes, findings)
    ok = all(f.ok for f in findings) and all(p.ok for p in probes)
    failed = [e for e in entries if e.state == "failed"]
    return Diagnosis(
        connection_id=conn.id, site=conn.site_url, kind=conn.kind, headline=headline, ok=ok, findings=findings,
        scope_table=scope_table, probes=probes,
        runs=[{"started_at": r.started_at, "trigger": r.trigger, "outcome": r.outcome, "new": r.new_count,
               "gone": r.gone_count, "requests": r.requests, "duration_s": r.duration_s, "error": r.error} for r in runs],
        outbox={"waiting": len(entries) - len(failed), "failed": len(failed),
                "failures": [{"card_id": e.task_id, "status": e.desired_status, "error": e.last_error} for e in failed]},
        rate_limit=next((r.rate_limit for r in runs if r.rate_limit), None),
    )


def _headline(conn: AtlassianConnection, missing: list[str], probes: list[Probe], findings: list[Finding]) -> str:
    if missing:
        needs = [op for op in scopes.OPERATIONS.values() if set(op.scopes) & set(missing)]
        what = ", ".join(op.label for op in needs[:3])
        return (f"Trackli cannot {what}: the connection lacks {' and '.join(missing)}. "
                f"Fix: {scopes.fix_for(missing)}.")
    if conn.status == "needs_reconnect" or not conn.access_token_enc:
        return f"Reconnect needed: {conn.last_error or 'the connection has no valid credentials'}."
    if conn.status == "error":
        return f"The connection has an error: {conn.last_error}"
    bad = [p for p in probes if not p.ok]
    if bad:
        return f"{bad[0].api}: {bad[0].detail}"
    if probes:
        return "Everything works: every API Trackli uses answered."
    return "The stored settings look right; run the live probe to check each API."


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
