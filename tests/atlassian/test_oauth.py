"""The OAuth calls (trackli.atlassian.oauth) with only what they use: the app's registration and two origins."""

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import respx

from trackli.atlassian import oauth

APP = oauth.OAuthApp("cid", "secret", "http://localhost:8501/connect", "https://auth.example", "https://api.example")


def test_the_authorize_url_asks_for_consent_with_pkce():
    verifier, challenge = oauth.pkce_pair()
    query = parse_qs(urlsplit(oauth.authorize_url(APP, "st", code_challenge=challenge)).query)
    assert query["client_id"] == ["cid"] and query["redirect_uri"] == [APP.redirect_uri] and query["state"] == ["st"]
    assert query["code_challenge"] == [challenge] and query["code_challenge_method"] == ["S256"]
    assert "offline_access" in query["scope"][0].split() and len(verifier) >= 43
    assert "secret" not in repr(APP)  # the client secret never shows in a log line


def test_a_code_is_exchanged_with_the_verifier_and_the_rotating_refresh_token_kept():
    from trackli.atlassian.transport import Transport

    with respx.mock() as mock:
        route = mock.post("https://auth.example/oauth/token").respond(200, json={
            "access_token": "at", "refresh_token": "rt-2", "expires_in": 3600, "scope": "read:me offline_access"})
        tokens = oauth.exchange_code(Transport(), APP, "code-1", "verifier-1")
    sent = json.loads(route.calls.last.request.content)
    assert sent["code"] == "code-1" and sent["code_verifier"] == "verifier-1" and sent["grant_type"] == "authorization_code"
    assert sent["client_secret"] == "secret" and (tokens.access_token, tokens.refresh_token) == ("at", "rt-2")


@pytest.mark.parametrize("url, kept", [("https://acme.atlassian.net", True), ("http://acme.atlassian.net", False),
                                       ("https://u:p@acme.atlassian.net", False), ("https://acme.net/?q=1", False),
                                       ("https://api.example", True), (42, False)])
def test_a_site_address_from_upstream_is_https_and_plain(url, kept):
    assert (oauth.site_url(url, APP) is not None) == kept
