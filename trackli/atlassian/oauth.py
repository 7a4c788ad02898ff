"""Atlassian OAuth 2.0 (3LO) over HTTP: authorize URL, code exchange, refresh, sites.

Storage, locking and state checks are in trackli.atlassian.connections; this module only talks.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx

from trackli.atlassian.errors import ReconnectRequired, RemoteError
from trackli.atlassian.client import excerpt
from trackli.atlassian.scopes import PRODUCT_SCOPES
from trackli.config import Settings


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


def authorize_url(settings: Settings, state: str, scopes: tuple[str, ...] = PRODUCT_SCOPES) -> str:
    query = {
        "audience": "api.atlassian.com",
        "client_id": settings.atlassian_client_id,
        "scope": " ".join(scopes),
        "redirect_uri": settings.atlassian_redirect_uri,
        "state": state,
        "response_type": "code",
        "prompt": "consent",
    }
    return f"{settings.atlassian_auth_url}/authorize?{urlencode(query)}"


def _token_request(http: httpx.Client, settings: Settings, body: dict[str, Any], tries: int = 3) -> TokenSet:
    url = f"{settings.atlassian_auth_url}/oauth/token"
    for attempt in range(1, tries + 1):
        try:
            response = http.post(url, json=body, headers={"Accept": "application/json"})
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            # Safe to repeat: a rotated refresh token may be reused within Atlassian's leeway.
            if attempt < tries:
                time.sleep(0.2 * attempt)
                continue
            raise RemoteError(f"could not reach Atlassian's token endpoint ({exc.__class__.__name__})", transient=True) from None
        if response.status_code in (500, 502, 503, 504) and attempt < tries:
            time.sleep(0.2 * attempt)
            continue
        break
    try:
        data = response.json()
    except ValueError:
        data = {}
    if response.status_code >= 400:
        error = data.get("error") if isinstance(data, dict) else None
        if error in ("invalid_grant", "unauthorized_client", "access_denied"):
            raise ReconnectRequired(f"Atlassian refused the {'refresh token' if body['grant_type'] == 'refresh_token' else 'authorization code'} ({error})")
        if error == "invalid_client":
            raise RemoteError("Atlassian does not recognise the app's client id and secret: check ATLASSIAN_CLIENT_ID and ATLASSIAN_CLIENT_SECRET",
                              response.status_code)
        raise RemoteError("Atlassian's token endpoint refused the request", response.status_code, excerpt(response),
                          transient=response.status_code >= 500)
    return TokenSet.from_response(data)


def exchange_code(http: httpx.Client, settings: Settings, code: str) -> TokenSet:
    return _token_request(http, settings, {
        "grant_type": "authorization_code",
        "client_id": settings.atlassian_client_id,
        "client_secret": settings.atlassian_client_secret,
        "code": code,
        "redirect_uri": settings.atlassian_redirect_uri,
    })


def refresh(http: httpx.Client, settings: Settings, refresh_token: str) -> TokenSet:
    return _token_request(http, settings, {
        "grant_type": "refresh_token",
        "client_id": settings.atlassian_client_id,
        "client_secret": settings.atlassian_client_secret,
        "refresh_token": refresh_token,
    })


def accessible_resources(http: httpx.Client, settings: Settings, access_token: str) -> list[Site]:
    response = http.get(
        f"{settings.atlassian_api_url}/oauth/token/accessible-resources",
        headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
    )
    if response.status_code >= 400:
        raise RemoteError("Atlassian would not list the sites this grant reaches", response.status_code, excerpt(response))
    try:
        data = response.json()
    except ValueError:
        raise RemoteError("Atlassian sent a site list that is not JSON") from None
    sites = []
    for item in data if isinstance(data, list) else []:
        if isinstance(item, dict) and item.get("id") and item.get("url"):
            sites.append(Site(str(item["id"]), str(item.get("name") or item["url"]), str(item["url"]).rstrip("/"),
                              tuple(item.get("scopes") or ())))
    return sites
