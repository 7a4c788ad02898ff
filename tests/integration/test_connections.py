"""Stored connections (trackli.connections): API tokens, the OAuth flow and its `state`, rotating
refresh tokens under a row lock, several sites, against the simulated Atlassian over HTTP."""

import datetime as dt
import threading
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select, text

from tests.conftest import oauth_connect
from tests.helpers import all_tasks
from trackli import connections
from trackli.atlassian.errors import MissingScope, ReconnectRequired, RemoteError
from trackli.models import AtlassianConnection, AuditEntry, OAuthState
from trackli.simulator import ME, ME_API_TOKEN


def test_api_token_connection_and_bad_credentials(sim_ctx, user_id, sim):
    conn_id = connections.connect_api_token(sim_ctx, user_id, sim.url + "/wiki/", ME[1], ME_API_TOKEN)
    with sim_ctx.session() as s:
        conn = connections.get_connection(s, user_id, conn_id)
        assert (conn.site_url, conn.account_id, conn.status) == (sim.url, ME[0], "ok")
        raw = s.execute(text("SELECT access_token_enc FROM atlassian_connections")).scalar_one()
        assert ME_API_TOKEN not in raw
    with pytest.raises(RemoteError, match="refused this email and API token"):
        connections.connect_api_token(sim_ctx, user_id, sim.url, ME[1], "wrong")
    with pytest.raises(RemoteError, match=r"could not reach http://127.0.0.1:9: the connection was refused \(is the "):
        connections.connect_api_token(sim_ctx, user_id, "http://127.0.0.1:9", ME[1], "x")
    from trackli.errors import ValidationError
    with pytest.raises(ValidationError, match="must use https"):
        connections.connect_api_token(sim_ctx, user_id, "http://acme.atlassian.net", ME[1], "x")


def test_every_field_of_the_token_form_is_checked_at_once_and_a_bare_site_gets_https(sim_ctx, user_id):
    from trackli.errors import ValidationError

    with pytest.raises(ValidationError) as err:
        connections.connect_api_token(sim_ctx, user_id, "ftp://x", "not-an-email", " ")
    assert str(err.value).count(";") == 2
    assert all(field in str(err.value) for field in ("Site URL:", "Email:", "API token:"))
    assert connections.normalise_site_url(" acme.atlassian.net/wiki/ ") == "https://acme.atlassian.net"


