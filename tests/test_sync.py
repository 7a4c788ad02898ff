"""The sync engine against the simulated Atlassian (real client, real HTTP, real database)."""

import threading

import pytest
from sqlalchemy import event, func, select

from trackli import board, sync
from trackli.errors import NotFound, ValidationError
from trackli.models import AuditEntry, OutboxEntry, PendingTask, SyncRun, Task
from trackli.simulator import ME


def queue(ctx, user_id, state="pending"):
    with ctx.session() as s:
        return sync.list_pending(s, user_id, state)


def by_task(ctx, user_id):
    return {p.confluence_task_id: p for p in queue(ctx, user_id, "all")}


def test_first_sync_fills_the_queue_with_enriched_tasks(sim_ctx, user_id, token_connection, sim):
    result = sync.sync_connection(sim_ctx, token_connection)
    assert (result.outcome, result.new, result.gone) == ("ok", 30, 0)
    rows = queue(sim_ctx, user_id)
    assert len(rows) == 30
    trashed = {c.id for c in sim.state.content.values() if c.status == "trashed"}
    for row in rows:
        upstream = sim.state.tasks[row.confluence_task_id]
        assert row.title == " ".join(upstream.text.split())
        assert row.due_date == upstream.due
        container = upstream.page_id or upstream.blogpost_id
        if container in trashed:
            assert row.page_title == "page unavailable" and row.url is None
        else:
            assert row.page_title == sim.state.content[container].title
            assert row.url.startswith(f"{sim.url}/wiki/spaces/")
        assert row.space_key == sim.state.spaces[upstream.space_id].key
    with sim_ctx.session() as s:
        run = s.scalar(select(SyncRun))
        assert (run.outcome, run.new_count, run.requests, run.pages_fetched) == ("ok", 30, 4, 1)
        assert s.scalar(select(AuditEntry.event_type).where(AuditEntry.event_type == "confluence.tasks_fetched"))


def test_ten_resyncs_create_no_duplicate_and_write_nothing_but_the_run(sim_ctx, user_id, token_connection, migrated_engine):
    sync.sync_connection(sim_ctx, token_connection)
    statements = []

    def log(conn, cursor, statement, params, context, executemany):
        statements.append(statement.split()[0].upper() + " " + statement.split()[1 if statement.split()[0].upper() != "INSERT" else 2])

    event.listen(migrated_engine, "before_cursor_execute", log)
    try:
        for _ in range(10):
            result = sync.sync_connection(sim_ctx, token_connection)
            assert (result.new, result.updated, result.unchanged, result.gone) == (0, 0, 30, 0)
    finally:
        event.remove(migrated_engine, "before_cursor_execute", log)
    writes = {s for s in statements if s.split()[0] in ("INSERT", "UPDATE", "DELETE")}
    assert writes == {"INSERT sync_runs", "UPDATE sync_runs", "INSERT integration_audit_log"}, writes
    with sim_ctx.session() as s:
        assert s.scalar(select(func.count()).select_from(PendingTask)) == 30


def test_user_edits_survive_upstream_edits_and_dismissed_never_returns(sim_ctx, user_id, token_connection, sim):
    sync.sync_connection(sim_ctx, token_connection)
    rows = queue(sim_ctx, user_id)
    edited, untouched, dismissed = rows[0], rows[1], rows[2]
    with sim_ctx.session() as s:
        board.create_project(s, user_id, "Ops")
        sync.edit_pending(s, user_id, edited.id, title="My own words", due_date="2031-01-01", project="Ops")
        sync.dismiss(s, user_id, [dismissed.id])
    for row in (edited, untouched, dismissed):
        sim.state.update_task(row.confluence_task_id, text="Changed upstream", due=None)
    result = sync.sync_connection(sim_ctx, token_connection)
    assert result.updated == 3
    now = by_task(sim_ctx, user_id)
    assert (now[edited.confluence_task_id].title, str(now[edited.confluence_task_id].due_date)) == ("My own words", "2031-01-01")
    assert now[edited.confluence_task_id].project == "Ops"
    assert (now[untouched.confluence_task_id].title, now[untouched.confluence_task_id].due_date) == ("Changed upstream", None)
    assert now[dismissed.confluence_task_id].state == "dismissed"
    for _ in range(3):
        sync.sync_connection(sim_ctx, token_connection)
    assert by_task(sim_ctx, user_id)[dismissed.confluence_task_id].state == "dismissed"


