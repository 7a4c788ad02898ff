"""Stored Atlassian connections: the OAuth flow with its `state`, API-token connections, encrypted
tokens, the serialised refresh of rotating refresh tokens, and a ready client for each connection.

`trackli.atlassian` only talks HTTP; everything here that touches the database, the audit log or
the outbox is the product's side of a connection. `OAuthCredentials` implements the client's
`Credentials` protocol for a stored connection.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from trackli import audit, outbox
from trackli.atlassian import oauth, scopes
from trackli.atlassian.client import ConfluenceClient
from trackli.atlassian.credentials import Credentials, StaticCredentials, gateway_root
from trackli.atlassian.errors import AtlassianError, ReconnectRequired, RemoteError
from trackli.atlassian.transport import RetryPolicy, Transport
from trackli.config import Settings
from trackli.context import Context
from trackli.crypto import SecretKeyError
from trackli.db import lock_row
from trackli.errors import NotFound, UserError, ValidationError
from trackli.models import AtlassianConnection, ConnectionStatus, OAuthState, utcnow

STATE_TTL = dt.timedelta(minutes=10)
STATE_PURGE_AFTER = dt.timedelta(days=1)
REFRESH_MARGIN = dt.timedelta(minutes=5)


class OAuthNotConfigured(UserError):
    def __init__(self, missing: list[str]):
        super().__init__(
            "Atlassian OAuth is not configured: set " + ", ".join(missing) +
            " (environment or .streamlit/secrets.toml) from your app in Atlassian's developer console, "
            "or connect with an API token instead"
        )


class StateRejected(UserError):
    pass


# ---- queries ------------------------------------------------------------------------------------

def list_connections(session: Session, user_id: int) -> list[AtlassianConnection]:
    return list(session.scalars(
        select(AtlassianConnection).where(AtlassianConnection.user_id == user_id).order_by(AtlassianConnection.id)
    ))


def get_connection(session: Session, user_id: int, connection_id: int) -> AtlassianConnection:
    conn = session.get(AtlassianConnection, connection_id)
    if conn is None or conn.user_id != user_id:
        raise NotFound(f"connection {connection_id} not found")
    return conn


def describe(conn: AtlassianConnection) -> dict[str, Any]:
    """What a page or the CLI shows of a connection (never a token)."""
    return {
        "id": conn.id,
        "kind": conn.kind,
        "site_url": conn.site_url,
        "site_name": conn.site_name,
        "cloud_id": conn.cloud_id,
        "account_id": conn.account_id,
        "account_email": conn.account_email,
        "account_name": conn.account_name,
        "scopes": conn.scopes.split() if conn.scopes else [],
        "missing_scopes": scopes.missing_product_scopes(conn.scopes) if conn.kind == "oauth" else [],
        "token_expires_at": conn.token_expires_at.isoformat() if conn.token_expires_at else None,
        "has_token": bool(conn.access_token_enc),
        "can_refresh": bool(conn.refresh_token_enc) if conn.kind == "oauth" else None,
        "status": conn.status,
        "last_error": conn.last_error,
    }


# ---- OAuth 2.0 (3LO) ----------------------------------------------------------------------------

def _hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def start_oauth(ctx: Context, user_id: int, browser: str | None = None) -> str:
    """A new single-use `state` bound to the user (and, given `browser`, to the browser that keeps that
    value in a cookie), with a PKCE verifier; the authorize URL to send the browser to."""
    missing = ctx.settings.missing_oauth_settings()
    if missing:
        raise OAuthNotConfigured(missing)
    state = secrets.token_urlsafe(32)
    verifier, challenge = oauth.pkce_pair()
    now = utcnow()
    with ctx.session() as session:
        # States that expired a day ago are of no use to anyone: purge them (they may hold tokens).
        session.execute(delete(OAuthState).where(OAuthState.expires_at < now - STATE_PURGE_AFTER))
        session.add(OAuthState(state_hash=_hash(state), user_id=user_id, created_at=now, expires_at=now + STATE_TTL,
                               code_verifier_enc=ctx.vault.encrypt(verifier),
                               browser_hash=_hash(browser) if browser else None))
        asked = scopes.PRODUCT_SCOPES + ((scopes.NAMES_SCOPE,) if ctx.settings.atlassian_names_scope else ())
        audit.record(session, user_id, "oauth.initiated", {"scopes": list(asked), "pkce": True})
    return oauth.authorize_url(oauth_app(ctx.settings), state, asked, code_challenge=challenge)


@dataclass
class OAuthOutcome:
    status: str  # "connected" | "already_connected" | "choose_site"
    connection_id: int | None = None
    sites: list[oauth.Site] = field(default_factory=list)


def _pending_payload(ctx: Context, encrypted: str) -> dict[str, Any]:
    """The token bundle and site list kept (encrypted) while the person picks a site."""
    payload = json.loads(ctx.vault.decrypt(encrypted) or "{}")
    return payload if isinstance(payload, dict) else {}


def _reject(ctx: Context, user_id: int, reason: str) -> StateRejected:
    with ctx.session() as session:
        audit.record(session, user_id, "oauth.state_rejected", {"reason": reason}, success=False, error=reason)
    return StateRejected(f"This sign-in link is not valid ({reason}). Start again with Connect Atlassian.")


def finish_oauth(ctx: Context, user_id: int, state: str, code: str, http: httpx.Client | None = None,
                 browser: str | None = None) -> OAuthOutcome:
    """The callback: check `state` (its user, its browser, its age, single use), exchange the code once
    with the PKCE verifier, and save the connection (or ask for a site).

    Replaying a callback that already succeeded is harmless: it answers "already_connected".
    """
    if not state or not code:
        raise _reject(ctx, user_id, "the callback had no state or no code")
    with ctx.session() as session:
        row = session.execute(
            select(OAuthState).where(OAuthState.state_hash == _hash(state)).with_for_update()
        ).scalar_one_or_none()
        if row is None:
            reason = "unknown state"
        elif row.user_id != user_id:
            reason = "the state belongs to another user"
        elif row.browser_hash and (not browser or _hash(browser) != row.browser_hash):
            reason = "the sign-in was started in another browser"
        elif row.used_at is not None:
            if row.connection_id is not None:
                return OAuthOutcome("already_connected", row.connection_id)
            if row.pending_payload_enc:
                payload = _pending_payload(ctx, row.pending_payload_enc)
                return OAuthOutcome("choose_site", sites=[oauth.Site(**s) for s in payload["sites"]])
            reason = "the state was already used"
        elif row.expires_at < utcnow():
            reason = "the state expired"
        else:
            reason = None
            row.used_at = utcnow()  # committed before the exchange: a second callback cannot exchange again
            verifier = ctx.vault.decrypt(row.code_verifier_enc) if row.code_verifier_enc else None
    if reason:
        raise _reject(ctx, user_id, reason)

    transport = transport_for(ctx, http)
    try:
        try:
            tokens = oauth.exchange_code(transport, oauth_app(ctx.settings), code, verifier)
            sites = oauth.accessible_resources(transport, oauth_app(ctx.settings), tokens.access_token)
        except AtlassianError as exc:
            with ctx.session() as session:
                audit.record(session, user_id, "oauth.connect_failed", {}, success=False, error=str(exc))
            raise
        if not sites:
            raise RemoteError("this Atlassian account has no Confluence site that granted access to Trackli")
        if len(sites) == 1:
            conn_id = _save_oauth(ctx, user_id, tokens, sites[0], transport)
            with ctx.session() as session:
                session.get_one(OAuthState, _hash(state)).connection_id = conn_id
            return OAuthOutcome("connected", conn_id)
        payload = {
            "tokens": {"access_token": tokens.access_token, "refresh_token": tokens.refresh_token,
                       "expires_at": tokens.expires_at.isoformat(), "scope": tokens.scope},
            "sites": [s.__dict__ | {"scopes": list(s.scopes)} for s in sites],
        }
        with ctx.session() as session:
            session.get_one(OAuthState, _hash(state)).pending_payload_enc = ctx.vault.encrypt(json.dumps(payload))
        return OAuthOutcome("choose_site", sites=sites)
    finally:
        transport.close()


def choose_site(ctx: Context, user_id: int, state: str, cloud_id: str, http: httpx.Client | None = None,
                browser: str | None = None) -> int:
    with ctx.session() as session:
        row = session.get(OAuthState, _hash(state or ""))
        if row is None or row.user_id != user_id or not row.pending_payload_enc:
            raise _reject(ctx, user_id, "no site choice is waiting for this state")
        if row.browser_hash and (not browser or _hash(browser) != row.browser_hash):
            raise _reject(ctx, user_id, "the sign-in was started in another browser")
        expired = row.expires_at < utcnow()
        if expired:
            row.pending_payload_enc = None  # the tokens it holds are dropped with it
        else:
            payload = _pending_payload(ctx, row.pending_payload_enc)
    if expired:
        raise _reject(ctx, user_id, "the site choice expired")
    site = next((oauth.Site(**s) for s in payload["sites"] if s["cloud_id"] == cloud_id), None)
    if site is None:
        raise ValidationError(f"site {cloud_id!r} was not among the sites Atlassian offered")
    t = payload["tokens"]
    tokens = oauth.TokenSet(t["access_token"], t["refresh_token"], dt.datetime.fromisoformat(t["expires_at"]), t["scope"])
    transport = transport_for(ctx, http)
    try:
        conn_id = _save_oauth(ctx, user_id, tokens, site, transport)
    finally:
        transport.close()
    with ctx.session() as session:
        row = session.get_one(OAuthState, _hash(state))
        row.connection_id, row.pending_payload_enc = conn_id, None
    return conn_id


def _save_oauth(ctx: Context, user_id: int, tokens: oauth.TokenSet, site: oauth.Site, transport: Transport) -> int:
    probe = ConfluenceClient(StaticCredentials.bearer(ctx.settings.atlassian_api_url, site.cloud_id, tokens.access_token,
                                                      tokens.scope), transport=transport)
    account = probe.whoami(ctx.settings.atlassian_api_url)
    vault = ctx.vault
    with ctx.session() as session:
        conn = _same_account(session, user_id, site.cloud_id, site.url, account.account_id)
        if conn is None:  # a first connection, or another account on this site: never the old account's queue
            _room_for_another(ctx, session, user_id)
            conn = AtlassianConnection(user_id=user_id, kind="oauth", cloud_id=site.cloud_id, site_url=site.url)
            session.add(conn)
        conn.kind, conn.cloud_id = "oauth", site.cloud_id
        conn.site_url, conn.site_name = site.url, site.name
        conn.account_id, conn.account_email, conn.account_name = account.account_id, account.email, account.name
        conn.access_token_enc = vault.encrypt(tokens.access_token)
        conn.refresh_token_enc = vault.encrypt(tokens.refresh_token)
        conn.token_expires_at = tokens.expires_at
        conn.scopes = tokens.scope
        conn.status, conn.last_error = "ok", None
        fresh_start(conn)
        session.flush()
        outbox.requeue_after_reconnect(session, conn.id)
        missing = scopes.missing_product_scopes(tokens.scope)
        audit.record(session, user_id, "oauth.connected", {
            "connection_id": conn.id, "site": site.url, "granted_scopes": tokens.scope.split(), "missing_scopes": missing,
        })
        return conn.id


def oauth_app(settings: Settings) -> oauth.OAuthApp:
    """The part of the settings the OAuth calls need."""
    return oauth.OAuthApp(settings.atlassian_client_id, settings.atlassian_client_secret,
                          settings.atlassian_redirect_uri, settings.atlassian_auth_url, settings.atlassian_api_url)


def _room_for_another(ctx: Context, session: Session, user_id: int) -> None:
    """One person keeps at most `max_connections_per_user` connections (a team deployment's
    workers are shared: nobody may fill them with connections of their own)."""
    cap = ctx.settings.max_connections_per_user
    have = session.scalar(select(func.count()).select_from(AtlassianConnection).where(AtlassianConnection.user_id == user_id))
    if (have or 0) >= cap:
        raise ValidationError(f"you have {have} Atlassian connections, the most one person may keep here ({cap}): "
                              "remove one you no longer use first (TRACKLI_MAX_CONNECTIONS_PER_USER)")


def _same_account(session: Session, user_id: int, cloud_id: str | None, site_url: str,
                  account_id: str) -> AtlassianConnection | None:
    """The person's connection to this Atlassian account on this site, whichever way it was made:
    connecting again updates it (same queue, same cards) instead of adding a second copy."""
    site = AtlassianConnection.cloud_id == cloud_id if cloud_id else AtlassianConnection.site_url == site_url
    return session.scalar(select(AtlassianConnection).where(
        AtlassianConnection.user_id == user_id, AtlassianConnection.account_id == account_id, site,
    ).order_by(AtlassianConnection.id).limit(1))


# ---- API token ----------------------------------------------------------------------------------

def normalise_site_url(site_url: str) -> str:
    site_url = (site_url or "").strip().rstrip("/")
    if site_url and "://" not in site_url:
        site_url = "https://" + site_url  # people paste acme.atlassian.net
    if site_url.endswith("/wiki"):
        site_url = site_url[: -len("/wiki")]
    parts = urlsplit(site_url)
    if not parts.netloc or parts.scheme not in ("http", "https"):
        raise ValidationError(f"{site_url!r} is not a site URL: use https://your-site.atlassian.net")
    if parts.username or parts.password:
        raise ValidationError("the site URL must not contain a user name or password: use https://your-site.atlassian.net "
                              "and give the email and API token in their own fields")
    if parts.query or parts.fragment:
        raise ValidationError("the site URL must be just the site's address, such as https://your-site.atlassian.net")
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ValidationError("the site URL must use https (http is allowed only for 127.0.0.1 and localhost)")
    return f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/")


def connect_api_token(
    ctx: Context, user_id: int, site_url: str, email: str, token: str, http: httpx.Client | None = None,
) -> int:
    problems = []  # every field's problem at once, not one per try
    try:
        site_url = normalise_site_url(site_url)
    except ValidationError as exc:
        problems.append(f"Site URL: {exc}")
    email = (email or "").strip()
    if "@" not in email:
        problems.append("Email: enter the email address of your Atlassian account")
    if not (token or "").strip():
        problems.append("API token: enter one (create it at id.atlassian.com → Security → API tokens)")
    if problems:
        raise ValidationError("; ".join(problems))
    token = token.strip()
    client = ConfluenceClient(StaticCredentials.basic(site_url, email, token),
                              transport=transport_for(ctx, http, RetryPolicy(tries=2)))
    try:
        try:
            account = client.whoami()
            cloud_id = client.cloud_id()
        except ReconnectRequired:
            raise RemoteError("Atlassian refused this email and API token: check both, or create a new token at "
                              "id.atlassian.com → Security → API tokens") from None
    except AtlassianError as exc:
        with ctx.session() as session:
            audit.record(session, user_id, "connection.failed", {"site": site_url, "kind": "api_token"}, success=False, error=str(exc))
        raise
    finally:
        client.close()
    with ctx.session() as session:
        conn = _same_account(session, user_id, cloud_id, site_url, account.account_id)
        if conn is None:
            _room_for_another(ctx, session, user_id)
            conn = AtlassianConnection(user_id=user_id, kind="api_token", site_url=site_url)
            session.add(conn)
        conn.kind, conn.site_url, conn.cloud_id = "api_token", site_url, cloud_id or conn.cloud_id
        conn.site_name = conn.site_name or urlsplit(site_url).netloc
        conn.account_id, conn.account_email, conn.account_name = account.account_id, email, account.name
        conn.access_token_enc = ctx.vault.encrypt(token)
        conn.refresh_token_enc, conn.token_expires_at, conn.scopes = None, None, ""
        conn.status, conn.last_error = "ok", None
        fresh_start(conn)
        session.flush()
        outbox.requeue_after_reconnect(session, conn.id)
        audit.record(session, user_id, "connection.created", {"connection_id": conn.id, "site": site_url, "kind": "api_token"})
        return conn.id


def disconnect(ctx: Context, user_id: int, connection_id: int) -> None:
    """Forget the tokens but keep the connection's queue, cards and unsent completions for a reconnect."""
    with ctx.session() as session:
        conn = get_connection(session, user_id, connection_id)
        conn.access_token_enc = conn.refresh_token_enc = None
        conn.token_expires_at = None
        conn.status, conn.last_error = "needs_reconnect", "Disconnected: connect again to resume syncing"
        audit.record(session, user_id, "connection.disconnected", {"connection_id": connection_id})


