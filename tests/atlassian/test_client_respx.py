"""ConfluenceClient against respx: each test states the exact request it expects.

Every v2 request made and every 2xx body fed to the client is also checked against Atlassian's
OpenAPI document (tests/contract.py).
"""

import json

import httpx
import pytest
import respx

from tests import contract
from tests.helpers import all_tasks
from trackli.atlassian.client import ConfluenceClient, RetryPolicy, StaticCredentials
from trackli.atlassian.errors import MissingScope, NotFoundOrNoPermission, RateLimited, ReconnectRequired, RemoteError

API = "https://api.atlassian.com"
CLOUD = "cloud-1"
ROOT = f"{API}/ex/confluence/{CLOUD}"
SITE = "https://acme.atlassian.net"
TASK_PARAMS = {"assigned-to": "me-1", "include-blank-tasks": "false", "body-format": "atlas_doc_format",
               "limit": "250", "status": "incomplete"}


def adf(text):
    return json.dumps({"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [
        {"type": "text", "text": text + " "}, {"type": "mention", "attrs": {"id": "me-1"}}]}]})


def task(i, **extra):
    data = {"id": str(i), "localId": f"l{i}", "spaceId": "10", "pageId": str(500 + i % 3), "status": "incomplete",
            "assignedTo": "me-1", "createdAt": "2026-01-01T10:00:00.000Z", "updatedAt": "2026-01-02T10:00:00.000Z",
            "body": {"atlas_doc_format": {"representation": "atlas_doc_format", "value": adf(f"Task {i}")}}}
    data.update(extra)
    return data


def expect(mock, method, url, *, params=None, json_body=None, request_headers=None, **response):
    """A route that matches only the exact request: method, URL, every query parameter, JSON body, headers."""
    route = mock.route(method=method, url=url, params__eq=params or {},
                       **({"json": json_body} if json_body is not None else {}),
                       **({"headers": request_headers} if request_headers else {}))
    route.respond(**response)
    return route


@pytest.fixture
def mock():
    with respx.mock(assert_all_called=True, assert_all_mocked=True) as router:
        yield router
        for call in router.calls:
            if not contract.v2_path(str(call.request.url)):
                continue
            contract.check_request(call.request.method, str(call.request.url), call.request.content or None)
            if call.has_response and _is_json(call.response.content):  # deliberately broken bodies are not fixtures
                contract.check_response(call.request.method, str(call.request.url), call.response.status_code,
                                        call.response.content)


def _is_json(content):
    try:
        json.loads(content)
        return True
    except ValueError:
        return False


def bearer_client(scopes="read:task:confluence write:task:confluence read:page:confluence read:space:confluence", **kw):
    sleeps = []
    client = ConfluenceClient(StaticCredentials.bearer(API, CLOUD, "at-1", scopes),
                              retry=RetryPolicy(sleep=sleeps.append, jitter=lambda: 1.0, **kw))
    client.sleeps = sleeps
    return client


def test_pagination_through_link_header_keeps_the_gateway_prefix(mock):
    nxt = "/wiki/api/v2/tasks?cursor=abc&limit=250"
    first = mock.route(method="GET", url=f"{ROOT}/wiki/api/v2/tasks", params__eq=TASK_PARAMS,
                       headers={"Authorization": "Bearer at-1"})
    first.respond(json={"results": [task(1), task(2)], "_links": {}}, headers={"Link": f'<{nxt}>; rel="next"'})
    second = expect(mock, "GET", f"{ROOT}/wiki/api/v2/tasks", params={"cursor": "abc", "limit": "250"},
                    json={"results": [task(3)], "_links": {}})
    tasks = all_tasks(bearer_client(), assigned_to="me-1")
    assert [t.id for t in tasks] == ["1", "2", "3"]
    assert [t.title for t in tasks] == ["Task 1", "Task 2", "Task 3"]
    assert first.call_count == second.call_count == 1


def test_pagination_through_links_next_in_the_body(mock):
    expect(mock, "GET", f"{ROOT}/wiki/api/v2/tasks", params=TASK_PARAMS,
           json={"results": [task(1)], "_links": {"next": "/wiki/api/v2/tasks?cursor=p2"}})
    expect(mock, "GET", f"{ROOT}/wiki/api/v2/tasks", params={"cursor": "p2"},
           json={"results": [task(2)], "_links": {"next": "/wiki/api/v2/tasks?cursor=p3"}})
    expect(mock, "GET", f"{ROOT}/wiki/api/v2/tasks", params={"cursor": "p3"}, json={"results": [task(3)]})
    client = bearer_client()
    assert [t.id for t in all_tasks(client, assigned_to="me-1")] == ["1", "2", "3"]
    assert client.stats.task_pages == 3


