"""One set of assertions, two transports: respx (the simulated Atlassian's app called in memory through
a mocked httpx transport) and the simulator over real HTTP on 127.0.0.1."""

from dataclasses import dataclass

import httpx
import pytest
import respx
from starlette.testclient import TestClient

from tests.helpers import all_tasks, enrich
from trackli.atlassian.client import ConfluenceClient, RetryPolicy, StaticCredentials
from trackli.atlassian.errors import NotFoundOrNoPermission, RemoteError
from trackli.simulator import ME, ME_API_TOKEN, Simulator, SimState, populate
from trackli.simulator.app import build_app

SITE = "https://acme.atlassian.net"


@dataclass
class Backend:
    name: str
    state: SimState
    url: str


@pytest.fixture(params=["respx", "simulator"])
def backend(request):
    state = SimState(seed=11)
    populate(state, tasks=260, pages=30, spaces=3, blogposts=2)  # two pages of tasks
    if request.param == "simulator":
        sim = Simulator(state).start()
        yield Backend("simulator", state, sim.url)
        sim.stop()
        return
    state.base_url = SITE
    app = TestClient(build_app(state), base_url=SITE)

    def forward(req: httpx.Request) -> httpx.Response:
        answer = app.request(req.method, str(req.url), headers=dict(req.headers), content=req.content)
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    with respx.mock(assert_all_mocked=True) as mock:
        mock.route(host="acme.atlassian.net").mock(side_effect=forward)
        yield Backend("respx", state, SITE)


def client(backend, **retry):
    return ConfluenceClient(StaticCredentials.basic(backend.url, ME[1], ME_API_TOKEN),
                            retry=RetryPolicy(sleep=lambda s: None, **retry))


def mine(state):
    return {t.id for t in state.tasks.values() if t.assigned_to == ME[0] and t.status == "incomplete" and not t.blank}


def test_paging_filtering_and_titles(backend):
    c = client(backend)
    pages = list(c.iter_task_pages(assigned_to=ME[0]))
    tasks = [t for p in pages for t in p]
    assert len(pages) == 2 and {t.id for t in tasks} == mine(backend.state)
    for t in tasks:
        upstream = backend.state.tasks[t.id]
        assert t.title == " ".join(upstream.text.split()) and t.due_date == upstream.due
        assert (t.page_id, t.blogpost_id) == (upstream.page_id, upstream.blogpost_id)
    assert c.stats.requests == 2


def test_enrichment_batches_and_leaves_trashed_pages_out(backend):
    c = client(backend)
    tasks = all_tasks(c, assigned_to=ME[0])
    found = enrich(c, tasks)
    assert c.stats.requests == 2 + 3
    trashed = {i for i, x in backend.state.content.items() if x.status == "trashed"}
    wanted = {t.page_id for t in tasks if t.page_id}
    assert trashed & wanted and set(found.pages) == wanted - trashed
    assert set(found.blogposts) == {t.blogpost_id for t in tasks if t.blogpost_id}
    assert {s.key for s in found.spaces.values()} == {s.key for s in backend.state.spaces.values()}


def test_complete_and_reopen(backend):
    c = client(backend)
    task_id = sorted(mine(backend.state))[0]
    assert c.set_task_status(task_id, "complete").status == "complete"
    assert backend.state.tasks[task_id].status == "complete"
    assert c.set_task_status(task_id, "incomplete").status == "incomplete"
    with pytest.raises(NotFoundOrNoPermission):
        c.set_task_status("987654321", "complete")


def test_rate_limits_are_waited_out(backend):
    backend.state.knobs.fault_rate, backend.state.knobs.fault_kinds = 0.5, ("429",)
    backend.state.knobs.retry_after_s = 3
    c = client(backend, tries=12)
    assert {t.id for t in all_tasks(c, assigned_to=ME[0])} == mine(backend.state)
    assert c.stats.retries >= 1 and c.stats.waited_s == 3 * c.stats.retries


def test_bad_credentials_and_bad_limits(backend):
    bad = ConfluenceClient(StaticCredentials.basic(backend.url, ME[1], "wrong"), retry=RetryPolicy(sleep=lambda s: None))
    from trackli.atlassian.errors import ReconnectRequired

    with pytest.raises(ReconnectRequired):
        all_tasks(bad, assigned_to=ME[0])
    with pytest.raises(RemoteError) as err:
        all_tasks(client(backend), assigned_to=ME[0], limit=0)
    assert err.value.status == 400
