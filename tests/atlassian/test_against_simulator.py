"""The real client, connections and OAuth flow over HTTP against the simulated Atlassian.

The behaviours the respx suite pins down request by request are asserted here again end to end,
and every request the client sends and every answer the simulator gives is checked against
Atlassian's OpenAPI document.
"""

import datetime as dt
import threading
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select, text

from tests import contract
from tests.conftest import oauth_connect
from trackli.atlassian import connections
from trackli.atlassian.client import ConfluenceClient, RetryPolicy, StaticCredentials
from trackli.atlassian.errors import MissingScope, NotFoundOrNoPermission, ReconnectRequired, RemoteError
from trackli.models import AtlassianConnection, AuditEntry, OAuthState
from trackli.simulator import ME, ME_API_TOKEN


def recording_http(log):
    def hook(response):
        response.read()
        log.append(response)
    return httpx.Client(event_hooks={"response": [hook]})


def check_contract(log):
    checked = 0
    for response in log:
        url = str(response.request.url)
        if contract.v2_path(url):
            contract.check_request(response.request.method, url, response.request.content or None)
            contract.check_response(response.request.method, url, response.status_code, response.content)
            checked += 1
    assert checked


def test_fetch_paginates_filters_and_enriches_in_few_requests(sim):

    log = []
    client = ConfluenceClient(StaticCredentials.basic(sim.url, ME[1], ME_API_TOKEN), recording_http(log))
    tasks = list(client.iter_tasks(assigned_to=ME[0]))
    mine = [t for t in sim.state.tasks.values() if t.assigned_to == ME[0] and t.status == "incomplete" and not t.blank]
    assert sorted(t.id for t in tasks) == sorted(t.id for t in mine)
    assert all(t.title for t in tasks)  # blank tasks filtered out upstream
    assert any("<img src=x onerror=alert(1)>" in t.title for t in tasks)
    sent = sim.state.api_requests("GET tasks")[0]["query"]
    assert sent["assigned-to"] == ME[0] and "assignee" not in sent and sent["include-blank-tasks"] == "false"
    enrichment = client.enrich(tasks)
    assert client.stats.requests == 1 + 3  # one task page, one batch each of pages, blog posts, spaces
    trashed = {c.id for c in sim.state.content.values() if c.status == "trashed"}
    assert enrichment.unresolved_pages == trashed & {t.page_id for t in tasks}
    check_contract(log)


def test_cursor_paging_across_many_pages(sim):
    for n in range(600):
        sim.state.add_task(f"bulk {n}", assigned_to=ME[0], container=next(iter(sim.state.content.values())))
    client = ConfluenceClient(StaticCredentials.basic(sim.url, ME[1], ME_API_TOKEN))
    pages = list(client.iter_task_pages(assigned_to=ME[0]))
    assert len(pages) == 3 and sum(map(len, pages)) == 630
    assert len({t.id for p in pages for t in p}) == 630


def test_due_dates_and_put_round_trip(sim):
    client = ConfluenceClient(StaticCredentials.basic(sim.url, ME[1], ME_API_TOKEN))
    tasks = {t.id: t for t in client.iter_tasks(assigned_to=ME[0])}
    for task_id, task in tasks.items():
        assert task.due_date == sim.state.tasks[task_id].due
    some = next(iter(tasks))
    assert client.set_task_status(some, "complete").status == "complete"
    assert sim.state.tasks[some].status == "complete"
    assert client.set_task_status(some, "complete").status == "complete"  # idempotent
    sim.state.tasks[some].editable_by = {"someone-else"}
    with pytest.raises(NotFoundOrNoPermission):
        client.set_task_status(some, "incomplete")
    with pytest.raises(NotFoundOrNoPermission):
        client.set_task_status("999999999", "complete")


def test_limit_out_of_bounds_is_a_400(sim):
    client = ConfluenceClient(StaticCredentials.basic(sim.url, ME[1], ME_API_TOKEN))
    with pytest.raises(RemoteError) as err:
        list(client.iter_tasks(assigned_to=ME[0], limit=251))
    assert err.value.status == 400


def test_faults_are_retried_to_success(sim):
    sim.state.knobs.fault_rate = 0.4
    sim.state.knobs.retry_after_s = 0.01
    sim.state.knobs.fault_kinds = ("429", "502", "503", "drop")
    client = ConfluenceClient(StaticCredentials.basic(sim.url, ME[1], ME_API_TOKEN),
                              retry=RetryPolicy(tries=10, base_delay=0.01))
    for _ in range(5):
        assert len(list(client.iter_tasks(assigned_to=ME[0]))) == 30
    assert client.stats.retries > 0