def test_assigned_to_is_sent_and_assignee_never(mock):
    route = expect(mock, "GET", f"{ROOT}/wiki/api/v2/tasks", params=TASK_PARAMS, json={"results": []})
    all_tasks(bearer_client(), assigned_to="me-1")
    sent = dict(route.calls.last.request.url.params)
    assert sent["assigned-to"] == "me-1" and "assignee" not in sent
    assert sent["include-blank-tasks"] == "false"


def test_storage_body_and_blog_post_tasks(mock):
    storage = {"storage": {"representation": "storage",
                           "value": 'Ship <ac:link><ri:user ri:account-id="me-1"/></ac:link> it <time datetime="2026-04-01"/>'}}
    blog = {"id": "7", "blogPostId": "900", "spaceId": "10", "status": "incomplete", "body": storage,
            "dueAt": "2026-04-01T00:00:00.000Z"}
    expect(mock, "GET", f"{ROOT}/wiki/api/v2/tasks", params=TASK_PARAMS | {"body-format": "storage"},
           json={"results": [blog]})
    [t] = all_tasks(bearer_client(), assigned_to="me-1", body_format="storage")
    assert (t.title, t.blogpost_id, t.page_id, str(t.due_date)) == ("Ship it", "900", None, "2026-04-01")


def test_300_pages_cost_two_page_requests(mock):
    ids = [str(1000 + i) for i in range(300)]
    first = sorted(ids)[:250]
    second = sorted(ids)[250:]
    pages = lambda batch: {"results": [{"id": i, "title": f"Page {i}", "spaceId": "10", "status": "current",
                                        "_links": {"webui": f"/spaces/S/pages/{i}"}} for i in batch]}
    expect(mock, "GET", f"{ROOT}/wiki/api/v2/pages", params={"id": ",".join(first), "limit": "250"}, json=pages(first))
    expect(mock, "GET", f"{ROOT}/wiki/api/v2/pages", params={"id": ",".join(second), "limit": "250"},
           json=pages(second[:-1]))  # the last one is trashed: not returned
    client = bearer_client()
    found = client.get_pages(ids)
    assert len(found) == 299 and second[-1] not in found
    assert client.stats.requests == 2


def test_spaces_use_the_plural_ids_parameter(mock):
    expect(mock, "GET", f"{ROOT}/wiki/api/v2/spaces", params={"ids": "10,11", "limit": "250"},
           json={"results": [{"id": "10", "key": "ENG", "name": "Engineering"}]})
    found = bearer_client().get_spaces(["11", "10", "10"])
    assert found["10"].key == "ENG" and "11" not in found


def test_429_waits_for_retry_after_then_succeeds(mock):
    route = mock.route(method="GET", url=f"{ROOT}/wiki/api/v2/tasks", params__eq=TASK_PARAMS)
    route.side_effect = [httpx.Response(429, headers={"Retry-After": "7", "X-RateLimit-Remaining": "0"}),
                         httpx.Response(200, json={"results": [task(1)]})]
    client = bearer_client()
    assert [t.id for t in all_tasks(client, assigned_to="me-1")] == ["1"]
    assert client.sleeps == [7.0] and client.stats.retries == 1
    assert client.stats.rate_limit == {"Retry-After": "7", "X-RateLimit-Remaining": "0"}  # last seen, kept
    assert route.call_count == 2


def test_retry_after_is_capped(mock):
    route = mock.route(method="GET", url=f"{ROOT}/wiki/api/v2/tasks", params__eq=TASK_PARAMS)
    route.side_effect = [httpx.Response(429, headers={"Retry-After": "3600"}), httpx.Response(200, json={"results": []})]
    client = bearer_client(max_retry_after=30)
    all_tasks(client, assigned_to="me-1")
    assert client.sleeps == [30]


def test_503_until_retries_run_out(mock):
    route = mock.route(method="GET", url=f"{ROOT}/wiki/api/v2/tasks", params__eq=TASK_PARAMS)
    route.respond(503, text="<html>down</html>")
    client = bearer_client(tries=4, base_delay=0.5)
    with pytest.raises(RemoteError) as err:
        all_tasks(client, assigned_to="me-1")
    assert err.value.status == 503 and not err.value.permanent
    assert route.call_count == 4 and client.sleeps == [0.5, 1.0, 2.0]


def test_429_until_retries_run_out_is_rate_limited(mock):
    mock.route(method="GET", url=f"{ROOT}/wiki/api/v2/tasks", params__eq=TASK_PARAMS).respond(
        429, headers={"Retry-After": "2"})
    with pytest.raises(RateLimited) as err:
        all_tasks(bearer_client(tries=2), assigned_to="me-1")
    assert err.value.retry_after == 2.0


