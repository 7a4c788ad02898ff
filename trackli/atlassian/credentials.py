"""Who the client is to Atlassian: a Bearer token under the API gateway (OAuth 3LO) or Basic
email:token against the site (API token). Stored connections implement `Credentials` in
`trackli.connections`; `StaticCredentials` never refresh (tests, the API-token connection check)."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Protocol


class Credentials(Protocol):
    """What the client needs to authenticate; stored connections implement it in trackli.connections."""

    kind: str  # "oauth" | "api_token"
    root: str  # where /wiki/... paths hang: the gateway prefix or the site URL
    granted_scopes: str | None

    def authorization(self) -> str: ...

    def refresh_after_401(self, rejected: str) -> bool:
        """A 401 that is not a scope failure: get a fresh credential. False if impossible."""
        ...


@dataclass
class StaticCredentials:
    """Bearer or Basic credentials that never refresh (tests, the API-token connection check)."""

    kind: str
    root: str
    header: str = field(repr=False)
    granted_scopes: str | None = None

    @classmethod
    def basic(cls, site_url: str, email: str, token: str) -> "StaticCredentials":
        raw = base64.b64encode(f"{email}:{token}".encode()).decode()
        return cls("api_token", site_url.rstrip("/"), f"Basic {raw}")

    @classmethod
    def bearer(cls, api_url: str, cloud_id: str, token: str, granted_scopes: str | None = None) -> "StaticCredentials":
        return cls("oauth", gateway_root(api_url, cloud_id), f"Bearer {token}", granted_scopes)

    def authorization(self) -> str:
        return self.header

    def refresh_after_401(self, rejected: str) -> bool:
        return False


def gateway_root(api_url: str, cloud_id: str) -> str:
    return f"{api_url.rstrip('/')}/ex/confluence/{cloud_id}"