def test_api_token_connection_and_bad_credentials(sim_ctx, user_id, sim):
    conn_id = connections.connect_api_token(sim_ctx, user_id, sim.url + "/wiki/", ME[1], ME_API_TOKEN)
    with sim_ctx.session() as s:
        conn = connections.get_connection(s, user_id, conn_id)
        assert (conn.site_url, conn.account_id, conn.status) == (sim.url, ME[0], "ok")
        raw = s.execute(text("SELECT access_token_enc FROM atlassian_connections")).scalar_one()
        assert ME_API_TOKEN not in raw
    with pytest.raises(RemoteError, match="refused this email and API token"):
        connections.connect_api_token(sim_ctx, user_id, sim.url, ME[1], "wrong")
    with pytest.raises(RemoteError, match="could not reach"):
        connections.connect_api_token(sim_ctx, user_id, "http://127.0.0.1:9", ME[1], "x")
    from trackli.errors import ValidationError
    with pytest.raises(ValidationError, match="must use https"):
        connections.connect_api_token(sim_ctx, user_id, "http://acme.atlassian.net", ME[1], "x")


def test_oauth_end_to_end_refresh_rotation_reuse_and_family_invalidation(sim_ctx, user_id, sim):
    conn_id = oauth_connect(sim_ctx, user_id, sim)
    with sim_ctx.session() as s:
        conn = s.get(AtlassianConnection, conn_id)
        assert conn.account_id == ME[0] and "write:task:confluence" in conn.scopes.split()
        assert conn.token_expires_at > dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=50)
        first_refresh = sim_ctx.vault.decrypt(conn.refresh_token_enc)
    client = connections.client_for(sim_ctx, conn)
    assert len(list(client.iter_tasks(assigned_to=ME[0]))) == 30

    sim.state.expire_access_tokens()  # the next call gets a 401, refreshes once, retries
    assert len(list(client.iter_tasks(assigned_to=ME[0]))) == 30
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
        list(client.iter_tasks(assigned_to=ME[0]))
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
        list(client.iter_tasks(assigned_to=ME[0]))
    assert err.value.missing == ["read:task:confluence"]
    with pytest.raises(MissingScope) as err:
        client.set_task_status(next(iter(sim.state.tasks)), "complete")
    assert err.value.missing == ["write:task:confluence"]


def test_state_is_single_use_bound_to_the_user_and_expires(sim_ctx, user_id, other_user_id, sim):
    from trackli.atlassian.connections import StateRejected

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
            creds = connections.credentials_for(sim_ctx, conn, httpx.Client())  # like a separate process
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


def test_the_v2_server_ignores_unknown_parameters_so_assignee_returns_everyone(sim):
    import base64

    auth = {"Authorization": "Basic " + base64.b64encode(f"{ME[1]}:{ME_API_TOKEN}".encode()).decode()}
    everyone = httpx.get(f"{sim.url}/wiki/api/v2/tasks", params={"assignee": ME[0], "limit": 250}, headers=auth).json()
    mine = httpx.get(f"{sim.url}/wiki/api/v2/tasks", params={"assigned-to": ME[0], "limit": 250}, headers=auth).json()
    assert {t.get("assignedTo") for t in everyone["results"]} > {ME[0]}  # the first version's trap
    assert {t.get("assignedTo") for t in mine["results"]} == {ME[0]}


def test_admin_api_changes_tasks_upstream(sim):
    task_id = next(t.id for t in sim.state.tasks.values() if t.assigned_to == ME[0])
    changed = httpx.post(f"{sim.url}/_admin/tasks/{task_id}", json={"status": "complete", "title": "Renamed",
                                                                      "due": "2030-01-02"}).json()
    assert (changed["status"], changed["title"], changed["dueAt"][:10]) == ("complete", "Renamed", "2030-01-02")
    httpx.post(f"{sim.url}/_admin/tasks/{task_id}", json={"assigned_to": "sim-user-2"})
    assert sim.state.tasks[task_id].assigned_to == "sim-user-2"
    assert httpx.delete(f"{sim.url}/_admin/tasks/{task_id}").status_code == 200 and task_id not in sim.state.tasks
    config = httpx.post(f"{sim.url}/_admin/config", json={"latency_ms": 5, "fault_rate": 0.1}).json()
    assert config["knobs"]["latency_ms"] == 5 and sim.state.knobs.fault_rate == 0.1
    assert httpx.post(f"{sim.url}/_admin/config", json={"nonsense": 1}).status_code == 400
    log = httpx.get(f"{sim.url}/_admin/requests").json()
    assert "counters" in log