def test_scope_mismatch_401_names_the_missing_scope(mock):
    expect(mock, "GET", f"{ROOT}/wiki/api/v2/tasks", params=TASK_PARAMS, status_code=401,
           json={"code": 401, "message": "Unauthorized; scope does not match"},
           headers={"X-Failure-Category": "FAILURE_CLIENT_SCOPE_CHECK"})
    client = bearer_client(scopes="read:me read:confluence-content.all offline_access")
    with pytest.raises(MissingScope) as err:
        all_tasks(client, assigned_to="me-1")
    assert err.value.missing == ["read:task:confluence"]
    assert "read:task:confluence" in str(err.value) and "developer console" in str(err.value)


class RefreshingCredentials:
    kind = "oauth"
    root = ROOT
    granted_scopes = "read:task:confluence"

    def __init__(self):
        self.token, self.refreshed = "old", 0

    def authorization(self):
        return f"Bearer {self.token}"

    def refresh_after_401(self, rejected):
        self.refreshed += 1
        self.token = "new"
        return True


def test_expired_token_is_refreshed_once_and_the_call_retried(mock):
    mock.route(method="GET", url=f"{ROOT}/wiki/api/v2/tasks", headers={"Authorization": "Bearer old"}).respond(
        401, json={"code": 401, "message": "Unauthorized"})
    expect(mock, "GET", f"{ROOT}/wiki/api/v2/tasks", params=TASK_PARAMS, request_headers={"Authorization": "Bearer new"},
           json={"results": [task(1)]})
    creds = RefreshingCredentials()
    client = ConfluenceClient(creds, retry=RetryPolicy(sleep=lambda s: None))
    assert [t.id for t in all_tasks(client, assigned_to="me-1")] == ["1"]
    assert creds.refreshed == 1


def test_a_second_401_after_refresh_needs_a_reconnect(mock):
    mock.route(method="GET", url=f"{ROOT}/wiki/api/v2/tasks").respond(401, json={"code": 401, "message": "Unauthorized"})
    creds = RefreshingCredentials()
    with pytest.raises(ReconnectRequired):
        all_tasks(ConfluenceClient(creds, retry=RetryPolicy(sleep=lambda s: None)), assigned_to="me-1")
    assert creds.refreshed == 1


def test_put_sends_the_status_and_404_means_not_found_or_no_permission(mock):
    ok = expect(mock, "PUT", f"{ROOT}/wiki/api/v2/tasks/42", json_body={"status": "complete"},
                json=task(42, status="complete"))
    expect(mock, "PUT", f"{ROOT}/wiki/api/v2/tasks/43", json_body={"status": "incomplete"}, status_code=404,
           json={"errors": [{"status": 404, "code": "NOT_FOUND", "title": "Not Found", "detail": None}]})
    client = bearer_client()
    assert client.set_task_status("42", "complete").status == "complete"
    assert json.loads(ok.calls.last.request.content) == {"status": "complete"}
    with pytest.raises(NotFoundOrNoPermission, match="not found, or you may not edit it"):
        client.set_task_status("43", "incomplete")


@pytest.mark.parametrize("body", [[], "ok", 42, [{"id": "42"}]])
def test_a_task_update_answered_with_no_object_is_a_remote_error(body):
    with respx.mock() as mock:  # deliberately off-contract: not checked against the spec
        mock.put(f"{ROOT}/wiki/api/v2/tasks/42").respond(200, json=body)
        with pytest.raises(RemoteError, match="not a task") as raised:
            bearer_client().set_task_status("42", "complete")
    assert not raised.value.permanent  # retried later, like any answer that made no sense


def test_malformed_json_and_html_error_pages_are_remote_errors(mock):
    expect(mock, "GET", f"{ROOT}/wiki/api/v2/tasks", params=TASK_PARAMS, text="{oops")
    with pytest.raises(RemoteError, match="not JSON"):
        all_tasks(bearer_client(), assigned_to="me-1")


def test_html_error_page_gives_a_short_safe_excerpt():
    with respx.mock() as mock:
        mock.get(f"{SITE}/wiki/api/v2/tasks").respond(
            400, html="<html><body><h1>Bad request</h1><p>token=Bearer abcdefghijklmnop</p></body></html>")
        client = ConfluenceClient(StaticCredentials.basic(SITE, "a@b.c", "tok"), retry=RetryPolicy(sleep=lambda s: None))
        with pytest.raises(RemoteError) as err:
            all_tasks(client, assigned_to="me-1")
    assert err.value.status == 400
    assert "Bad request" in str(err.value) and "<h1>" not in str(err.value) and "abcdefghijklmnop" not in str(err.value)


