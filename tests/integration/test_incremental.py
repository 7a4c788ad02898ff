"""Incremental scheduled polls between full sweeps (issue 16): what they ask, what they change, and
what only a sweep may decide. Against the simulated Atlassian, on both databases."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from trackli import connections, sync
from trackli.models import AtlassianConnection, Card, ContentName, PendingTask
from trackli.simulator import ME, ME_API_TOKEN
from tests.syncing import approve_some, waiting


def scheduled(ctx, connection):
    return sync.sync_connection(ctx, connection, "scheduled")


def task_listings(sim):
    return [r["query"] for r in sim.state.api_requests("GET tasks")]


def container(sim):
    """A current page that already holds one of my open tasks (so a sweep has looked its name up)."""
    return next(sim.state.content[t.page_id] for t in sorted(sim.state.tasks.values(), key=lambda t: int(t.id))
                if t.assigned_to == ME[0] and t.status == "incomplete" and not t.blank and t.page_id
                and sim.state.content[t.page_id].status == "current")


def row_of(ctx, task_id):
    with ctx.session() as s:
        return s.scalar(select(PendingTask).where(PendingTask.confluence_task_id == task_id))


def conn_row(ctx, connection):
    with ctx.session() as s:
        return s.get(AtlassianConnection, connection)


def test_a_task_created_upstream_arrives_at_the_next_scheduled_cycle_without_a_sweep(sim_ctx, user_id, token_connection, sim):
    full = sync.sync_connection(sim_ctx, token_connection, "scheduled")  # the first sync is always a sweep
    assert full.kind == "full"
    new = sim.state.add_task("Arrived since the last poll", assigned_to=ME[0], container=container(sim))
    sim.state.reset_log()

    poll = scheduled(sim_ctx, token_connection)

    assert (poll.outcome, poll.kind, poll.new, poll.gone) == ("ok", "incremental", 1, 0)
    assert new.id in {r.confluence_task_id for r in waiting(sim_ctx, user_id)}
    asked = task_listings(sim)
    watermark = conn_row(sim_ctx, token_connection).watermark_ms
    assert len(asked) == 2 and all(q["assigned-to"] == ME[0] for q in asked)
    assert {("created-at-from", "incomplete"), ("completed-at-from", "complete")} == {
        ("created-at-from" if "created-at-from" in q else "completed-at-from", q["status"]) for q in asked}
    assert all(int(q.get("created-at-from") or q["completed-at-from"]) <= watermark for q in asked)
    # the page of the new task was looked up by the sweep: its name came from the cache
    assert not sim.state.api_requests("GET pages") and not sim.state.api_requests("GET spaces")
    row = row_of(sim_ctx, new.id)
    assert row.confluence_page_title == container(sim).title and row.confluence_space_key
    assert poll.points <= 0.05 * full.points + 1, (poll.points, full.points)


def test_a_completion_upstream_moves_its_card_to_done_at_the_next_scheduled_cycle(sim_ctx, user_id, token_connection, sim):
    card_id = approve_some(sim_ctx, user_id, token_connection, 1)[0]
    with sim_ctx.session() as s:
        task_id = s.get(Card, card_id).confluence_task_id
    sim.state.update_task(task_id, status="complete")
    sim.state.reset_log()

    poll = scheduled(sim_ctx, token_connection)

    assert (poll.kind, poll.completed_upstream) == ("incremental", 1)
    with sim_ctx.session() as s:
        card = s.get(Card, card_id)
        assert (card.status, card.confluence_remote_status) == ("done", "complete")
    assert not sim.state.api_requests("PUT task")  # Confluence is not called back


def test_reassignments_and_deletions_are_caught_by_the_next_sweep_never_by_a_poll(sim_ctx, user_id, token_connection, sim):
    card_id = approve_some(sim_ctx, user_id, token_connection, 1)[0]
    with sim_ctx.session() as s:
        card_task = s.get(Card, card_id).confluence_task_id
    pending = waiting(sim_ctx, user_id)
    sim.state.update_task(pending[0].confluence_task_id, assigned_to="someone-else")
    sim.state.delete_task(pending[1].confluence_task_id)
    sim.state.update_task(card_task, assigned_to="someone-else")

    poll = scheduled(sim_ctx, token_connection)

    assert (poll.kind, poll.gone) == ("incremental", 0)
    assert {r.id for r in waiting(sim_ctx, user_id)} == {r.id for r in pending}  # nothing marked gone
    with sim_ctx.session() as s:
        assert s.get(Card, card_id).gone_reason is None

    sweep = sync.sync_connection(sim_ctx, token_connection, "manual")  # Sync now sweeps in full

    assert (sweep.kind, sweep.gone) == ("full", 2)
    assert {r.id for r in waiting(sim_ctx, user_id, "gone")} == {pending[0].id, pending[1].id}
    with sim_ctx.session() as s:
        assert s.get(Card, card_id).gone_reason


def test_an_upstream_edit_waits_for_the_sweep_and_the_sweep_is_at_most_an_hour_away(sim_ctx, user_id, token_connection, sim):
    sync.sync_connection(sim_ctx, token_connection)
    row = waiting(sim_ctx, user_id)[0]
    sim.state.update_task(row.confluence_task_id, text="Renamed upstream")
    assert scheduled(sim_ctx, token_connection).kind == "incremental"
    with sim_ctx.session() as s:
        assert s.get(PendingTask, row.id).task_title == row.title
        # an hour since the last sweep (TRACKLI_FULL_SYNC_EVERY_S): the next scheduled sync sweeps
        conn = s.get(AtlassianConnection, token_connection)
        conn.last_full_sync_at -= dt.timedelta(seconds=3601)

    again = scheduled(sim_ctx, token_connection)

    assert again.kind == "full" and again.updated == 1
    with sim_ctx.session() as s:
        assert s.get(PendingTask, row.id).task_title == "Renamed upstream"


def test_a_reconnect_makes_the_next_scheduled_sync_a_sweep(sim_ctx, user_id, token_connection, sim):
    sync.sync_connection(sim_ctx, token_connection)
    assert scheduled(sim_ctx, token_connection).kind == "incremental"
    assert connections.connect_api_token(sim_ctx, user_id, sim.url, ME[1], ME_API_TOKEN) == token_connection
    row = conn_row(sim_ctx, token_connection)
    assert row.watermark_ms is None and row.last_full_sync_at is None and row.next_sync_at is None
    assert scheduled(sim_ctx, token_connection).kind == "full"


def test_the_watermark_is_atlassians_clock_less_the_margin_never_the_local_clock(sim_ctx, user_id, token_connection, sim):
    sim.state.clock_offset = -7200.0  # Atlassian's clock two hours behind this machine's
    sync.sync_connection(sim_ctx, token_connection)
    sim_now_ms = sim.state.now() * 1000
    watermark = conn_row(sim_ctx, token_connection).watermark_ms
    margin_ms = sim_ctx.settings.watermark_margin_s * 1000
    assert sim_now_ms - margin_ms - 5000 <= watermark <= sim_now_ms - margin_ms + 1000
    created = sim.state.add_task("Created by Atlassian's clock", assigned_to=ME[0], container=container(sim))

    poll = scheduled(sim_ctx, token_connection)

    assert (poll.kind, poll.new) == ("incremental", 1)
    assert created.id in {r.confluence_task_id for r in waiting(sim_ctx, user_id)}


def test_names_are_looked_up_once_and_a_sweep_refreshes_the_cache(sim_ctx, user_id, token_connection, sim):
    sync.sync_connection(sim_ctx, token_connection)
    space = sim.state.add_space("NEWS", "Brand new space")
    page = sim.state.add_content("page", "A page nobody had seen", space.id)
    on_new_page = sim.state.add_task("On a new page", assigned_to=ME[0], container=page)
    sim.state.reset_log()

    assert scheduled(sim_ctx, token_connection).new == 1
    assert [r["query"].get("id") for r in sim.state.api_requests("GET pages")] == [page.id]
    assert [r["query"].get("ids") for r in sim.state.api_requests("GET spaces")] == [space.id]
    row = row_of(sim_ctx, on_new_page.id)
    assert (row.confluence_page_title, row.confluence_space_key) == ("A page nobody had seen", "NEWS")

    sim.state.reset_log()
    sim.state.add_task("Same page again", assigned_to=ME[0], container=page)
    assert scheduled(sim_ctx, token_connection).new == 1
    assert not sim.state.api_requests("GET pages") and not sim.state.api_requests("GET spaces")

    page.title = "Renamed page"
    sync.sync_connection(sim_ctx, token_connection)  # a sweep looks every name up again
    with sim_ctx.session() as s:
        cached = s.scalar(select(ContentName.title).where(ContentName.kind == "pages", ContentName.content_id == page.id))
    assert cached == "Renamed page"


def test_an_answer_without_a_date_keeps_the_old_watermark(sim_ctx, user_id, token_connection, sim, monkeypatch):
    from trackli.atlassian import transport

    sync.sync_connection(sim_ctx, token_connection)
    before = conn_row(sim_ctx, token_connection).watermark_ms
    monkeypatch.setattr(transport, "http_date", lambda value: None)  # a server that sends no usable Date
    assert scheduled(sim_ctx, token_connection).outcome == "ok"
    assert conn_row(sim_ctx, token_connection).watermark_ms == before
    sync.sync_connection(sim_ctx, token_connection)  # a sweep without a Date: nothing to trust, sweep again
    assert conn_row(sim_ctx, token_connection).watermark_ms is None
    assert scheduled(sim_ctx, token_connection).kind == "full"


def test_a_future_date_never_moves_the_watermark_ahead_and_diagnostics_says_so(sim_ctx, user_id, token_connection, sim):
    from trackli import diagnostics

    sync.sync_connection(sim_ctx, token_connection)
    before = conn_row(sim_ctx, token_connection).watermark_ms
    sim.state.clock_offset = 6 * 3600.0  # one answer from a clock six hours ahead
    assert scheduled(sim_ctx, token_connection).outcome == "ok"
    assert conn_row(sim_ctx, token_connection).watermark_ms == before  # kept: not six hours ahead
    sim.state.clock_offset = 0.0
    created = sim.state.add_task("Created while the clock was wrong", assigned_to=ME[0], container=container(sim))
    poll = scheduled(sim_ctx, token_connection)
    assert (poll.kind, poll.new) == ("incremental", 1)  # found by the next poll, not a sweep an hour later
    assert created.id in {r.confluence_task_id for r in waiting(sim_ctx, user_id)}
    sim.state.clock_offset = 6 * 3600.0
    scheduled(sim_ctx, token_connection)
    finding = [f for f in diagnostics.diagnose(sim_ctx, user_id, token_connection).findings if f.check == "Clock"]
    assert finding and "360 min ahead of" in finding[0].detail