def fresh_start(conn: AtlassianConnection) -> None:
    """After a (re)connect: due for a sync now, and that sync is a full sweep (no watermark to trust)."""
    conn.next_sync_at = conn.claimed_until = conn.claimed_by = None
    conn.sync_failures = 0
    conn.last_full_sync_at = conn.watermark_ms = None


def mark(session: Session, conn_id: int, status: ConnectionStatus, error: str | None) -> None:
    conn = session.get(AtlassianConnection, conn_id)
    if conn is not None:
        conn.status, conn.last_error = status, error


# ---- credentials for the client -----------------------------------------------------------------

class OAuthCredentials:
    """Bearer credentials of one stored connection, refreshed with rotation under a row lock.

    Refreshes of a connection are serialised across threads and processes: the refresh takes
    the connection's row lock, re-reads the tokens (another holder may have refreshed already),
    and stores the new pair in the same transaction.
    """

    kind = "oauth"
    granted_scopes: str | None

    def __init__(self, ctx: Context, conn: AtlassianConnection, transport: Transport):
        self.ctx, self.transport, self.connection_id, self.user_id = ctx, transport, conn.id, conn.user_id
        self.root = gateway_root(ctx.settings.atlassian_api_url, conn.cloud_id or "")
        self.granted_scopes = conn.scopes
        self._access = _decrypt(ctx, conn, conn.access_token_enc, "the access token")
        self._expires_at = conn.token_expires_at
        self._lock = threading.Lock()
        self.refreshes = 0  # token requests made by this object

    def _fresh_enough(self, expires_at: dt.datetime | None) -> bool:
        return expires_at is not None and expires_at - utcnow() > REFRESH_MARGIN

    def authorization(self) -> str:
        if not self._access or not self._fresh_enough(self._expires_at):
            self._refresh(self._access)
        return f"Bearer {self._access}"

    def refresh_after_401(self, rejected: str) -> bool:
        self._refresh(rejected.removeprefix("Bearer "), after_401=True)
        return True

    def _refresh(self, stale: str | None, after_401: bool = False) -> None:
        with self._lock:
            failure: ReconnectRequired | None = None
            with self.ctx.session() as session:
                conn = lock_row(session, AtlassianConnection, self.connection_id)
                if conn is None:
                    raise ReconnectRequired("this connection was removed")
                current = _decrypt(self.ctx, conn, conn.access_token_enc, "the access token")
                if current and current != stale and (after_401 or self._fresh_enough(conn.token_expires_at)):
                    # Someone else refreshed while we waited for the lock: use theirs.
                    self._access, self._expires_at, self.granted_scopes = current, conn.token_expires_at, conn.scopes
                    return
                refresh_token = _decrypt(self.ctx, conn, conn.refresh_token_enc, "the refresh token")
                if not refresh_token:
                    failure = ReconnectRequired("this connection has no refresh token (it was disconnected, or offline_access was not granted)")
                else:
                    try:
                        self.refreshes += 1
                        tokens = oauth.refresh(self.transport, oauth_app(self.ctx.settings), refresh_token)
                    except ReconnectRequired as exc:
                        failure = exc
                    except AtlassianError as exc:
                        audit.record(session, conn.user_id, "oauth.token_refresh_failed",
                                     {"connection_id": conn.id, "transient": True}, success=False, error=str(exc))
                        raise
                if failure is not None:
                    conn.status, conn.last_error = "needs_reconnect", str(failure)
                    audit.record(session, conn.user_id, "oauth.token_refresh_failed",
                                 {"connection_id": conn.id}, success=False, error=str(failure))
                else:
                    vault = self.ctx.vault
                    conn.access_token_enc = vault.encrypt(tokens.access_token)
                    conn.refresh_token_enc = vault.encrypt(tokens.refresh_token or refresh_token)
                    conn.token_expires_at = tokens.expires_at
                    conn.scopes = tokens.scope or conn.scopes
                    conn.status, conn.last_error = "ok", None
                    audit.record(session, conn.user_id, "oauth.token_refreshed",
                                 {"connection_id": conn.id, "expires_at": tokens.expires_at.isoformat()})
                    self._access, self._expires_at, self.granted_scopes = tokens.access_token, tokens.expires_at, conn.scopes
            if failure is not None:
                raise failure


