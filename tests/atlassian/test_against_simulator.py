"""The real client over HTTP against the simulated Atlassian.

The behaviours the respx suite pins down request by request are asserted here again end to end,
and every request the client sends and every answer the simulator gives is checked against
Atlassian's OpenAPI document.
"""

import httpx
import pytest

from tests import contract
from tests.helpers import all_tasks, enrich
from trackli.atlassian.client import ConfluenceClient, RetryPolicy, StaticCredentials
from trackli.atlassian.errors import NotFoundOrNoPermission, RemoteError
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
    tasks = all_tasks(client, assigned_to=ME[0])
    mine = [t for t in sim.state.tasks.values() if t.assigned_to == ME[0] and t.status == "incomplete" and not t.blank]
    assert sorted(t.id for t in tasks) == sorted(t.id for t in mine)
    assert all(t.title for t in tasks)  # blank tasks filtered out upstream
    assert any("<img src=x onerror=alert(1)>" in t.title for t in tasks)
    sent = sim.state.api_requests("GET tasks")[0]["query"]
    assert sent["assigned-to"] == ME[0] and "assignee" not in sent and sent["include-blank-tasks"] == "false"
    enrichment = enrich(client, tasks)
    assert client.stats.requests == 1 + 3  # one task page, one batch each of pages, blog posts, spaces
    trashed = {c.id for c in sim.state.content.values() if c.status == "trashed"}
    wanted = {t.page_id for t in tasks if t.page_id}
    assert trashed & wanted and set(enrichment.pages) == wanted - trashed  # trashed pages do not resolve
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
    tasks = {t.id: t for t in all_tasks(client, assigned_to=ME[0])}
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
        all_tasks(client, assigned_to=ME[0], limit=251)
    assert err.value.status == 400


def test_faults_are_retried_to_success(sim):
    sim.state.knobs.fault_rate = 0.4
    sim.state.knobs.retry_after_s = 0.01
    sim.state.knobs.fault_kinds = ("429", "502", "503", "drop")
    client = ConfluenceClient(StaticCredentials.basic(sim.url, ME[1], ME_API_TOKEN),
                              retry=RetryPolicy(tries=10, base_delay=0.01))
    for _ in range(5):
        assert len(all_tasks(client, assigned_to=ME[0])) == 30
    assert client.stats.retries > 0


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


def test_people_are_named_by_users_bulk_and_the_exchange_fits_the_openapi_document(sim):
    log = []
    client = ConfluenceClient(StaticCredentials.basic(sim.url, ME[1], ME_API_TOKEN), recording_http(log))
    creators = {t.created_by for t in sim.state.tasks.values() if t.assigned_to == ME[0]}
    known = {a: sim.state.accounts[a].name for a in creators if a in sim.state.accounts}
    assert len(known) >= 2  # the tasks come from more than one colleague
    assert client.get_users([*creators, "nobody-known"]) == known  # accounts Atlassian does not know are absent
    check_contract(log)