def test_gone_tasks_leave_the_queue_with_a_reason_and_come_back_if_reassigned(sim_ctx, user_id, token_connection, sim):
    sync.sync_connection(sim_ctx, token_connection)
    a, b, c = [r.confluence_task_id for r in queue(sim_ctx, user_id)[:3]]
    sim.state.update_task(a, status="complete")
    sim.state.update_task(b, assigned_to="sim-user-2")
    sim.state.delete_task(c)
    result = sync.sync_connection(sim_ctx, token_connection)
    assert result.gone == 3
    rows = by_task(sim_ctx, user_id)
    assert {rows[x].state for x in (a, b, c)} == {"gone"}
    assert "completed, reassigned or deleted" in rows[a].gone_reason
    sim.state.update_task(b, assigned_to=ME[0])
    sync.sync_connection(sim_ctx, token_connection)
    assert by_task(sim_ctx, user_id)[b].state == "pending"


def test_a_failed_fetch_removes_nothing(sim_ctx, user_id, token_connection, sim):
    for n in range(600):
        sim.state.add_task(f"bulk {n}", assigned_to=ME[0], container=next(iter(sim.state.content.values())))
    sync.sync_connection(sim_ctx, token_connection)
    assert len(queue(sim_ctx, user_id)) == 630
    # Page 2 of 3 fails for good: the run fails and the queue is untouched.
    sim.state.knobs.fault_rate, sim.state.knobs.fault_kinds, sim.state.knobs.retry_after_s = 1.0, ("503",), 0.0
    from trackli.atlassian.client import RetryPolicy
    sim.state.update_task(queue(sim_ctx, user_id)[0].confluence_task_id, status="complete")
    result = sync.sync_connection(sim_ctx, token_connection, retry=RetryPolicy(tries=2, base_delay=0.001))
    assert result.outcome == "failed" and "unavailable" in result.error
    assert len(queue(sim_ctx, user_id)) == 630
    with sim_ctx.session() as s:
        failed = s.scalar(select(AuditEntry).where(AuditEntry.event_type == "confluence.fetch_failed"))
        assert failed is not None and not failed.success


def test_two_syncs_at_once_run_one_fetch(sim_ctx, user_id, token_connection, sim):
    sim.state.knobs.latency_ms = 150
    results = []
    threads = [threading.Thread(target=lambda: results.append(sync.sync_connection(sim_ctx, token_connection)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.outcome for r in results) == ["already_running", "ok"]
    assert len(sim.state.api_requests("GET tasks")) == 1
    with sim_ctx.session() as s:
        assert s.scalar(select(func.count()).select_from(PendingTask)) == 30


def test_a_crashed_runs_lock_expires(sim_ctx, user_id, token_connection):
    import datetime as dt

    with sim_ctx.session() as s:
        s.add(SyncRun(connection_id=token_connection, user_id=user_id, trigger="scheduled", outcome="running",
                      started_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10),
                      heartbeat_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10)))
    assert sync.sync_connection(sim_ctx, token_connection).outcome == "ok"
    with sim_ctx.session() as s:
        assert sorted(s.scalars(select(SyncRun.outcome))) == ["abandoned", "ok"]


