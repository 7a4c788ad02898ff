"""Atlassian's points (2026): 1 a product API call, plus 1 per object a read returns; counted per sync run
and shown against the pool on Diagnostics."""

import httpx
import respx

from trackli import diagnostics, sync
from trackli.atlassian.client import ConfluenceClient, StaticCredentials
from trackli.models import SyncRun

SITE = "https://acme.atlassian.net"


@respx.mock
def test_a_read_costs_a_point_plus_one_per_object_and_a_write_one():
    api = f"{SITE}/wiki/api/v2"
    respx.get(f"{api}/tasks").mock(side_effect=[
        httpx.Response(200, json={"results": [{"id": "1", "status": "incomplete"}, {"id": "2", "status": "incomplete"}],
                                  "_links": {"next": "/wiki/api/v2/tasks?cursor=b"}}),
        httpx.Response(200, json={"results": [{"id": "3", "status": "incomplete"}], "_links": {}}),
    ])
    respx.put(f"{api}/tasks/3").mock(return_value=httpx.Response(200, json={"id": "3", "status": "complete"}))
    client = ConfluenceClient(StaticCredentials.basic(SITE, "me@acme.test", "token"))
    assert sum(len(page) for page in client.iter_task_pages(assigned_to="me")) == 3
    assert client.stats.points == (1 + 2) + (1 + 1)
    client.set_task_status("3", "complete")
    assert client.stats.points == 5 + 1


def test_each_sync_run_records_its_points_and_kind_and_diagnostics_sums_the_hour(sim_ctx, user_id, token_connection):
    first = sync.sync_connection(sim_ctx, token_connection)
    again = sync.sync_connection(sim_ctx, token_connection)
    assert first.points > first.requests and again.points == first.points  # every open task is read again
    assert first.as_dict()["kind"] == "full" and first.as_dict()["points"] == first.points
    with sim_ctx.session() as s:
        assert sorted(s.scalars(SyncRun.__table__.select().with_only_columns(SyncRun.points))) == [first.points] * 2
        spent = diagnostics.points_last_hour(s, token_connection)
    assert spent == {"connection": 2 * first.points, "deployment": 2 * first.points}
    d = diagnostics.diagnose(sim_ctx, user_id, token_connection)
    assert d.points["pool"] == 65000 and "not points-based" in d.points["applies"]
    assert d.runs[0]["points"] == first.points
