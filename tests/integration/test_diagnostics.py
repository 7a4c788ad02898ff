"""Diagnostics (trackli.diagnostics): the headline says what is wrong and how to fix it; the live probe
goes through the client's public `probe()` and changes nothing upstream."""

import datetime as dt

from tests.conftest import oauth_connect
from trackli import connections, diagnostics, sync
from trackli.models import AtlassianConnection
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


def test_findings_are_ranked_and_every_row_agrees_with_a_refused_refresh_token(sim_ctx, user_id, sim):
    sim.state.knobs.enabled_scopes = tuple(s for s in sim.state.knobs.enabled_scopes if s != "write:task:confluence")
    conn = oauth_connect(sim_ctx, user_id, sim)
    d = diagnostics.diagnose(sim_ctx, user_id, conn)
    assert d.headline.startswith("Trackli cannot") and "write:task:confluence" in d.headline  # the only problem yet
    sim.state.revoke_all_refresh_tokens()
    sim.state.expire_access_tokens()
    with sim_ctx.session() as s:  # the stored expiry says the token is fresh: only a refresh attempt tells
        s.get(AtlassianConnection, conn).token_expires_at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)
    assert sync.sync_connection(sim_ctx, conn).outcome == "failed"
    d = diagnostics.diagnose(sim_ctx, user_id, conn, live=True)
    assert d.headline.startswith("Reconnect needed")  # before the missing scope, which a reconnect may fix too
    rows = {f.check: f for f in d.findings}
    assert not rows["Can refresh"].ok and "refused" in rows["Can refresh"].detail
    assert not rows["Access token expiry"].ok and rows["Access token expiry"].detail == "not usable until you reconnect"
    assert d.findings[0].rank == diagnostics.RECONNECT and d.probes == []  # nothing is probed with dead credentials