def test_queue_operations_validate_and_approve_is_idempotent(sim_ctx, user_id, token_connection):
    sync.sync_connection(sim_ctx, token_connection)
    rows = queue(sim_ctx, user_id)
    with sim_ctx.session() as s:
        p = board.create_project(s, user_id, "Inbox")
    for bad, message in ((dict(title=" "), "must not be empty"), (dict(title="x" * 501), "at most 500"),
                         (dict(due_date="2026-13-01"), "not a date"), (dict(project="Nope"), "not found")):
        with pytest.raises((ValidationError, NotFound), match=message):
            with sim_ctx.session() as s:
                sync.edit_pending(s, user_id, rows[0].id, **bad)
    with sim_ctx.session() as s:
        first = sync.approve(s, user_id, [rows[0].id, rows[1].id], project="Inbox")
    with sim_ctx.session() as s:
        again = sync.approve(s, user_id, [rows[0].id, rows[1].id])
    assert sorted(c.id for c in first) == sorted(c.id for c in again)
    with sim_ctx.session() as s:
        cards = s.scalars(select(Task)).all()
        assert len(cards) == 2
        card = cards[0]
        assert (card.source, card.project_id, card.sync_state, card.connection_id) == ("confluence", p.id, "synced", token_connection)
        assert card.confluence_task_id in {rows[0].confluence_task_id, rows[1].confluence_task_id}
        assert card.confluence_page_title and card.confluence_space_key
    with sim_ctx.session() as s:
        sync.dismiss(s, user_id, [rows[2].id])
    with pytest.raises(ValidationError, match="restore them first"):
        with sim_ctx.session() as s:
            sync.approve(s, user_id, [rows[2].id])
    with sim_ctx.session() as s:
        assert sync.restore(s, user_id, [rows[2].id]) == 1
    assert len(queue(sim_ctx, user_id)) == 28
    sync.sync_connection(sim_ctx, token_connection)  # approved tasks are never queued again
    assert len(queue(sim_ctx, user_id)) == 28 and len(queue(sim_ctx, user_id, "approved")) == 2


def test_bulk_approve_of_a_thousand_rows_in_one_transaction(sim_ctx, user_id, token_connection, sim):
    container = next(iter(sim.state.content.values()))
    for n in range(970):
        sim.state.add_task(f"bulk {n}", assigned_to=ME[0], container=container)
    sync.sync_connection(sim_ctx, token_connection)
    ids = [r.id for r in queue(sim_ctx, user_id)]
    assert len(ids) == 1000
    with sim_ctx.session() as s:
        cards = sync.approve(s, user_id, ids)
    assert len(cards) == 1000
    with sim_ctx.session() as s:
        assert s.scalar(select(func.count()).select_from(Task)) == 1000
        positions = sorted(s.scalars(select(Task.position)))
        assert positions == list(range(1000))
    assert queue(sim_ctx, user_id) == []


def test_other_users_ids_are_not_found_and_nothing_changes(sim_ctx, user_id, other_user_id, token_connection):
    sync.sync_connection(sim_ctx, token_connection)
    row = queue(sim_ctx, user_id)[0]
    for action in (lambda s: sync.edit_pending(s, other_user_id, row.id, title="hijack"),
                   lambda s: sync.approve(s, other_user_id, [row.id]),
                   lambda s: sync.dismiss(s, other_user_id, [row.id]),
                   lambda s: sync.restore(s, other_user_id, [row.id])):
        with pytest.raises(NotFound):
            with sim_ctx.session() as s:
                action(s)
    with pytest.raises(NotFound):
        sync.sync_connection(sim_ctx, token_connection, user_id=other_user_id)
    assert queue(sim_ctx, user_id)[0] == row


def approve_some(ctx, user_id, connection, n):
    sync.sync_connection(ctx, connection)
    with ctx.session() as s:
        return [c.id for c in sync.approve(s, user_id, [r.id for r in sync.list_pending(s, user_id)[:n]])]