def test_oauth_end_to_end_refresh_rotation_reuse_and_family_invalidation(sim_ctx, user_id, sim):
    conn_id = oauth_connect(sim_ctx, user_id, sim)
    with sim_ctx.session() as s:
        conn = s.get(AtlassianConnection, conn_id)
        assert conn.account_id == ME[0] and "write:task:confluence" in conn.scopes.split()
        assert conn.token_expires_at > dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=50)
        first_refresh = sim_ctx.vault.decrypt(conn.refresh_token_enc)
    client = connections.client_for(sim_ctx, conn)
    assert len(all_tasks(client, assigned_to=ME[0])) == 30

    sim.state.expire_access_tokens()  # the next call gets a 401, refreshes once, retries
    assert len(all_tasks(client, assigned_to=ME[0])) == 30
    assert client.credentials.refreshes == 1
    with sim_ctx.session() as s:
        conn = s.get(AtlassianConnection, conn_id)
        second_refresh = sim_ctx.vault.decrypt(conn.refresh_token_enc)
        assert second_refresh != first_refresh  # rotated and stored
        events = [e.event_type for e in s.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert events[:2] == ["oauth.initiated", "oauth.connected"] and "oauth.token_refreshed" in events

    # The old refresh token within the leeway still works; after it, the whole family dies.
    assert sim.state.refresh(first_refresh) is not None
    sim.state.clock_offset = 601
    assert sim.state.refresh(first_refresh) is None
    sim.state.clock_offset = 0
    assert sim.state.refresh(second_refresh) is None  # family invalidated

    sim.state.expire_access_tokens()
    with pytest.raises(ReconnectRequired, match="Reconnect Atlassian"):
        all_tasks(client, assigned_to=ME[0])
    with sim_ctx.session() as s:
        conn = s.get(AtlassianConnection, conn_id)
        assert conn.status == "needs_reconnect" and "invalid_grant" in conn.last_error
        assert s.scalar(select(AuditEntry).where(AuditEntry.event_type == "oauth.token_refresh_failed")) is not None


def test_missing_scope_is_named(sim_ctx, user_id, sim):
    sim.state.knobs.enabled_scopes = tuple(s for s in sim.state.knobs.enabled_scopes
                                           if s not in ("read:task:confluence", "write:task:confluence"))
    conn_id = oauth_connect(sim_ctx, user_id, sim)
    with sim_ctx.session() as s:
        conn = s.get(AtlassianConnection, conn_id)
        assert connections.describe(conn)["missing_scopes"] == ["read:task:confluence", "write:task:confluence"]
    client = connections.client_for(sim_ctx, conn)
    with pytest.raises(MissingScope) as err:
        all_tasks(client, assigned_to=ME[0])
    assert err.value.missing == ["read:task:confluence"]
    with pytest.raises(MissingScope) as err:
        client.set_task_status(next(iter(sim.state.tasks)), "complete")
    assert err.value.missing == ["write:task:confluence"]


def test_state_is_single_use_bound_to_the_user_and_expires(sim_ctx, user_id, other_user_id, sim):
    from trackli.connections import StateRejected

    sim.state.knobs.auto_approve = True
    url = connections.start_oauth(sim_ctx, user_id)
    query = parse_qs(urlsplit(httpx.get(url).headers["location"]).query)
    state, code = query["state"][0], query["code"][0]
    with pytest.raises(StateRejected):
        connections.finish_oauth(sim_ctx, other_user_id, state, code)  # foreign
    outcome = connections.finish_oauth(sim_ctx, user_id, state, code)
    assert outcome.status == "connected"
    replay = connections.finish_oauth(sim_ctx, user_id, state, code)  # the Back button
    assert (replay.status, replay.connection_id) == ("already_connected", outcome.connection_id)
    with pytest.raises(StateRejected):
        connections.finish_oauth(sim_ctx, user_id, "made-up", code)
    url = connections.start_oauth(sim_ctx, user_id)
    state2 = parse_qs(urlsplit(url).query)["state"][0]
    with sim_ctx.session() as s:
        for row in s.scalars(select(OAuthState)):
            row.expires_at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    with pytest.raises(StateRejected, match="not valid"):
        connections.finish_oauth(sim_ctx, user_id, state2, "whatever")
    with sim_ctx.session() as s:
        reasons = [e.details["reason"] for e in s.scalars(
            select(AuditEntry).where(AuditEntry.event_type == "oauth.state_rejected").order_by(AuditEntry.id))]
    assert reasons == ["the state belongs to another user", "unknown state", "the state expired"]


def test_several_sites_let_the_person_choose(sim_ctx, user_id, sim):
    sim.state.knobs.auto_approve = True
    sim.state.knobs.extra_sites = 1
    url = connections.start_oauth(sim_ctx, user_id)
    query = parse_qs(urlsplit(httpx.get(url).headers["location"]).query)
    outcome = connections.finish_oauth(sim_ctx, user_id, query["state"][0], query["code"][0])
    assert outcome.status == "choose_site" and len(outcome.sites) == 2
    conn_id = connections.choose_site(sim_ctx, user_id, query["state"][0], sim.state.cloud_id)
    with sim_ctx.session() as s:
        assert s.get(AtlassianConnection, conn_id).cloud_id == sim.state.cloud_id


def test_eight_threads_needing_a_refresh_make_one_token_request(sim_ctx, user_id, sim):
    conn_id = oauth_connect(sim_ctx, user_id, sim)
    with sim_ctx.session() as s:
        s.get(AtlassianConnection, conn_id).token_expires_at = dt.datetime.now(dt.timezone.utc)
    sim.state.counters["token_refreshes"] = 0
    barrier = threading.Barrier(8)
    tokens, errors = [], []

    def worker():
        try:
            with sim_ctx.session() as s:
                conn = s.get(AtlassianConnection, conn_id)
            creds = connections.credentials_for(sim_ctx, conn, connections.transport_for(sim_ctx))  # like a separate process
            barrier.wait()
            tokens.append(creds.authorization())
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sim.state.counters["token_refreshes"] == 1
    assert len(set(tokens)) == 1 and len(tokens) == 8
    with sim_ctx.session() as s:
        stored = sim_ctx.vault.decrypt(s.get(AtlassianConnection, conn_id).access_token_enc)
    assert tokens[0] == f"Bearer {stored}"


def authorize(url, **extra):
    """Follow the authorize URL at the simulated Atlassian (auto-approve); the callback's state and code."""
    if extra:
        url += "&" + "&".join(f"{k}={v}" for k, v in extra.items())
    query = parse_qs(urlsplit(httpx.get(url).headers["location"]).query)
    return query["state"][0], query["code"][0]


def test_pkce_s256_is_sent_and_the_code_is_useless_without_the_verifier(sim_ctx, user_id, sim):
    sim.state.knobs.auto_approve = True
    url = connections.start_oauth(sim_ctx, user_id)
    sent = parse_qs(urlsplit(url).query)
    assert sent["code_challenge_method"] == ["S256"] and len(sent["code_challenge"][0]) == 43
    state, code = authorize(url)
    stolen = httpx.post(f"{sim.url}/oauth/token", json={  # a code intercepted on its way back, without the verifier
        "grant_type": "authorization_code", "client_id": sim.state.client_id,
        "client_secret": sim.state.client_secret, "code": code})
    assert stolen.status_code == 403 and sim.state.counters["pkce_refused"] == 1
    state, code = authorize(connections.start_oauth(sim_ctx, user_id))
    assert connections.finish_oauth(sim_ctx, user_id, state, code).status == "connected"
    sent_verifier = [r for r in sim.state.requests if r["operation"] == "POST token:authorization_code"]
    assert len(sent_verifier) == 2 and sim.state.counters["pkce_refused"] == 1


def test_the_callback_must_come_from_the_browser_that_started_the_sign_in(sim_ctx, user_id, sim):
    from trackli.connections import StateRejected

    sim.state.knobs.auto_approve = True
    state, code = authorize(connections.start_oauth(sim_ctx, user_id, browser="cookie-of-browser-a"))
    for other in (None, "cookie-of-browser-b"):
        with pytest.raises(StateRejected):
            connections.finish_oauth(sim_ctx, user_id, state, code, browser=other)
    assert connections.finish_oauth(sim_ctx, user_id, state, code, browser="cookie-of-browser-a").status == "connected"


def test_another_account_on_the_same_site_gets_its_own_connection_and_the_old_queue_stays(sim_ctx, user_id, sim):
    from trackli import queue, sync

    first = oauth_connect(sim_ctx, user_id, sim)
    sync.sync_connection(sim_ctx, first)
    state, code = authorize(connections.start_oauth(sim_ctx, user_id), account_id="sim-user-2")
    second = connections.finish_oauth(sim_ctx, user_id, state, code).connection_id
    assert second != first
    with sim_ctx.session() as s:
        assert s.get(AtlassianConnection, first).account_id == ME[0]
        assert s.get(AtlassianConnection, second).account_id == "sim-user-2"
        assert {r.connection_id for r in queue.list_pending(s, user_id)} == {first}


def test_the_same_account_connected_again_by_any_method_is_one_connection(sim_ctx, user_id, sim):
    by_token = connections.connect_api_token(sim_ctx, user_id, sim.url, ME[1], ME_API_TOKEN)
    by_oauth = oauth_connect(sim_ctx, user_id, sim)
    again = connections.connect_api_token(sim_ctx, user_id, sim.url + "/wiki", ME[1], ME_API_TOKEN)
    assert by_token == by_oauth == again
    with sim_ctx.session() as s:
        [conn] = s.scalars(select(AtlassianConnection)).all()
        assert (conn.kind, conn.cloud_id, conn.refresh_token_enc) == ("api_token", sim.state.cloud_id, None)


def test_a_waiting_site_choice_expires_and_forgets_its_tokens(sim_ctx, user_id, sim):
    from trackli.connections import StateRejected

    sim.state.knobs.auto_approve = True
    sim.state.knobs.extra_sites = 1
    state, code = authorize(connections.start_oauth(sim_ctx, user_id))
    assert connections.finish_oauth(sim_ctx, user_id, state, code).status == "choose_site"
    with sim_ctx.session() as s:
        row = s.scalar(select(OAuthState).where(OAuthState.pending_payload_enc.isnot(None)))
        row.expires_at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    with pytest.raises(StateRejected, match="not valid"):
        connections.choose_site(sim_ctx, user_id, state, sim.state.cloud_id)
    with sim_ctx.session() as s:
        assert s.scalar(select(OAuthState).where(OAuthState.pending_payload_enc.isnot(None))) is None
        assert s.scalar(select(AtlassianConnection)) is None