def _decrypt(ctx: Context, conn: AtlassianConnection, value: str | None, what: str) -> str | None:
    try:
        return ctx.vault.decrypt(value, f"{what} of connection {conn.id}")
    except SecretKeyError as exc:
        with ctx.session() as session:
            mark(session, conn.id, "error", str(exc))
        raise


def credentials_for(ctx: Context, conn: AtlassianConnection, transport: Transport) -> Credentials:
    if not conn.access_token_enc:
        raise ReconnectRequired("this connection has no credentials (it was disconnected)")
    if conn.kind == "oauth":
        return OAuthCredentials(ctx, conn, transport)
    token = _decrypt(ctx, conn, conn.access_token_enc, "the API token")
    return StaticCredentials.basic(conn.site_url, conn.account_email or "", token or "")


def transport_for(ctx: Context, http: httpx.Client | None = None, retry: RetryPolicy | None = None) -> Transport:
    """A transport with the configured timeout, over `http` when given, else the context's shared client,
    else one of its own (closed with it)."""
    timeout = ctx.settings.http_timeout_s
    return Transport(http or ctx.http, retry=retry, timeout=timeout, response_deadline_s=3 * timeout)


def client_for(
    ctx: Context, conn: AtlassianConnection, http: httpx.Client | None = None, retry: RetryPolicy | None = None,
) -> ConfluenceClient:
    transport = transport_for(ctx, http, retry)
    return ConfluenceClient(credentials_for(ctx, conn, transport), transport=transport)