def test_completion_round_trip_and_upstream_completion(sim_ctx, user_id, token_connection, sim):
    cards = approve_some(sim_ctx, user_id, token_connection, 3)
    with sim_ctx.session() as s:
        moved = board.move_card(s, user_id, cards[0], "done")
        assert moved.sync_state == "waiting"
        remote = moved.confluence_task_id
    result = sync.drain(sim_ctx)
    assert (result.sent, result.failed) == (1, 0)
    assert sim.state.tasks[remote].status == "complete"
    with sim_ctx.session() as s:
        assert s.get(Task, cards[0]).sync_state == "synced"
        board.move_card(s, user_id, cards[0], "in_progress")
    sync.drain(sim_ctx)
    assert sim.state.tasks[remote].status == "incomplete"

    # Completed in Confluence: the card moves to done without a PUT back.
    other = None
    with sim_ctx.session() as s:
        other = s.get(Task, cards[1])
    sim.state.update_task(other.confluence_task_id, status="complete")
    sim.state.reset_log()
    result = sync.sync_connection(sim_ctx, token_connection)
    assert result.completed_upstream == 1
    assert sim.state.api_requests("PUT task") == []
    with sim_ctx.session() as s:
        card = s.get(Task, cards[1])
        assert (card.status, card.sync_state) == ("done", "synced")
    assert sync.drain(sim_ctx).sent == 0


def test_reopened_upstream_after_done_here_is_a_conflict(sim_ctx, user_id, token_connection, sim):
    [card_id] = approve_some(sim_ctx, user_id, token_connection, 1)
    with sim_ctx.session() as s:
        remote = board.move_card(s, user_id, card_id, "done").confluence_task_id
    sync.drain(sim_ctx)
    sim.state.update_task(remote, status="incomplete")
    assert sync.sync_connection(sim_ctx, token_connection).conflicts == 1
    with sim_ctx.session() as s:
        card = s.get(Task, card_id)
        assert (card.status, card.sync_state) == ("done", "conflict")
        sync.resolve_conflict(s, user_id, card_id, "here")
    sync.drain(sim_ctx)
    assert sim.state.tasks[remote].status == "complete"
    with sim_ctx.session() as s:
        assert s.get(Task, card_id).sync_state == "synced"


def test_flapping_sends_one_request_per_settled_change(sim_ctx, user_id, token_connection, sim):
    cards = approve_some(sim_ctx, user_id, token_connection, 2)
    with sim_ctx.session() as s:
        for status in ("done", "todo", "done", "in_progress", "done"):
            board.move_card(s, user_id, cards[0], status)
        for status in ("done", "todo"):  # back where it started: nothing to send
            board.move_card(s, user_id, cards[1], status)
    with sim_ctx.session() as s:
        assert s.scalar(select(func.count()).select_from(OutboxEntry)) == 1
        assert s.get(Task, cards[1]).sync_state == "synced"
    sim.state.reset_log()
    sync.drain(sim_ctx)
    puts = sim.state.api_requests("PUT task")
    assert len(puts) == 1
    with sim_ctx.session() as s:
        assert sim.state.tasks[s.get(Task, cards[0]).confluence_task_id].status == "complete"


