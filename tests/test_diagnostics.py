"""Diagnostics (trackli.diagnostics): the headline says what is wrong and how to fix it; the live probe
goes through the client's public `probe()` and changes nothing upstream."""

from tests.conftest import oauth_connect
from trackli import connections, diagnostics
from trackli.simulator import ME, ME_API_TOKEN


def test_a_healthy_token_connection_probes_every_api_and_changes_nothing(sim_ctx, user_id, sim):
    conn = connections.connect_api_token(sim_ctx, user_id, sim.url, ME[1], ME_API_TOKEN)
    before = {t.id: t.status for t in sim.state.tasks.values()}
    d = diagnostics.diagnose(sim_ctx, user_id, conn, live=True)
    assert d.ok and d.headline.startswith("Everything works")
    assert [(p.api, p.method, p.ok) for p in d.probes] == [
        ("tasks", "GET", True), ("pages", "GET", True), ("spaces", "GET", True), ("write tasks", "PUT", True)]
    assert "nothing changed" in d.probes[-1].detail
    assert {t.id: t.status for t in sim.state.tasks.values()} == before
    assert len(sim.state.api_requests("PUT task")) == 1


def test_a_missing_scope_is_the_headline_with_its_fix_and_its_probe_fails(sim_ctx, user_id, sim):
    sim.state.knobs.enabled_scopes = tuple(s for s in sim.state.knobs.enabled_scopes if s != "read:task:confluence")
    conn = oauth_connect(sim_ctx, user_id, sim)
    d = diagnostics.diagnose(sim_ctx, user_id, conn, live=True)
    assert not d.ok and "read:task:confluence" in d.headline and "developer console" in d.headline
    tasks = next(p for p in d.probes if p.api == "tasks")
    assert (tasks.ok, tasks.status) == (False, 401) and "read:task:confluence" in tasks.detail
    assert {r["operation"]: r["ok"] for r in d.scope_table}["read tasks"] is False


def test_with_no_task_to_write_the_write_is_judged_by_the_granted_scopes(sim_ctx, user_id, sim):
    sim.state.tasks.clear()
    sim.state.knobs.enabled_scopes = tuple(s for s in sim.state.knobs.enabled_scopes if s != "write:task:confluence")
    conn = oauth_connect(sim_ctx, user_id, sim)
    d = diagnostics.diagnose(sim_ctx, user_id, conn, live=True)
    write = d.probes[-1]
    assert (write.api, write.ok, write.status) == ("write tasks", False, None)
    assert "judged by the granted scopes" in write.detail and sim.state.api_requests("PUT task") == []


def test_a_disconnected_connection_says_reconnect_and_probes_nothing(sim_ctx, user_id, sim):
    conn = connections.connect_api_token(sim_ctx, user_id, sim.url, ME[1], ME_API_TOKEN)
    connections.disconnect(sim_ctx, user_id, conn)
    d = diagnostics.diagnose(sim_ctx, user_id, conn, live=True)
    assert d.headline.startswith("Reconnect needed") and d.probes == [] and not d.ok