def test_api_token_calls_the_site_with_basic_auth_and_whoami():
    import base64

    with respx.mock(assert_all_called=True) as mock:
        auth = "Basic " + base64.b64encode(b"a@b.c:tok").decode()
        expect(mock, "GET", f"{SITE}/wiki/rest/api/user/current", request_headers={"Authorization": auth},
               json={"accountId": "acc-9", "email": "a@b.c", "displayName": "Ann"})
        client = ConfluenceClient(StaticCredentials.basic(SITE, "a@b.c", "tok"))
        account = client.whoami()
    assert (account.account_id, account.name) == ("acc-9", "Ann")


def test_connection_errors_are_retried_then_reported(mock):
    route = mock.route(method="GET", url=f"{ROOT}/wiki/api/v2/tasks")
    route.side_effect = [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.Response(200, json={"results": []})]
    client = bearer_client()
    assert all_tasks(client, assigned_to="me-1") == []
    assert route.call_count == 3 and client.stats.retries == 2


@pytest.mark.parametrize("link, allowed", [
    ("/wiki/api/v2/tasks?cursor=abc", True),
    (f"{ROOT}/wiki/api/v2/tasks?cursor=abc", True),
    ("/wiki/../../other-cloud/wiki/api/v2/tasks", False),  # climbs out of this site's gateway prefix
    ("/wiki/%2e%2e/%2e%2e/other-cloud/wiki/api/v2/tasks", False),
    (f"{API}/ex/confluence/other-cloud/wiki/api/v2/tasks", False),  # another tenant on the same host
    ("https://evil.example/wiki/api/v2/tasks", False),
    ("//evil.example/wiki/api/v2/tasks", False),
    (f"http://api.atlassian.com/ex/confluence/{CLOUD}/wiki/api/v2/tasks", False),  # scheme downgrade
    (f"https://api.atlassian.com:8443/ex/confluence/{CLOUD}/wiki/api/v2/tasks", False),
    (f"https://user:pw@api.atlassian.com/ex/confluence/{CLOUD}/wiki/api/v2/tasks", False),
    ("/wiki/api/v2/tasks?cursor=a\nHost: evil", False),
])
def test_links_from_upstream_stay_inside_the_connections_root(link, allowed):
    from trackli.atlassian.urls import inside_root

    assert (inside_root(ROOT, link) is not None) is allowed


def test_every_try_and_every_wait_tells_the_job_it_is_alive(mock):
    route = mock.route(method="GET", url=f"{ROOT}/wiki/api/v2/tasks")
    route.side_effect = [httpx.Response(503, headers={"Retry-After": "2"}), httpx.Response(429),
                         httpx.Response(200, json={"results": [task(1)]})]
    client = bearer_client()
    beats = []
    client.transport.on_activity = lambda: beats.append(len(client.sleeps))
    assert [t.id for t in all_tasks(client, assigned_to="me-1")] == ["1"]
    assert beats == [0, 0, 1, 1, 2]  # before each of the three tries, and before each of the two waits


def test_get_users_posts_the_ids_and_keeps_only_the_names_it_asked_for(mock):
    asked = [f"acc-{n}" for n in range(3)]
    expect(mock, "POST", f"{ROOT}/wiki/api/v2/users-bulk", json_body={"accountIds": asked},
           request_headers={"Authorization": "Bearer at-1"}, status_code=200,
           json={"results": [{"accountId": "acc-0", "displayName": "Ana Lima", "publicName": "ana"},
                             {"accountId": "acc-1", "publicName": "Bo\x00 Chen"},  # no display name: the public one
                             {"accountId": "stranger", "displayName": "Not asked for"}]})  # never asked: left out
    client = bearer_client(scopes="read:user:confluence")
    assert client.get_users(reversed(asked)) == {"acc-0": "Ana Lima", "acc-1": "Bo Chen"}


@pytest.mark.parametrize("body", [{"results": [{"accountId": "acc-0", "displayName": ["not", "text"]}, "garbage",
                                               {"accountId": {"x": 1}, "displayName": "Who"}]},
                                  {"results": "none"}, [1, 2], "ok"])
def test_get_users_from_a_hostile_answer_names_no_one_and_never_raises(body):
    with respx.mock(assert_all_called=True) as hostile:  # bodies outside the document: not contract fixtures
        hostile.post(f"{ROOT}/wiki/api/v2/users-bulk").respond(200, json=body)
        assert bearer_client(scopes="read:user:confluence").get_users(["acc-0"]) == {}


def test_get_users_without_the_scope_is_a_missing_scope_naming_it(mock):
    expect(mock, "POST", f"{ROOT}/wiki/api/v2/users-bulk", json_body={"accountIds": ["acc-0"]}, status_code=401,
           headers={"X-Failure-Category": "FAILURE_CLIENT_SCOPE_CHECK"},
           json={"code": 401, "message": "Unauthorized; scope does not match"})
    with pytest.raises(MissingScope) as caught:
        bearer_client().get_users(["acc-0"])
    assert caught.value.missing == ["read:user:confluence"]
