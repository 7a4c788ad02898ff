"""A minimal OpenID Connect provider, so teams mode (`st.login`) can be tried and tested offline.

Discovery, an authorize endpoint that signs the first simulated account in at once, a token
endpoint returning an RS256 id_token, JWKS and userinfo. Enough for Streamlit's Authlib client;
not a general identity provider.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from typing import Any
from urllib.parse import urlencode

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from trackli.simulator.state import SimState

KID = "trackli-sim-1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int(value: int) -> str:
    return _b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))


class OidcProvider:
    def __init__(self, state: SimState):
        self.state = state
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.codes: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()

    @property
    def issuer(self) -> str:
        return f"{self.state.base_url}/oidc"

    def sign(self, claims: dict[str, Any]) -> str:
        header = _b64(json.dumps({"alg": "RS256", "kid": KID, "typ": "JWT"}).encode())
        payload = _b64(json.dumps(claims).encode())
        signature = self.key.sign(f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{header}.{payload}.{_b64(signature)}"

    def account(self, hint: str | None):
        accounts = list(self.state.accounts.values())
        return next((a for a in accounts if hint and a.email == hint), accounts[0])

    async def discovery(self, request: Request) -> Response:
        base = self.issuer
        return JSONResponse({
            "issuer": base, "authorization_endpoint": f"{base}/authorize", "token_endpoint": f"{base}/token",
            "jwks_uri": f"{base}/jwks", "userinfo_endpoint": f"{base}/userinfo",
            "response_types_supported": ["code"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"], "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
        })

    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        account = self.account(q.get("login_hint"))
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.codes[code] = {"client_id": q.get("client_id"), "nonce": q.get("nonce"), "email": account.email,
                                "name": account.name, "sub": account.account_id, "redirect_uri": q.get("redirect_uri")}
        return RedirectResponse(f"{q.get('redirect_uri')}?{urlencode({'code': code, 'state': q.get('state', '')})}", 302)

    async def token(self, request: Request) -> Response:
        form = await request.form()
        with self.lock:
            grant = self.codes.pop(str(form.get("code", "")), None)
        if grant is None:
            return JSONResponse({"error": "invalid_grant"}, 400)
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": grant["client_id"], "sub": grant["sub"], "iat": now, "exp": now + 3600,
                  "email": grant["email"], "email_verified": True, "name": grant["name"]}
        if grant.get("nonce"):
            claims["nonce"] = grant["nonce"]
        return JSONResponse({"access_token": "sim-oidc-" + secrets.token_urlsafe(16), "token_type": "Bearer",
                             "expires_in": 3600, "id_token": self.sign(claims), "scope": "openid email profile"})

    async def jwks(self, request: Request) -> Response:
        numbers = self.key.public_key().public_numbers()
        return JSONResponse({"keys": [{"kty": "RSA", "kid": KID, "use": "sig", "alg": "RS256",
                                       "n": _int(numbers.n), "e": _int(numbers.e)}]})

    async def userinfo(self, request: Request) -> Response:
        account = self.account(None)
        return JSONResponse({"sub": account.account_id, "email": account.email, "name": account.name})

    def routes(self) -> list[Route]:
        return [
            Route("/oidc/.well-known/openid-configuration", self.discovery),
            Route("/oidc/authorize", self.authorize),
            Route("/oidc/token", self.token, methods=["POST"]),
            Route("/oidc/jwks", self.jwks),
            Route("/oidc/userinfo", self.userinfo),
        ]