def test_three_concurrent_drainers_send_each_change_once(sim_ctx, user_id, token_connection, sim):
    cards = approve_some(sim_ctx, user_id, token_connection, 20)
    with sim_ctx.session() as s:
        for card_id in cards:
            board.move_card(s, user_id, card_id, "done")
    sim.state.knobs.latency_ms = 20
    sim.state.reset_log()
    totals = []
    threads = [threading.Thread(target=lambda: totals.append(sync.drain(sim_ctx).sent)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(totals) == 20
    assert len(sim.state.api_requests("PUT task")) == 20
    with sim_ctx.session() as s:
        assert set(s.scalars(select(Task.sync_state))) == {"synced"}


def test_a_completion_survives_a_crash_between_move_and_send(sim_ctx, user_id, token_connection, sim, env, tmp_path):
    import subprocess, sys, os

    [card_id] = approve_some(sim_ctx, user_id, token_connection, 1)
    with sim_ctx.session() as s:
        remote = board.move_card(s, user_id, card_id, "done").confluence_task_id
    # This process "crashes" here; a new process delivers the change.
    out = subprocess.run([sys.executable, "-m", "trackli", "outbox", "--drain", "--json"],
                         env={**os.environ, **env}, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert sim.state.tasks[remote].status == "complete"


def test_an_interrupted_send_is_reclaimed_after_its_lease(sim_ctx, user_id, token_connection, sim):
    import datetime as dt

    [card_id] = approve_some(sim_ctx, user_id, token_connection, 1)
    with sim_ctx.session() as s:
        board.move_card(s, user_id, card_id, "done")
        entry = s.scalar(select(OutboxEntry))
        entry.state, entry.lease_until = "sending", dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    assert sync.drain(sim_ctx).sent == 1


def test_permanent_failures_are_shown_and_can_be_retried(sim_ctx, user_id, token_connection, sim):
    [card_id] = approve_some(sim_ctx, user_id, token_connection, 1)
    with sim_ctx.session() as s:
        remote = board.move_card(s, user_id, card_id, "done").confluence_task_id
    sim.state.tasks[remote].editable_by = {"nobody"}
    result = sync.drain(sim_ctx)
    assert result.failed == 1
    with sim_ctx.session() as s:
        card = s.get(Task, card_id)
        assert card.sync_state == "failed" and "may not edit" in card.sync_error
        assert s.scalar(select(AuditEntry).where(AuditEntry.event_type == "confluence.task_update_failed"))
    sim.state.tasks[remote].editable_by = None
    with sim_ctx.session() as s:
        sync.retry_card(s, user_id, card_id)
    assert sync.drain(sim_ctx).sent == 1
    assert sim.state.tasks[remote].status == "complete"


def test_transient_failures_back_off_and_keep_the_change(sim_ctx, user_id, token_connection, sim):
    from trackli.atlassian.client import RetryPolicy

    [card_id] = approve_some(sim_ctx, user_id, token_connection, 1)
    with sim_ctx.session() as s:
        board.move_card(s, user_id, card_id, "done")
    sim.state.knobs.fault_rate, sim.state.knobs.fault_kinds = 1.0, ("502",)
    result = sync.drain(sim_ctx, retry=RetryPolicy(tries=2, base_delay=0.001))
    assert result.retrying == 1
    with sim_ctx.session() as s:
        entry = s.scalar(select(OutboxEntry))
        card = s.get(Task, card_id)
        assert entry.state == "pending" and entry.attempts == 1 and entry.next_attempt_at > entry.updated_at
        assert card.sync_state == "waiting" and card.sync_error.startswith("Retrying")


def test_rate_limit_waits_are_reported_in_the_run_and_its_audit_entry(sim_ctx, user_id, token_connection, sim):
    from trackli.atlassian.client import RetryPolicy

    sim.state.knobs.fault_rate, sim.state.knobs.fault_kinds, sim.state.knobs.retry_after_s = 0.5, ("429",), 0.01
    result = sync.sync_connection(sim_ctx, token_connection, retry=RetryPolicy(tries=20))
    assert result.outcome == "ok" and result.retries >= 1 and result.waited_s >= 0.01 * result.retries
    with sim_ctx.session() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.event_type == "confluence.tasks_fetched"))
        assert entry.details["retries"] == result.retries


def test_an_unexpected_error_is_recorded_as_a_failed_run_not_ok(sim_ctx, user_id, token_connection, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(sync, "_apply", broken)
    with pytest.raises(RuntimeError):
        sync.sync_connection(sim_ctx, token_connection)
    with sim_ctx.session() as s:
        run = s.scalar(select(SyncRun))
        assert (run.outcome, run.error) == ("failed", "internal error: RuntimeError")
    monkeypatch.undo()
    assert sync.sync_connection(sim_ctx, token_connection).outcome == "ok"  # and the lock was released
