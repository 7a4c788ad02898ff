"""The sync engine against the simulated Atlassian (real client, real HTTP, real database)."""

import threading

from sqlalchemy import event, func, select

from trackli import projects, queue, sync
from trackli.models import AuditEntry, PendingTask, SyncRun
from trackli.simulator import ME
from tests.syncing import waiting


def by_task(ctx, user_id):
    return {p.confluence_task_id: p for p in waiting(ctx, user_id, "all")}


def test_first_sync_fills_the_queue_with_enriched_tasks(sim_ctx, user_id, token_connection, sim):
    result = sync.sync_connection(sim_ctx, token_connection)
    assert (result.outcome, result.new, result.gone) == ("ok", 30, 0)
    rows = waiting(sim_ctx, user_id)
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
    # ... and the connection's watermark (the next incremental poll asks from this sync's Atlassian time)
    assert writes == {"INSERT sync_runs", "UPDATE sync_runs", "INSERT integration_audit_log",
                      "UPDATE atlassian_connections"}, writes
    with sim_ctx.session() as s:
        assert s.scalar(select(func.count()).select_from(PendingTask)) == 30


def test_user_edits_survive_upstream_edits_and_dismissed_never_returns(sim_ctx, user_id, token_connection, sim):
    sync.sync_connection(sim_ctx, token_connection)
    rows = waiting(sim_ctx, user_id)
    edited, untouched, dismissed = rows[0], rows[1], rows[2]
    with sim_ctx.session() as s:
        projects.create_project(s, user_id, "Ops")
        queue.edit_pending(s, user_id, edited.id, title="My own words", due_date="2031-01-01", project="Ops")
        queue.dismiss(s, user_id, [dismissed.id])
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
    a, b, c = [r.confluence_task_id for r in waiting(sim_ctx, user_id)[:3]]
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
    assert len(waiting(sim_ctx, user_id)) == 630
    # Page 2 of 3 fails for good: the run fails and the queue is untouched.
    sim.state.knobs.fault_rate, sim.state.knobs.fault_kinds, sim.state.knobs.retry_after_s = 1.0, ("503",), 0.0
    from trackli.atlassian.client import RetryPolicy
    sim.state.update_task(waiting(sim_ctx, user_id)[0].confluence_task_id, status="complete")
    result = sync.sync_connection(sim_ctx, token_connection, retry=RetryPolicy(tries=2, base_delay=0.001))
    assert result.outcome == "failed" and "unavailable" in result.error
    assert len(waiting(sim_ctx, user_id)) == 630
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

    from trackli.sync import engine

    monkeypatch.setattr(engine, "apply", broken)
    result = sync.sync_connection(sim_ctx, token_connection)  # recorded, not raised: other connections go on
    assert result.outcome == "failed" and "unexpected error stopped this sync (RuntimeError)" in result.error
    with sim_ctx.session() as s:
        run = s.scalar(select(SyncRun))
        assert (run.outcome, run.error) == ("failed", result.error)
    monkeypatch.undo()
    assert sync.sync_connection(sim_ctx, token_connection).outcome == "ok"  # and the lock was released
