"""Atlassian OAuth 2.0 (3LO) over HTTP: authorize URL, code exchange, refresh, sites.

Storage, locking and state checks are in trackli.connections; this module only talks, through
the same `Transport` (timeouts, retries) as the Confluence client.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from trackli.atlassian.models import clean
from trackli.atlassian.errors import ReconnectRequired, RemoteError
from trackli.atlassian.scopes import PRODUCT_SCOPES
from trackli.atlassian.transport import Transport


@dataclass(frozen=True)
class TokenSet:
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_at: dt.datetime
    scope: str

    @classmethod
    def from_response(cls, data: dict[str, Any], now: dt.datetime | None = None) -> "TokenSet":
        now = now or dt.datetime.now(dt.timezone.utc)
        if not isinstance(data, dict) or not data.get("access_token"):
            raise RemoteError("Atlassian's token endpoint answered without an access token")
        try:
            expires_in = int(data.get("expires_in") or 3600)
        except (TypeError, ValueError):
            expires_in = 3600
        return cls(
            access_token=str(data["access_token"]),
            refresh_token=data.get("refresh_token"),
            expires_at=now + dt.timedelta(seconds=expires_in),
            scope=str(data.get("scope") or ""),
        )


@dataclass(frozen=True)
class Site:
    cloud_id: str
    name: str
    url: str
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class OAuthApp:
    """What the OAuth calls use of the settings: the app's registration and the two Atlassian origins
    (never the database URL, the secret key or anything else Trackli knows)."""

    client_id: str | None
    client_secret: str | None = field(repr=False)
    redirect_uri: str | None
    auth_url: str
    api_url: str


def pkce_pair() -> tuple[str, str]:
    """A PKCE code verifier and its S256 challenge (RFC 7636)."""
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_url(app: OAuthApp, state: str, scopes: tuple[str, ...] = PRODUCT_SCOPES,
                  code_challenge: str | None = None) -> str:
    query = {
        "audience": "api.atlassian.com",
        "client_id": app.client_id,
        "scope": " ".join(scopes),
        "redirect_uri": app.redirect_uri,
        "state": state,
        "response_type": "code",
        "prompt": "consent",
    }
    if code_challenge:
        query |= {"code_challenge": code_challenge, "code_challenge_method": "S256"}
    return f"{app.auth_url}/authorize?{urlencode(query)}"


def _token_request(transport: Transport, app: OAuthApp, body: dict[str, Any]) -> TokenSet:
    # Safe to repeat on a transient failure: a rotated refresh token may be reused within Atlassian's leeway.
    transport.keep_secret(*(str(v) for k, v in body.items() if k in ("client_secret", "code", "refresh_token", "code_verifier")))
    response = transport.send("POST", f"{app.auth_url}/oauth/token", json_body=body)
    try:
        data = response.json()
    except (ValueError, RecursionError):
        data = {}
    if response.status_code >= 400:
        error = data.get("error") if isinstance(data, dict) else None
        if error in ("invalid_grant", "unauthorized_client", "access_denied"):
            raise ReconnectRequired(f"Atlassian refused the {'refresh token' if body['grant_type'] == 'refresh_token' else 'authorization code'} ({error})")
        if error == "invalid_client":
            raise RemoteError("Atlassian does not recognise the app's client id and secret: check ATLASSIAN_CLIENT_ID and ATLASSIAN_CLIENT_SECRET",
                              response.status_code)
        raise RemoteError("Atlassian's token endpoint refused the request", response.status_code, transport.excerpt(response))
    return TokenSet.from_response(data)


def exchange_code(transport: Transport, app: OAuthApp, code: str, code_verifier: str | None = None) -> TokenSet:
    body: dict[str, Any] = {
        "grant_type": "authorization_code",
        "client_id": app.client_id,
        "client_secret": app.client_secret,
        "code": code,
        "redirect_uri": app.redirect_uri,
    }
    if code_verifier:
        body["code_verifier"] = code_verifier
    return _token_request(transport, app, body)


def refresh(transport: Transport, app: OAuthApp, refresh_token: str) -> TokenSet:
    return _token_request(transport, app, {
        "grant_type": "refresh_token",
        "client_id": app.client_id,
        "client_secret": app.client_secret,
        "refresh_token": refresh_token,
    })


def accessible_resources(transport: Transport, app: OAuthApp, access_token: str) -> list[Site]:
    response = transport.send("GET", f"{app.api_url}/oauth/token/accessible-resources",
                              headers={"Authorization": f"Bearer {access_token}"})
    if response.status_code >= 400:
        raise RemoteError("Atlassian would not list the sites this grant reaches", response.status_code, transport.excerpt(response))
    try:
        data = response.json()
    except (ValueError, RecursionError):
        raise RemoteError("Atlassian sent a site list that is not JSON") from None
    sites = []
    for item in data if isinstance(data, list) else []:
        if not isinstance(item, dict):
            continue
        cloud_id, url = clean(item.get("id")), site_url(item.get("url"), app)
        if cloud_id and url:  # a site whose address is not a plain https URL is never stored or linked
            scopes = item.get("scopes")
            sites.append(Site(cloud_id, clean(item.get("name")) or url, url,
                              tuple(s for s in scopes if isinstance(s, str)) if isinstance(scopes, list) else ()))
    return sites


def site_url(value: Any, app: OAuthApp) -> str | None:
    """A site address from upstream, if it is https (or the configured API's own origin, as the
    simulator is) and carries no user name, password, query or fragment."""
    if not isinstance(value, str) or clean(value) != value.strip() or len(value) > 500:
        return None
    parts = urlsplit(value.strip().rstrip("/"))
    api = urlsplit(app.api_url)
    same_as_api = (parts.scheme, parts.netloc) == (api.scheme, api.netloc)
    if not parts.hostname or parts.username or parts.password or parts.query or parts.fragment:
        return None
    if parts.scheme != "https" and not same_as_api:
        return None
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
